package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestE2EMetrics: nchookd's /metrics, scraped over HTTP, moves as a bake
// runs on real libvirt: the pre-boot rewrite is counted, the install is
// seen installing, then finished with a duration.
func TestE2EMetrics(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f, err := os.OpenFile(n.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[metrics]\nlisten = %q\n", addr)
	f.Close()
	n.serve(t)
	scrape := func() string {
		t.Helper()
		var err error
		for i := 0; i < 50; i++ {
			var resp *http.Response
			if resp, err = http.Get("http://" + addr + "/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("scrape: %v", err)
		return ""
	}
	sample := func(text, series string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	rewritten := `nchookd_hooks_total{event="euca-nc-pre-boot",outcome="rewritten"}`
	before := scrape()
	if v := sample(before, rewritten); v != 0 {
		t.Fatalf("%s = %v before any launch", rewritten, v)
	}
	name := fmt.Sprintf("i-mx%05x", os.Getpid()&0xfffff)
	k, r, d := miniFiles(t)
	ncLaunch(t, n, c, name, "bootparams=kscloud.test=poweroff\n", k, r, d)
	during := scrape()
	if v := sample(during, rewritten); v != 1 {
		t.Errorf("%s = %v after one launch\n%s", rewritten, v, during)
	}
	if v := sample(during, `nchookd_rewrite_seconds_count`); v != 1 {
		t.Errorf("rewrite_seconds_count = %v", v)
	}
	waitPhase(t, n, name, "finished", 4*time.Minute)
	after := scrape()
	if v := sample(after, `nchookd_installs{phase="finished"}`); v != 1 {
		t.Errorf(`installs{phase="finished"} = %v`, v)
	}
	if v := sample(after, `nchookd_installs{phase="installing"}`); v != 0 {
		t.Errorf(`installs{phase="installing"} = %v after the bake finished`, v)
	}
	if v := sample(after, `nchookd_install_duration_seconds_count`); v != 1 {
		t.Errorf("install_duration_seconds_count = %v", v)
	}
}

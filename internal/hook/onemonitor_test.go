package hook

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/hookproto"
)

var monLine = regexp.MustCompile(`^VM = \[ ID="(\d+)", DEPLOY_ID="([^"]+)", MONITOR="([A-Za-z0-9+/=]*)"\]$`)

func decodeMon(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := monLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("probe line %q is not VM = [ ID, DEPLOY_ID, MONITOR ]", l)
		}
		raw, err := base64.StdEncoding.DecodeString(m[3])
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || strings.ContainsAny(v[1:len(v)-1], "\"\\\n") {
				t.Fatalf("MONITOR line %q is not KEY=\"VALUE\"", kv)
			}
			got["one-"+m[1]+"/"+k] = v[1 : len(v)-1]
		}
	}
	return got
}

func TestMonitorLines(t *testing.T) {
	resp := &hookproto.Response{OK: true, Daemon: &hookproto.DaemonStatus{Version: "1.2.3"}, Instances: []hookproto.InstanceStatus{
		{Phase: "installing", Progress: "Installing \"glibc\" (12/340)\x1b[0m\\"},
		{Phase: "final"},
		{Phase: "installing"}, // a Eucalyptus instance
		{Phase: "failed", Reason: strings.Repeat("x", 500)},
		{Phase: "installing"}, // not a VM ID
	}}
	for i, n := range []string{"one-7", "one-12", "i-1234abcd", "one-3", "one-07"} {
		resp.Instances[i].Instance = n
	}
	resp.Instances[1].UUID = "0b1f3c2e-6a51-4d0e-9a7e-2f1f5a6b7c8d"
	out := MonitorLines(resp)
	if !strings.Contains(out, `ID="12", DEPLOY_ID="0b1f3c2e-6a51-4d0e-9a7e-2f1f5a6b7c8d"`) || !strings.Contains(out, `ID="7", DEPLOY_ID="one-7"`) {
		t.Fatalf("DEPLOY_ID: the UUID when known, else the name:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("want 3 VM lines (one-7, one-12, one-3), got %d:\n%s", n, out)
	}
	got := decodeMon(t, out)
	want := map[string]string{
		"one-7/KSCLOUD_NCHOOKD":  "1.2.3",
		"one-7/KSCLOUD_PHASE":    "installing",
		"one-7/KSCLOUD_PROGRESS": "Installing  glibc  (12/340) [0m",
		"one-12/KSCLOUD_PHASE":   "final",
		"one-3/KSCLOUD_PHASE":    "failed",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["one-12/KSCLOUD_PROGRESS"]; ok {
		t.Error("empty progress must not be reported")
	}
	if len(got["one-3/KSCLOUD_REASON"]) != monValueMax {
		t.Errorf("reason not bounded: %d bytes", len(got["one-3/KSCLOUD_REASON"]))
	}
}

// fakeDaemon answers status requests on a unix socket as nchookd does.
func fakeDaemon(t *testing.T, resp *hookproto.Response, delay time.Duration) string {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadBytes('\n')
				var req hookproto.Request
				if json.Unmarshal(line, &req) != nil || req.Op != hookproto.OpStatus {
					return
				}
				time.Sleep(delay)
				b, _ := json.Marshal(resp)
				c.Write(append(b, '\n'))
			}()
		}
	}()
	return sock
}

func TestOneMonitor(t *testing.T) {
	resp := &hookproto.Response{OK: true, Daemon: &hookproto.DaemonStatus{Version: "v9"},
		Instances: []hookproto.InstanceStatus{{Phase: "final"}}}
	resp.Instances[0].Instance = "one-4"
	env := func(sock string) func(string) string {
		return func(k string) string {
			switch k {
			case EnvSocket:
				return sock
			case EnvConfig:
				return filepath.Join(t.TempDir(), "none.toml")
			}
			return ""
		}
	}
	t.Run("daemon", func(t *testing.T) {
		var out, errb bytes.Buffer
		OneMonitor(&out, &errb, env(fakeDaemon(t, resp, 0)), time.Second)
		got := decodeMon(t, out.String())
		if got["one-4/KSCLOUD_NCHOOKD"] != "v9" || got["one-4/KSCLOUD_PHASE"] != "final" {
			t.Fatalf("got %v (stderr %q)", got, errb.String())
		}
	})
	t.Run("down", func(t *testing.T) {
		var out, errb bytes.Buffer
		OneMonitor(&out, &errb, env(filepath.Join(t.TempDir(), "nosock")), time.Second)
		if out.Len() != 0 || !strings.Contains(errb.String(), "nchookd-one-monitor:") {
			t.Fatalf("daemon down: out %q stderr %q", out.String(), errb.String())
		}
	})
	t.Run("slow", func(t *testing.T) {
		var out, errb bytes.Buffer
		start := time.Now()
		OneMonitor(&out, &errb, env(fakeDaemon(t, resp, 3*time.Second)), 200*time.Millisecond)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("probe took %v with a 200ms bound", d)
		}
		if out.Len() != 0 || errb.Len() == 0 {
			t.Fatalf("slow daemon: out %q stderr %q", out.String(), errb.String())
		}
	})
}

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
)

// TestE2EKscloudBridge: --network bridge=BR on a Linux bridge made here
// (with a host address, no DHCP: the installer gets a static ip=). The
// provider's KickstartBindAddr names the host's address on that bridge;
// a kickstart server bound there (and only there) is what the installer
// fetches its kickstart from, and the install finishes.
func TestE2EKscloudBridge(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	var rb [2]byte
	rand.Read(rb[:])
	br := "ksb" + hex.EncodeToString(rb[:])
	subnet := fmt.Sprintf("10.%d.%d", 200+int(rb[0])%50, rb[1])
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("link", "add", br, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	run("addr", "add", subnet+".1/24", "dev", br)
	run("link", "set", br, "up")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	p, err := cloudlibvirt.Open(ctx, cloudlibvirt.Options{URI: e.uri, StateDir: e.state, Network: "bridge=" + br, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := p.KickstartBindAddr(ctx)
	p.Close()
	if err != nil || addr.Bind != subnet+".1" || addr.Guest != subnet+".1" {
		t.Fatalf("KickstartBindAddr on %s: %+v %v", br, addr, err)
	}
	ksText := baseKS + "poweroff\n"
	ln, err := net.Listen("tcp", net.JoinHostPort(addr.Bind, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Write([]byte(ksText))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/ks.cfg"
	static := fmt.Sprintf("ip=%s.10::%s.1:255.255.255.0::eth0:none", subnet, subnet)
	w := e.watchDomains()
	r := e.kscloud(t, ctx, "bake", "--accel", "tcg", "--network", "bridge="+br, "--ks", url, "--ks-delivery", "url",
		"--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs+" "+static, "--name", "bridge", "--output", "json")
	doms := w.installers()
	if r.code != 0 {
		t.Fatalf("bake --network bridge=%s: exit %d\n%s", br, r.code, r.stderr)
	}
	bakeResult(t, r.stdout)
	if fetched.Load() == 0 {
		t.Fatal("the installer never fetched the kickstart from the bridge address")
	}
	if len(doms) != 1 || !strings.Contains(doms[0], "<interface type='bridge'>") || !strings.Contains(doms[0], "<source bridge='"+br+"'/>") {
		t.Fatalf("installer domain not on bridge %s:\n%s", br, strings.Join(doms, "\n"))
	}
	// A bridge that does not exist is refused in one line, before anything exists.
	r = e.kscloud(t, ctx, "bake", "--network", "bridge=nosuch"+br[3:], "--ks", url, "--ks-delivery", "url", "--kernel", k, "--initrd", i)
	if r.code == 0 || !strings.Contains(r.stderr, "--network bridge=nosuch") {
		t.Fatalf("missing bridge: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat("/sys/class/net/" + br + "/bridge"); err != nil {
		t.Fatal(err)
	}
}

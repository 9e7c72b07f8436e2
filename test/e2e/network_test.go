package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/install"
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

// TestE2EKscloudNAT: --network NAME on a libvirt NAT network made here
// (transient, uniquely named: other users' networks are left alone) with
// --ks-delivery http: kscloud's kickstart server listens on the network's
// own address only, the installer (DHCP on that network) fetches its
// kickstart there, the installed system takes a lease (ip=dhcp from the
// kickstart's bootloader line) and kscloud run prints that address, which
// is the domain's lease on the network.
func TestE2EKscloudNAT(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	var rb [3]byte
	rand.Read(rb[:])
	name := "kst-nat-" + hex.EncodeToString(rb[:])
	br := "kstn" + hex.EncodeToString(rb[:])
	var subnet string
	for try := 0; ; try++ {
		subnet = fmt.Sprintf("192.168.%d", 100+(int(rb[0])+try*37)%150)
		xml := fmt.Sprintf(`<network><name>%s</name><forward mode='nat'/><bridge name='%s' stp='on' delay='0'/>
<ip address='%s.1' netmask='255.255.255.0'><dhcp><range start='%s.10' end='%s.50'/></dhcp></ip></network>`, name, br, subnet, subnet, subnet)
		f := filepath.Join(t.TempDir(), "net.xml")
		os.WriteFile(f, []byte(xml), 0o644)
		out, err := exec.Command("virsh", "-c", e.uri, "net-create", f).CombinedOutput()
		if err == nil {
			break
		}
		if try == 4 {
			t.Fatalf("virsh net-create %s: %v: %s (dnsmasq-base and iptables are needed: scripts/deps.sh)", name, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("virsh", "-c", e.uri, "net-destroy", name).Run() })

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// The installed system idles (no poweroff-after-boot) with a lease.
	ksText := `text
zerombr
clearpart --all --initlabel
part / --fstype=ext4 --size=64 --grow
bootloader --location=mbr --append=ip=dhcp
rootpw --plaintext kscloud
reboot
`
	ks := writeKS(t, ksText)
	w := e.watchDomains()
	// While the build runs, a peer on the network that is not the build's
	// guest (this host, from the network's own address) asks for the
	// kickstart with the right path: 404, and nothing listens on loopback.
	probed := make(chan string, 1)
	probeCtx, stopProbe := context.WithCancel(ctx)
	go func() {
		defer close(probed)
		st, err := install.OpenStore(e.state)
		if err != nil {
			probed <- err.Error()
			return
		}
		for probeCtx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			bs, _ := st.List()
			if len(bs) == 0 || bs[0].Plan == nil || bs[0].Plan.HTTP == nil {
				continue
			}
			addr, tok := bs[0].Plan.HTTP.Addr, bs[0].Plan.HTTP.Token
			local := &net.TCPAddr{IP: net.ParseIP(subnet + ".1")}
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
				DialContext: (&net.Dialer{LocalAddr: local}).DialContext}}
			resp, err := c.Get("http://" + addr + "/" + tok + "/ks.cfg")
			if err != nil {
				probed <- "host peer: " + err.Error() // the installer fetched it first: the server is gone
				return
			}
			resp.Body.Close()
			_, port, _ := net.SplitHostPort(addr)
			if lc, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
				lc.Close()
				probed <- "listening on loopback too"
				return
			}
			probed <- fmt.Sprintf("host peer: HTTP %d", resp.StatusCode)
			return
		}
	}()
	start := time.Now()
	r := e.kscloud(t, ctx, "run", "--accel", "tcg", "--network", name, "--ks", ks, "--ks-delivery", "http",
		"--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--output", "json")
	stopProbe()
	doms := w.installers()
	switch p := <-probed; {
	case p == "host peer: HTTP 404":
	case strings.HasPrefix(p, "host peer: ") && !strings.Contains(p, "HTTP"):
		t.Logf("probe came too late (%s): the refusal of other peers is not shown by this run", p)
	default:
		t.Fatalf("a peer that is not the build's guest: %q, want HTTP 404", p)
	}
	if r.code != 0 {
		t.Fatalf("run --network %s --ks-delivery http: exit %d\n%s", name, r.code, r.stderr)
	}
	t.Logf("run on NAT network %s: %.0fs", name, time.Since(start).Seconds())
	var out struct {
		Build  string
		Result install.Result
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("run output %q: %v", r.stdout, err)
	}
	if !strings.Contains(out.Result.Marker, "sha256="+sha(ksText)) {
		t.Fatalf("no marker: %+v\n%s", out.Result, r.stderr)
	}
	// The printed address is on the network, and it is the domain's lease.
	if len(out.Result.Addresses) == 0 || !strings.HasPrefix(out.Result.Addresses[0], subnet+".") {
		t.Fatalf("run printed addresses %v, want one in %s.0/24\n%s", out.Result.Addresses, subnet, r.stderr)
	}
	leases, _ := exec.Command("virsh", "-c", e.uri, "net-dhcp-leases", name).CombinedOutput()
	if !strings.Contains(string(leases), out.Result.Addresses[0]+"/24") {
		t.Fatalf("address %s is not a lease of %s:\n%s", out.Result.Addresses[0], name, leases)
	}
	// The installer fetched its kickstart from the network's own address,
	// under the random path.
	st, err := install.OpenStore(e.state)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Load(out.Build)
	if err != nil {
		t.Fatal(err)
	}
	if b.Plan == nil || b.Plan.HTTP == nil {
		t.Fatalf("build %s: no HTTP delivery in its plan", b.ID)
	}
	addr := b.Plan.HTTP.Addr
	if h, _, _ := net.SplitHostPort(addr); h != subnet+".1" {
		t.Fatalf("kickstart server bound %q, want %s.1 only", addr, subnet)
	}
	cmdline := b.Plan.Cmdline
	if !regexp.MustCompile(`inst\.ks=http://` + regexp.QuoteMeta(addr) + `/[0-9a-f]{64}/ks\.cfg`).MatchString(cmdline) {
		t.Fatalf("installer command line %q does not fetch from %s", cmdline, addr)
	}
	if len(doms) == 0 || !strings.Contains(doms[0], "<source network='"+name+"'") {
		t.Fatalf("installer domain not on network %s:\n%s", name, strings.Join(doms, "\n"))
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("kickstart server %s still listens after the run", addr)
	}
	// newKsEnv's cleanup destroys the idling system.
}

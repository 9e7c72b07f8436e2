package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// oneNode is an OpenNebula host running nchookd: the oned test endpoint in
// node mode whose deploy action is the installed wrapper
// (remotes/vmm/kvm/deploy = hooks/opennebula/deploy, OpenNebula's own
// script moved to deploy.one, as `nchookd-one-setup enable` leaves it),
// and an nchookd whose instances root holds the endpoint's datastores and
// whose catalog has the tiny test guest as installer "mini".
type oneNode struct {
	*node
	srv     *oneendpoint.Server
	remotes string
	deploy  string // the installed wrapper
}

func newOneNode(t *testing.T, monitor time.Duration, misses int) *oneNode {
	t.Helper()
	uri := testenv.Libvirt(t)
	n := newNode(t)
	k, r, _ := miniFiles(t)
	b, err := os.ReadFile(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, fmt.Sprintf("[installer.mini]\nkernel = %q\ninitrd = %q\n", k, r)...)
	if err := os.WriteFile(n.cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o := &oneNode{node: n, remotes: t.TempDir()}
	if err := oneendpoint.WriteRemotes(o.remotes, uri, "7.0.0"); err != nil {
		t.Fatal(err)
	}
	o.deploy = filepath.Join(o.remotes, oneendpoint.StockDeploy)
	installOneWrapper(t, o.deploy)
	o.srv = oneendpoint.Start(t, oneendpoint.Options{
		Dir:   filepath.Join(n.root, "one"),
		Node:  &oneendpoint.Node{LibvirtURI: uri, DeployScript: o.deploy, Env: n.env},
		Sched: 500 * time.Millisecond, Prolog: 300 * time.Millisecond, Boot: 300 * time.Millisecond,
		Epilog: 300 * time.Millisecond, Monitor: monitor, Misses: misses, VNCStart: 20000 + rand.IntN(20000),
	})
	return o
}

// installOneWrapper puts hooks/opennebula/deploy where OpenNebula's deploy
// script was (which moves to deploy.one), pointing at the test's build of
// nchookd-one-deploy instead of /usr/lib/nchookd.
func installOneWrapper(t *testing.T, deploy string) {
	t.Helper()
	if err := os.Rename(deploy, deploy+".one"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../hooks/opennebula/deploy")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^HOOK=.*$`)
	if !re.Match(b) {
		t.Fatal("hooks/opennebula/deploy: no HOOK= line to point at the test build")
	}
	b = re.ReplaceAll(b, []byte("HOOK="+bins.oneDeploy))
	if err := os.WriteFile(deploy, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// call is one XML-RPC call to the endpoint; it fails the test unless oned
// answers success.
func (o *oneNode) call(t *testing.T, method string, args ...any) any {
	t.Helper()
	body, err := xmlrpc.EncodeMethodCall(method, append([]any{o.srv.Session()}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(o.srv.URL(), "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out []any
	if err := xmlrpc.Response(data).Unmarshal(&out); err != nil || len(out) < 2 || out[0] != true {
		t.Fatalf("%s: %v %v", method, out, err)
	}
	return out[1]
}

// state returns "STATE/LCM_STATE" and the VM's XML.
func (o *oneNode) state(t *testing.T, id int) (string, string) {
	t.Helper()
	x := o.call(t, "one.vm.info", id).(string)
	get := func(tag string) string {
		m := regexp.MustCompile("<" + tag + ">([0-9]+)</" + tag + ">").FindStringSubmatch(x)
		if m == nil {
			return "?"
		}
		return m[1]
	}
	return get("STATE") + "/" + get("LCM_STATE"), x
}

func (o *oneNode) waitState(t *testing.T, id int, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, x := o.state(t, id)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("VM %d: state %s, want %s after %s\n%s", id, st, want, timeout, x)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// userDataVM allocates a VM with only CONTEXT/USER_DATA (base64, as
// Sunstone and cloud-init write it): no kernel of its own, no kscloud.
func (o *oneNode) userDataVM(t *testing.T, userData string) int {
	t.Helper()
	tmpl := fmt.Sprintf("NAME=ud\nCPU=1\nMEMORY=96\nDISK=[TYPE=fs,SIZE=8]\nCONTEXT=[USER_DATA=\"%s\",USER_DATA_ENCODING=\"base64\"]\n",
		base64.StdEncoding.EncodeToString([]byte(userData)))
	id := int(o.call(t, "one.vm.allocate", tmpl, false).(int64))
	t.Cleanup(func() { o.callQuiet("one.vm.action", "terminate-hard", id) })
	return id
}

func (o *oneNode) callQuiet(method string, args ...any) {
	body, _ := xmlrpc.EncodeMethodCall(method, append([]any{o.srv.Session()}, args...)...)
	if resp, err := http.Post(o.srv.URL(), "text/xml", bytes.NewReader(body)); err == nil {
		resp.Body.Close()
	}
}

// TestE2EOneInstallInPlace proves, on real libvirtd + QEMU with the
// deploy wrapper run as OpenNebula's driver runs it:
//   - a VM created with only user-data (no kscloud) boots the catalog
//     installer through nchookd, with its console in the VM directory;
//   - kill -9 of nchookd while it installs: the restarted daemon
//     reconciles and boots the installed disk;
//   - the installer's reboot (on_reboot=destroy) → the domain comes back
//     from disk under the same name and UUID within the miss threshold:
//     the VM never leaves RUNNING;
//   - poweroff, then resume: the new deployment boots the disk, not the
//     installer (the finished install is recorded);
//   - nchookd down: the wrapper's own rewrite boots the installer (bake:
//     the installer's power-off ends in POWEROFF, OpenNebula's doing);
//   - a deploy with a bad vm.xml deploys the domain unchanged, one line.
func TestE2EOneInstallInPlace(t *testing.T) {
	start := time.Now()
	c := openVirt(t)
	// The miss threshold: 0.5 s × 20 = 10 s (oned's default: 5 s × 5).
	o := newOneNode(t, 500*time.Millisecond, 20)
	daemon := o.serve(t)
	ctx := context.Background()

	id := o.userDataVM(t, "#!/bin/sh\n# bootparams=kscloud.test=slowreboot\n# kscloud.mode=in-place\n# kscloud.installer=mini\necho cloud-init part\n")
	name := fmt.Sprintf("one-%d", id)
	o.waitState(t, id, "3/3", time.Minute)
	vmdir := o.srv.VMDir(id)
	dep0, _ := os.ReadFile(filepath.Join(vmdir, "deployment.0"))
	for _, want := range []string{"<kernel>", "kscloud.test=slowreboot", "<on_reboot>destroy</on_reboot>", filepath.Join(vmdir, "console.log")} {
		if !bytes.Contains(dep0, []byte(want)) {
			t.Fatalf("deployment.0 (written by OpenNebula's deploy from the wrapper's output) lacks %q:\n%s", want, dep0)
		}
	}
	info, err := c.Info(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, o.node, name, "installing", 30*time.Second)
	waitConsole(t, filepath.Join(vmdir, "console.log"), "KSCLOUD-ACTION: slowreboot", 3*time.Minute)

	// kill -9 of the daemon during the install; the installer reboots
	// while no daemon runs; the restarted daemon finishes the install.
	daemon.Process.Signal(syscall.SIGKILL)
	daemon.Wait()
	os.Remove(o.socket)
	if r := waitStopped(t, c, name, 2*time.Minute); r != "shutdown" {
		t.Fatalf("installer stopped: %s", r)
	}
	stoppedAt := time.Now()
	daemon = o.serve(t)
	st := waitPhase(t, o.node, name, "final", time.Minute)
	t.Logf("installer stop → domain from disk: %.1f s with a daemon restart in between (nchookd's own gap %d ms); miss threshold 10 s, oned's default 25 s",
		time.Since(stoppedAt).Seconds(), st.FinalGapMS)
	after, err := c.Info(ctx, name)
	if err != nil || !after.Active || after.UUID != info.UUID {
		t.Fatalf("domain from disk: %+v %v (installer UUID %s)", after, err, info.UUID)
	}
	live, _ := c.XML(ctx, name, false)
	if strings.Contains(live, "<kernel>") || strings.Contains(live, "<cmdline>") {
		t.Fatalf("the installed system boots a kernel:\n%s", live)
	}
	if _, err := os.Stat(filepath.Join(vmdir, preboot.InstalledMarker)); err != nil {
		t.Fatalf("finished install not recorded in the VM directory: %v", err)
	}
	// RUNNING throughout, past the miss threshold.
	for end := time.Now().Add(11 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if s, _ := o.state(t, id); s != "3/3" {
			t.Fatalf("VM %d left RUNNING after the installer's reboot: %s", id, s)
		}
	}

	// poweroff, resume: the new deployment boots the disk.
	o.call(t, "one.vm.action", "poweroff-hard", id)
	o.waitState(t, id, "8/0", time.Minute)
	o.call(t, "one.vm.action", "resume", id)
	o.waitState(t, id, "3/3", time.Minute)
	dep1, err := os.ReadFile(filepath.Join(vmdir, "deployment.1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(dep1, []byte("<kernel>")) || !bytes.Contains(dep1, []byte(`phase="final"`)) && !bytes.Contains(dep1, []byte(`phase='final'`)) {
		t.Fatalf("resume after the install: deployment.1 is not the disk boot:\n%s", dep1)
	}
	if live, _ := c.XML(ctx, name, false); strings.Contains(live, "<kernel>") {
		t.Fatalf("resume booted a kernel:\n%s", live)
	}
	if st, _ := status(t, o.node, name); st.Phase != "final" {
		t.Fatalf("resume changed the record: %+v", st)
	}

	// nchookd down: the wrapper rewrites itself (bake).
	daemon.Process.Signal(syscall.SIGTERM)
	daemon.Wait()
	os.Remove(o.socket)
	bid := o.userDataVM(t, "bootparams=kscloud.test=poweroff\nkscloud.installer=mini\n")
	o.waitState(t, bid, "3/3", time.Minute)
	bdep, _ := os.ReadFile(filepath.Join(o.srv.VMDir(bid), "deployment.0"))
	if !bytes.Contains(bdep, []byte("kscloud.test=poweroff")) || !bytes.Contains(bdep, []byte("<on_poweroff>destroy</on_poweroff>")) {
		t.Fatalf("daemon down: the wrapper's fallback did not rewrite:\n%s", bdep)
	}
	o.waitState(t, bid, "8/0", 3*time.Minute)

	// A deploy with a bad vm.xml: unchanged, one line, never blocked.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "vm.xml"), []byte("<VM><ID>77</ID><TEMPLATE><CONTEXT><USER_DATA>"), 0o644)
	dom := "<domain type='qemu'>\n\t<name>one-77</name>\n\t<memory unit='KiB'>65536</memory>\n\t<os>\n\t\t<type arch='x86_64'>hvm</type>\n\t</os>\n\t<devices>\n\t</devices>\n</domain>\n"
	dfile := filepath.Join(bad, "deployment.0")
	cmd := exec.Command(o.deploy, dfile, "node1")
	cmd.Stdin = strings.NewReader(dom)
	cmd.Env = o.env
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err = cmd.Run()
	defer c.Destroy(ctx, "one-77")
	if err != nil {
		t.Fatalf("deploy with a bad vm.xml failed: %v\n%s", err, se.String())
	}
	if lines := strings.Split(strings.TrimSpace(se.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "unchanged") {
		t.Fatalf("want one line saying the VM deploys unchanged, got %q", se.String())
	}
	if got, _ := os.ReadFile(dfile); string(got) != dom {
		t.Fatalf("bad vm.xml: the domain was changed:\n%s", got)
	}
	if u := strings.TrimSpace(so.String()); len(u) != 36 {
		t.Fatalf("deploy printed %q, want the domain's UUID", u)
	}
	if i, err := c.Info(ctx, "one-77"); err != nil || !i.Active || i.UUID != strings.TrimSpace(so.String()) {
		t.Fatalf("one-77: %+v %v", i, err)
	}
	t.Logf("test time %.0f s", time.Since(start).Seconds())
}

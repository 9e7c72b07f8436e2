package oneendpoint_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// TestNodeDeployScript: in node mode a deploy runs the deploy script as
// one_vmm_exec runs remotes/vmm/kvm/deploy — "<deployment file> <host>",
// the domain XML on stdin, vm.xml beside the deployment file — and takes
// what it prints as DEPLOY_ID. (The script here creates no domain, so the
// state probe then misses it: SHUTDOWN_POWEROFF → POWEROFF.)
func TestNodeDeployScript(t *testing.T) {
	uri := testenv.Libvirt(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "deploy")
	os.WriteFile(script, []byte("#!/bin/sh\ncat > \"$DEPLOY_OUT/stdin.xml\"\necho \"$1 $2\" > \"$DEPLOY_OUT/args\"\necho fake-uuid-1234\n"), 0o755)
	srv := oneendpoint.Start(t, oneendpoint.Options{Node: &oneendpoint.Node{LibvirtURI: uri, DeployScript: script, Env: []string{"DEPLOY_OUT=" + dir}},
		Monitor: 100 * time.Millisecond, Misses: 3})
	out, err := exec.Command(python3, "-c", `
import sys, xmlrpc.client, time
one = xmlrpc.client.ServerProxy(sys.argv[1])
r = one.one.vm.allocate(sys.argv[2], 'CPU=1\nMEMORY=64\nOS=[KERNEL_CMD="console=ttyS0", ROOT=vda1]\nDISK=[TYPE=fs,SIZE=1]', False)
assert r[0], r
vid = r[1]
for _ in range(200):
    x = one.one.vm.info(sys.argv[2], vid)[1]
    if "<STATE>8</STATE>" in x:
        break
    time.sleep(0.05)
print(vid, "<DEPLOY_ID><![CDATA[fake-uuid-1234]]></DEPLOY_ID>" in x, "<STATE>8</STATE>" in x)
`, srv.URL(), srv.Session()).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "0 True True" {
		t.Errorf("vm 0 deploy id / POWEROFF after the probe missed it: %q", got)
	}
	stdin, _ := os.ReadFile(filepath.Join(dir, "stdin.xml"))
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if !strings.Contains(string(stdin), "<name>one-0</name>") || strings.Contains(string(stdin), "<kernel>") ||
		strings.Count(string(stdin), "<devices>") != 2 || !strings.Contains(string(stdin), "org.qemu.guest_agent.0") || !strings.Contains(string(stdin), "<one:vm xmlns:one=") {
		t.Errorf("domain XML on stdin:\n%s", stdin)
	}
	want := filepath.Join(srv.VMDir(0), "deployment.0") + " node1"
	if strings.TrimSpace(string(args)) != want {
		t.Errorf("deploy script args %q, want %q", args, want)
	}
	if dep, err := os.ReadFile(filepath.Join(srv.VMDir(0), "deployment.0")); err != nil || string(dep) != string(stdin) {
		t.Errorf("deployment.0 differs from the XML on stdin: %v", err)
	}
	// vm.xml as one_vmm_exec writes it (6.0+), what the nchookd wrapper reads.
	if vm, err := os.ReadFile(filepath.Join(srv.VMDir(0), "vm.xml")); err != nil || !strings.HasPrefix(string(vm), "<VM><ID>0</ID>") || !strings.Contains(string(vm), "<KERNEL_CMD>") {
		t.Errorf("vm.xml beside the deployment file: %v\n%s", err, vm)
	}
}

// TestNodeHotplug: an attach reaches the live domain (virsh domblklist);
// a detach frees the disk in oned's view.
func TestNodeHotplug(t *testing.T) {
	uri := testenv.Libvirt(t)
	srv := oneendpoint.Start(t, oneendpoint.Options{Node: &oneendpoint.Node{LibvirtURI: uri}, VNCStart: 21000 + int(time.Now().UnixNano()%9000), Monitor: time.Second})
	script := `
import sys, xmlrpc.client, time, subprocess
one = xmlrpc.client.ServerProxy(sys.argv[1]); s = sys.argv[2]; uri = sys.argv[3]
def wait(f, what):
    for _ in range(600):
        if f(): return
        time.sleep(0.1)
    raise SystemExit("timeout: " + what)
img = one.one.image.allocate(s, 'NAME="hp-%d"\nTYPE=DATABLOCK\nSIZE=4\nPERSISTENT=YES' % time.time_ns(), 1)[1]
wait(lambda: "<STATE>1</STATE>" in one.one.image.info(s, img)[1], "image READY")
vid = one.one.vm.allocate(s, 'CPU=1\nMEMORY=64\nDISK=[TYPE=fs,SIZE=1]', False)[1]
wait(lambda: "<LCM_STATE>3</LCM_STATE>" in one.one.vm.info(s, vid)[1], "RUNNING")
r = one.one.vm.attach(s, vid, 'DISK=[IMAGE_ID=%d, TARGET=vdf]' % img); assert r[0], r
wait(lambda: "<LCM_STATE>3</LCM_STATE>" in one.one.vm.info(s, vid)[1], "RUNNING after attach")
blk = subprocess.run(["virsh", "-c", uri, "domblklist", "one-%d" % vid], capture_output=True, text=True).stdout
print("attached", "vdf" in blk)
r = one.one.vm.detach(s, vid, 1); assert r[0], r
wait(lambda: "<LCM_STATE>3</LCM_STATE>" in one.one.vm.info(s, vid)[1], "RUNNING after detach")
# A guest with no OS never acknowledges a virtio unplug: libvirt accepts
# the request and the device stays until the guest answers; oned drops
# the disk from the VM and frees the image all the same.
print("detached", "vdf" not in one.one.vm.info(s, vid)[1], "<STATE>1</STATE>" in one.one.image.info(s, img)[1])
one.one.vm.action(s, "terminate-hard", vid)
`
	out, err := exec.Command(python3, "-c", script, srv.URL(), srv.Session(), uri).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "attached True\ndetached True True" {
		t.Errorf("hotplug on the domain: %q", got)
	}
}

// TestNodeStockDeployAndReappear: with WriteRemotes' deploy script as the
// driver's deploy action, a deploy writes the deployment file from stdin,
// creates the domain with virsh and DEPLOY_ID is its UUID (7.0). A domain
// destroyed and created again under its name before the miss threshold
// (what nchookd does after an installer's reboot) keeps the VM RUNNING; one
// that stays away makes it POWEROFF.
func TestNodeStockDeployAndReappear(t *testing.T) {
	uri := testenv.Libvirt(t)
	remotes := t.TempDir()
	if err := oneendpoint.WriteRemotes(remotes, uri, "7.0.0"); err != nil {
		t.Fatal(err)
	}
	srv := oneendpoint.Start(t, oneendpoint.Options{Node: &oneendpoint.Node{LibvirtURI: uri, DeployScript: filepath.Join(remotes, oneendpoint.StockDeploy), Env: os.Environ()},
		VNCStart: 22000 + int(time.Now().UnixNano()%9000), Monitor: 500 * time.Millisecond, Misses: 16})
	script := `
import sys, xmlrpc.client, time, subprocess
one = xmlrpc.client.ServerProxy(sys.argv[1]); s = sys.argv[2]; uri = sys.argv[3]
def virsh(*a): return subprocess.run(["virsh", "-c", uri] + list(a), capture_output=True, text=True, check=True).stdout.strip()
def lcm(vid):
    x = one.one.vm.info(s, vid)[1]
    return x.split("<STATE>")[1].split("<")[0] + "/" + x.split("<LCM_STATE>")[1].split("<")[0], x
def wait(vid, want, what):
    for _ in range(300):
        st, x = lcm(vid)
        if st == want: return x
        time.sleep(0.05)
    raise SystemExit("timeout: %s (state %s)" % (what, st))
vid = one.one.vm.allocate(s, 'CPU=1\nMEMORY=64\nDISK=[TYPE=fs,SIZE=1]', False)[1]
x = wait(vid, "3/3", "RUNNING")
dom = "one-%d" % vid
print("uuid", ("<DEPLOY_ID><![CDATA[%s]]></DEPLOY_ID>" % virsh("domuuid", dom)) in x)
dfile = sys.argv[4] + "/deployment.0"
t0 = time.time()
virsh("destroy", dom)
time.sleep(1.0)          # missed at least once
virsh("create", dfile)
gap = time.time() - t0   # under the threshold (8 s), even on a loaded machine
time.sleep(9.0)          # more than the threshold
print("gap %.1f" % gap, file=sys.stderr) if gap >= 8 else None
print("back", lcm(vid)[0])
virsh("destroy", dom)
wait(vid, "8/0", "POWEROFF after the domain stayed away")
print("gone", lcm(vid)[0])
one.one.vm.action(s, "terminate-hard", vid)
`
	out, err := exec.Command(python3, "-c", script, srv.URL(), srv.Session(), uri, srv.VMDir(0)).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "uuid True\nback 3/3\ngone 8/0" {
		t.Errorf("stock deploy / reappearing domain: %q", got)
	}
}

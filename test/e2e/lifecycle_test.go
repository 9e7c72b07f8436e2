package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/internal/virt"
	"github.com/kscloud/kscloud/test/ncsim"
)

// ncLaunch plays the NC: instance dir, pre-boot hook, create the domain.
func ncLaunch(t *testing.T, n *node, c *virt.Conn, name, userData string, kernel, ramdisk, disk string) *ncsim.Instance {
	t.Helper()
	inst := &ncsim.Instance{Name: name, Dir: filepath.Join(n.root, "work", "AIDA", name), Disk: disk,
		Kernel: kernel, Ramdisk: ramdisk, UserData: []byte(userData)}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ncsim.RunHooks(ctx, n.hooks, "euca-nc-pre-boot", "/", inst.Dir, n.env); err != nil {
		t.Fatal(err)
	}
	xml, err := ncsim.DomainXML(inst)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateXML(ctx, xml); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Destroy(context.Background(), name) })
	return inst
}

func status(t *testing.T, n *node, name string) (hookproto.InstanceStatus, error) {
	t.Helper()
	out, err := exec.Command(bins.nchookd, "status", "--json", "--config", n.cfg, name).Output()
	if err != nil {
		return hookproto.InstanceStatus{}, fmt.Errorf("nchookd status: %v", err)
	}
	var resp hookproto.Response
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Instances) != 1 {
		return hookproto.InstanceStatus{}, fmt.Errorf("status output %q: %v", out, err)
	}
	return resp.Instances[0], nil
}

func waitPhase(t *testing.T, n *node, name, phase string, timeout time.Duration) hookproto.InstanceStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last hookproto.InstanceStatus
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := status(t, n, name)
		last, lastErr = st, err
		if err == nil && st.Phase == phase {
			return st
		}
		if err == nil && st.Phase == "failed" && phase != "failed" {
			t.Fatalf("install failed: %s\nlast lines: %q", st.Reason, st.LastLines)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("instance %s: phase %q not reached in %s; last %+v %v", name, phase, timeout, last, lastErr)
	return last
}

func miniFiles(t *testing.T) (kernel, ramdisk, disk string) {
	dir := t.TempDir()
	disk = filepath.Join(dir, "disk.img")
	os.WriteFile(disk, make([]byte, 1<<20), 0o644)
	return testenv.Kernel(t), testenv.MiniInitrd(t, dir), disk
}

// TestE2EInPlaceSwitch: the installer reboots; nchookd re-creates the
// domain from its disk under the same name and UUID, without kernel,
// cmdline or VNC; VNC was there during the install.
func TestE2EInPlaceSwitch(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	n.serve(t)
	name := fmt.Sprintf("i-ip%05x", os.Getpid()&0xfffff)
	k, r, d := miniFiles(t)
	ncLaunch(t, n, c, name, "bootparams=kscloud.test=slowreboot\nkscloud.mode=in-place\nkscloud.vnc=yes\n", k, r, d)
	ctx := context.Background()
	live, err := c.XML(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := libvirtxml.VNCGraphics([]byte(live)); !ok || v.Port < 5900 || len(v.Password) != 8 {
		t.Fatalf("no VNC during the install: ok=%v port=%d", ok, v.Port)
	}
	info, _ := c.Info(ctx, name)
	st := waitPhase(t, n, name, "installing", 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for st.VNC == nil || st.VNC.Port == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the VNC port: %+v", st.VNC)
		}
		time.Sleep(200 * time.Millisecond)
		st, _ = status(t, n, name)
	}
	st = waitPhase(t, n, name, "final", 4*time.Minute)
	t.Logf("stop → final domain gap: %d ms", st.FinalGapMS)
	after, err := c.Info(ctx, name)
	if err != nil || !after.Active || after.UUID != info.UUID {
		t.Fatalf("final domain: %+v %v (installer UUID %s)", after, err, info.UUID)
	}
	final, _ := c.XML(ctx, name, true)
	for _, bad := range []string{"<kernel>", "<cmdline>", "<initrd>", "type='vnc'", `type="vnc"`} {
		if strings.Contains(final, bad) {
			t.Fatalf("final domain still has %s:\n%s", bad, final)
		}
	}
	if !strings.Contains(final, "console.log") {
		t.Fatal("final domain lost its serial log")
	}
	if st.FinalGapMS <= 0 || st.FinalGapMS > 5000 {
		t.Fatalf("gap %d ms: want well inside the NC's ~20 s tolerance", st.FinalGapMS)
	}
}

// TestE2EBakeFinished: a bake's power-off is recorded as finished.
func TestE2EBakeFinished(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	n.serve(t)
	name := fmt.Sprintf("i-bk%05x", os.Getpid()&0xfffff)
	k, r, d := miniFiles(t)
	ncLaunch(t, n, c, name, "bootparams=kscloud.test=poweroff\n", k, r, d)
	st := waitPhase(t, n, name, "finished", 4*time.Minute)
	if _, err := c.Info(context.Background(), name); !virt.IsNotFound(err) {
		t.Fatalf("bake installer domain still there: %v", err)
	}
	if st.Mode != "bake" {
		t.Fatalf("%+v", st)
	}
}

// TestE2EWatchdog: a silent installer trips the inactivity watchdog.
func TestE2EWatchdog(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	n.setInactivity(t, "20s")
	n.serve(t)
	name := fmt.Sprintf("i-wd%05x", os.Getpid()&0xfffff)
	k, r, d := miniFiles(t)
	ncLaunch(t, n, c, name, "bootparams=kscloud.test=hang\nkscloud.mode=in-place\n", k, r, d)
	st := waitPhase(t, n, name, "failed", 4*time.Minute)
	// The reason names the limit and the last console line (the guest's
	// last words, unless it was too slow to say anything in time).
	if !strings.Contains(st.Reason, "no console output and no disk writes for 20s (last: ") {
		t.Fatalf("reason %q", st.Reason)
	}
	t.Logf("watchdog reason: %s", st.Reason)
	if info, err := c.Info(context.Background(), name); err != nil || !info.Active {
		t.Fatalf("a stuck installer must be kept for debugging: %+v %v", info, err)
	}
}

// TestE2EDaemonKilled: (c) kill -9 of nchookd while the test installer
// runs an in-place install; the installer ends while no daemon runs; the
// restarted daemon reconciles and the instance still boots from its disk.
func TestE2EDaemonKilled(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	cmd := n.serve(t)
	ks := baseKS + "reboot\n"
	url := serveKS(t, ks)
	name := fmt.Sprintf("i-k9%05x", os.Getpid()&0xfffff)
	inst := ncInstall(t, n, c, name, "bootparams=inst.ks="+url+" ip=dhcp "+tcgArgs+"\nkscloud.mode=in-place\n")
	waitPhase(t, n, name, "installing", 30*time.Second)
	waitConsole(t, inst.ConsoleLog(), "Starting installer", 4*time.Minute)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	os.Remove(n.socket)
	if r := waitStopped(t, c, name, 6*time.Minute); r != "shutdown" {
		t.Fatalf("installer stopped: %s", r)
	}
	n.serve(t)
	waitPhase(t, n, name, "final", time.Minute)
	waitConsole(t, inst.ConsoleLog(), "kscloud-installed sha256="+sha(ks), 4*time.Minute)
}

// TestE2ELibvirtdRestart: (d) libvirtd restarts during an in-place
// install; nchookd reconnects, and the instance still boots from its disk.
func TestE2ELibvirtdRestart(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	n.serve(t)
	ks := baseKS + "reboot\n"
	url := serveKS(t, ks)
	name := fmt.Sprintf("i-lr%05x", os.Getpid()&0xfffff)
	inst := ncInstall(t, n, c, name, "bootparams=inst.ks="+url+" ip=dhcp "+tcgArgs+"\nkscloud.mode=in-place\n")
	waitPhase(t, n, name, "installing", 30*time.Second)
	waitConsole(t, inst.ConsoleLog(), "Starting installer", 4*time.Minute)
	restartLibvirtd(t)
	waitPhase(t, n, name, "final", 6*time.Minute)
	waitConsole(t, inst.ConsoleLog(), "kscloud-installed sha256="+sha(ks), 4*time.Minute)
}

func restartLibvirtd(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("pkill", "-x", "libvirtd").CombinedOutput(); err != nil {
		t.Fatalf("pkill libvirtd: %v %s", err, out)
	}
	for i := 0; i < 50; i++ {
		if exec.Command("pgrep", "-x", "libvirtd").Run() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := exec.Command("libvirtd", "-d").CombinedOutput(); err != nil {
		t.Fatalf("libvirtd -d: %v %s", err, out)
	}
	// The libvirtd scripts/libvirtd.sh started (its pid in the marker) is
	// the one killed here: the marker names the new one, so the script's
	// stop at the end of make test stops it and leaves no libvirtd behind.
	const marker = "/run/kscloud-libvirtd/libvirtd"
	if _, err := os.Stat(marker); err == nil {
		out, err := exec.Command("pgrep", "-xo", "libvirtd").Output()
		if err != nil {
			t.Fatalf("pgrep libvirtd after restart: %v", err)
		}
		if err := os.WriteFile(marker, out, 0o644); err != nil {
			t.Fatalf("libvirtd marker: %v", err)
		}
	}
	for i := 0; i < 100; i++ {
		if exec.Command("virsh", "-c", "qemu:///system", "version").Run() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("libvirtd did not come back")
}

package ec2endpoint_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/internal/virt"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// nodeWait paces waits on real guests.
var nodeWait = wait.Waiter{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Timeout: 3 * time.Minute}

type nodeEnv struct {
	srv  *ec2endpoint.Server
	p    *ec2.Provider
	dir  string
	conn *virt.Conn
}

// startNode starts a node-mode endpoint on the test libvirtd with hooksDir
// ("" : the real hook) and short delays.
func startNode(t *testing.T, hooksDir string) *nodeEnv {
	t.Helper()
	uri := testenv.Libvirt(t)
	dir := t.TempDir()
	o := &ec2endpoint.NodeOptions{LibvirtURI: uri, Dir: dir, HooksDir: hooksDir}
	if hooksDir == "" {
		h := ec2endpoint.InstallHook(t, dir, uri)
		o.HooksDir, o.HookEnv = h.Dir, h.Env
	}
	d := fast
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Node: o, Delays: &d})
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := virt.Open(c, uri, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// The client retries as kscloud's does (the SDK's default): these tests
	// are about guests and hooks, and a call that meets a connection reset
	// or closed mid-answer (CI saw "read tcp …: use of closed network
	// connection" on GetConsoleOutput with a 200 once, not reproduced in
	// 15 runs since) is retried by the SDK in kscloud (its
	// RetryableConnectionError), not failed. The API's answers themselves
	// are tested with one attempt (provider).
	return &nodeEnv{srv: srv, p: providerAttempts(t, srv, ec2.SignatureV4, "", 0), dir: dir, conn: conn}
}

func (n *nodeEnv) instanceDir(id string) string {
	return filepath.Join(n.dir, "instances", "work", "AIDAKSCLOUDTEST", id)
}

// bootImages registers the test kernel and the busybox initramfs (which
// prints its command line and powers off) as an EKI and an ERI.
func (n *nodeEnv) bootImages(t *testing.T) (eki, eri string) {
	t.Helper()
	var err error
	if eki, err = n.srv.AddKernel(testenv.Kernel(t)); err != nil {
		t.Fatal(err)
	}
	if eri, err = n.srv.AddRamdisk(testenv.MiniInitrd(t, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	return eki, eri
}

// TestNodeBootPowerOff is seed 001 on the endpoint: an instance-store EMI
// with an EKI/ERI, user-data carrying bootparams=, the real hook rewriting
// the domain before it boots; the guest prints its command line and powers
// off; the instance terminates with EC2's state reason and its console
// output is what the guest wrote.
func TestNodeBootPowerOff(t *testing.T) {
	n := startNode(t, "")
	eki, eri := n.bootImages(t)
	c := ctx(t)
	img, err := n.p.Client().RegisterImage(c, &awsec2.RegisterImageInput{
		Name: aws.String("fake-emi"), ImageLocation: aws.String("f16/fake-emi.img.manifest.xml"),
		KernelId: aws.String(eki), RamdiskId: aws.String(eri),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Image(c, n.p, aws.ToString(img.ImageId), cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	params := "ksdevice=link ip=dhcp kscloud.test=poweroff"
	inst, err := n.p.RunInstance(c, cloud.InstanceSpec{ImageID: aws.ToString(img.ImageId), UserData: []byte("#!/bin/sh\n# bootparams=" + params + "\n")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceTerminated)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.StateReason, "Client.InstanceInitiatedShutdown") {
		t.Errorf("state reason %q: want Client.InstanceInitiatedShutdown", got.StateReason)
	}
	out, err := n.p.ConsoleOutput(c, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "KSCLOUD-CMDLINE: " + params + " console=ttyS1"; !bytes.Contains(out, []byte(want)) {
		t.Errorf("console output does not hold %q:\n%s", want, out)
	}
	if _, err := os.Stat(n.instanceDir(inst.ID)); !os.IsNotExist(err) {
		t.Errorf("instance directory after terminate: %v, want it removed", err)
	}
}

// TestNodeStopStart: an EBS image registered from a snapshot, shutdown
// behaviour stop: the guest's power-off stops the instance, the root
// volume and disk stay; StartInstances boots it again (pre-boot hook
// again); terminate removes root volume and files.
func TestNodeStopStart(t *testing.T) {
	n := startNode(t, "")
	eki, eri := n.bootImages(t)
	c := ctx(t)
	vol := newVolume(t, n.p, 1)
	snap, err := n.p.CreateSnapshot(c, vol, "root", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Snapshot(c, n.p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	img, err := n.p.RegisterImage(c, cloud.ImageSpec{Name: "ebs-pv", SnapshotID: snap.ID, KernelID: eki, RamdiskID: eri, Virtualization: "paravirtual"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Image(c, n.p, img.ID, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	inst, err := n.p.RunInstance(c, cloud.InstanceSpec{ImageID: img.ID, InstanceInitiatedShutdown: "stop", UserData: []byte("bootparams=kscloud.test=poweroff first\n")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceStopped)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Volumes) != 1 {
		t.Fatalf("stopped instance volumes %+v: want the root volume", got.Volumes)
	}
	root := got.Volumes[0].VolumeID
	if v, err := n.p.Volume(c, root); err != nil || v.State != cloud.VolumeInUse {
		t.Errorf("root volume of the stopped instance: %+v, %v", v, err)
	}
	rootImg := filepath.Join(n.instanceDir(inst.ID), "root.img")
	if st, err := os.Stat(rootImg); err != nil || st.Size() != 1<<30 {
		t.Errorf("root disk %s: %v, %v; want 1 GiB", rootImg, st, err)
	}
	first, _ := n.p.ConsoleOutput(c, inst.ID)
	if !bytes.Contains(first, []byte("kscloud.test=poweroff first")) {
		t.Errorf("console of the first boot:\n%s", first)
	}

	if _, err := n.p.Client().StartInstances(c, &awsec2.StartInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
		t.Fatal(err)
	}
	// It runs, powers off again and stops again.
	if _, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceRunning, cloud.InstanceStopping, cloud.InstanceStopped); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceStopped); err != nil {
		t.Fatal(err)
	}
	// A second boot: a later launch time, and a console (the NC's
	// console.log, rewritten by the new domain) with the command line.
	restarted, err := n.p.Instance(c, inst.ID)
	if err != nil || !restarted.Launched.After(got.Launched) {
		t.Errorf("launch time after start %v, before %v (%v): want later", restarted.Launched, got.Launched, err)
	}
	again, _ := n.p.ConsoleOutput(c, inst.ID)
	if !bytes.Contains(again, []byte("KSCLOUD-CMDLINE: kscloud.test=poweroff first")) {
		t.Errorf("console after the second boot:\n%s", again)
	}

	if err := n.p.TerminateInstance(c, inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceTerminated); err != nil {
		t.Fatal(err)
	}
	if _, err := n.p.Volume(c, root); !cloud.IsNotFound(err) {
		t.Errorf("root volume after terminate: %v, want not found", err)
	}
	if _, err := os.Stat(n.instanceDir(inst.ID)); !os.IsNotExist(err) {
		t.Errorf("instance directory after terminate: %v", err)
	}
}

// TestNodeHookFailure: a pre-boot hook that exits non-zero cancels the
// launch (terminated, the hook's message in the state reason, no domain);
// a failing pre-clean hook keeps the instance's files.
func TestNodeHookFailure(t *testing.T) {
	hooks := t.TempDir()
	script := "#!/bin/sh\ncase \"$1\" in\neuca-nc-pre-boot) echo 'refusing this launch' >&2; exit 3;;\neuca-nc-pre-clean) exit 1;;\nesac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(hooks, "refuse"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, hooks)
	c := ctx(t)
	img, err := n.p.Client().RegisterImage(c, &awsec2.RegisterImageInput{Name: aws.String("installer"), ImageLocation: aws.String("b/installer.manifest.xml")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Image(c, n.p, aws.ToString(img.ImageId), cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	inst, err := n.p.RunInstance(c, cloud.InstanceSpec{ImageID: aws.ToString(img.ImageId)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceTerminated)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.StateReason, "refuse exited 3: refusing this launch") {
		t.Errorf("state reason %q: want the hook's exit and message", got.StateReason)
	}
	if _, err := n.conn.Info(c, inst.ID); !virt.IsNotFound(err) {
		t.Errorf("domain of the refused launch: %v, want none", err)
	}
	if _, err := os.Stat(filepath.Join(n.instanceDir(inst.ID), "instance.xml")); err != nil {
		t.Errorf("instance files after a failed pre-clean hook: %v, want them kept", err)
	}
}

// TestNodeVolumes: volumes and snapshots are sparse files that copy their
// contents; an attached volume is in the running domain at the device
// asked for, and leaves it on detach.
func TestNodeVolumes(t *testing.T) {
	n := startNode(t, "")
	c := ctx(t)
	vol := newVolume(t, n.p, 1)
	volFile := filepath.Join(n.dir, "volumes", vol+".img")
	mark := []byte("kscloud ec2endpoint node-mode data")
	f, err := os.OpenFile(volFile, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("volume file: %v", err)
	}
	if _, err := f.WriteAt(mark, 300<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	snap, err := n.p.CreateSnapshot(c, vol, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Snapshot(c, n.p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	copyVol, err := n.p.CreateVolume(c, cloud.VolumeSpec{SnapshotID: snap.ID, SizeGiB: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Volume(c, n.p, copyVol.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(n.dir, "snapshots", snap.ID+".img"), filepath.Join(n.dir, "volumes", copyVol.ID+".img")} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(mark))
		_, err = f.ReadAt(got, 300<<20)
		st, _ := f.Stat()
		f.Close()
		if err != nil || !bytes.Equal(got, mark) {
			t.Errorf("%s: %q, %v; want the volume's data", filepath.Base(p), got, err)
		}
		if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 1<<20 {
			t.Errorf("%s: %d bytes allocated of %d: not sparse", filepath.Base(p), blocks, st.Size())
		}
	}
	if st, _ := os.Stat(filepath.Join(n.dir, "volumes", copyVol.ID+".img")); st == nil || st.Size() != 2<<30 {
		t.Errorf("volume from a snapshot, 2 GiB asked: size %v", st)
	}

	// An instance whose disk holds nothing bootable: it runs (SeaBIOS loops).
	img, err := n.p.RegisterImage(c, cloud.ImageSpec{Name: "blank", SnapshotID: snap.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Image(c, n.p, img.ID, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	inst, err := n.p.RunInstance(c, cloud.InstanceSpec{ImageID: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceRunning); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(n.instanceDir(inst.ID), "root.img"))
	if err != nil || !bytes.Equal(root[300<<20:300<<20+len(mark)], mark) {
		t.Errorf("root disk of an instance of the image: not a copy of the snapshot (%v)", err)
	}
	root = nil
	if err := n.p.AttachVolume(c, copyVol.ID, inst.ID, "/dev/sdf"); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Attachment(c, n.p, copyVol.ID, "attached"); err != nil {
		t.Fatal(err)
	}
	x, err := n.conn.XML(c, inst.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(x, copyVol.ID+".img") || !strings.Contains(x, `dev="sdf"`) && !strings.Contains(x, `dev='sdf'`) {
		t.Errorf("live domain XML after attach has no %s at sdf:\n%s", copyVol.ID, x)
	}
	if err := n.p.DetachVolume(c, copyVol.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Attachment(c, n.p, copyVol.ID, "detached"); err != nil {
		t.Fatal(err)
	}
	if x, err := n.conn.XML(c, inst.ID, false); err != nil || strings.Contains(x, copyVol.ID+".img") {
		t.Errorf("live domain XML after detach still has %s (%v)", copyVol.ID, err)
	}
	// PowerOff pulls the plug: the default shutdown behaviour of an EBS
	// instance is stop.
	if err := n.srv.PowerOff(inst.ID); err != nil {
		t.Fatal(err)
	}
	got, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceStopped)
	if err != nil || !strings.Contains(got.StateReason, "InstanceInitiatedShutdown") {
		t.Errorf("after PowerOff: %+v, %v; want stopped by an instance-initiated shutdown", got, err)
	}
	if err := n.p.TerminateInstance(c, inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeWait.Instance(c, n.p, inst.ID, cloud.InstanceTerminated); err != nil {
		t.Fatal(err)
	}
	if _, err := n.conn.Info(c, inst.ID); !virt.IsNotFound(err) {
		t.Errorf("domain after terminate: %v, want gone", err)
	}
}

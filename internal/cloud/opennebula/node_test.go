package opennebula_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// TestE2EOpenNebulaNode runs kscloud's OpenNebula steps against the
// endpoint in node mode: real transient one-<ID> domains on libvirtd
// booting the Debian kernel with the test initrd (which powers off). A
// bake's deployment file is the KVM driver's (kernel, initrd, cmdline
// with the lease's ip=, no serial, no on_*) and the kickstart is on the
// CONTEXT CD-ROM; the guest's power-off is seen through the state probe's
// miss threshold; in place, the resumed domain has no kernel and boots
// disk 0, with VNC on the port oned assigns.
func TestE2EOpenNebulaNode(t *testing.T) {
	uri := testenv.Libvirt(t)
	dir := t.TempDir()
	kernel, initrd := testenv.Kernel(t), testenv.MiniInitrd(t, dir)
	srv := oneendpoint.Start(t, oneendpoint.Options{
		Node: &oneendpoint.Node{LibvirtURI: uri}, VNCStart: 20000 + rand.IntN(20000),
		Sched: time.Second, Prolog: 500 * time.Millisecond, Boot: 200 * time.Millisecond,
		Monitor: time.Second, Misses: 3, Epilog: 500 * time.Millisecond,
	})
	p, err := opennebula.New(context.Background(), opennebula.Config{Endpoint: srv.URL(), Session: srv.Session()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := install.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wf := &opennebula.Workflow{P: p, Kernel: kernel, Initrd: initrd, Args: "console=tty0 kscloud.test=poweroff",
		Kickstart: []byte("text\npoweroff\n"), Poll: 500 * time.Millisecond, PollMax: 2 * time.Second,
		Provenance: &install.Provenance{KickstartSource: "ks.cfg", KickstartSHA256: "0123", Date: time.Now()},
		Status:     func(l string) { t.Log(l) }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	b := install.NewBuild("bake", "opennebula", install.Spec{Name: "node", DiskGiB: 1, MemoryMB: 256, Timeout: install.Duration{Duration: 5 * time.Minute}})
	wf.Provenance.Build = b.ID
	if err := (&install.Engine{Provider: p, Store: store}).Run(ctx, b, wf.BakeSteps()); err != nil {
		t.Fatal(err)
	}
	inst := recorded(b, "installer")
	n := vmNum(t, inst.ID)
	vmDir := srv.VMDir(n)
	// The VM directory is gone with the DONE VM; the bake's deployment
	// was checked by the in-place run below, which keeps its VM.
	t.Logf("bake: image %s, install %.1f s, %.2f s after the power-off", b.Result.ImageID, b.Result.InstallSeconds, b.Result.OverheadSeconds)
	if img, err := p.Image(ctx, b.Result.ImageID); err != nil || img.State != cloud.ImageAvailable {
		t.Fatalf("baked image: %+v, %v", img, err)
	}
	if _, err := os.Stat(vmDir); !os.IsNotExist(err) {
		t.Errorf("VM directory %s of the terminated installer: %v", vmDir, err)
	}

	r := install.NewBuild("run", "opennebula", install.Spec{Name: "node-run", DiskGiB: 1, MemoryMB: 256, VNC: true, Timeout: install.Duration{Duration: 5 * time.Minute}})
	wf.Provenance.Build = r.ID
	if err := (&install.Engine{Provider: p, Store: store}).Run(ctx, r, wf.RunSteps()); err != nil {
		t.Fatal(err)
	}
	n = vmNum(t, r.Result.InstanceID)
	t.Cleanup(func() { p.TerminateInstance(context.Background(), r.Result.InstanceID) })
	dep0, err := os.ReadFile(filepath.Join(srv.VMDir(n), "deployment.0"))
	if err != nil {
		t.Fatal(err)
	}
	d0 := string(dep0)
	for _, want := range []string{fmt.Sprintf("<name>one-%d</name>", n), "<kernel>" + srv.VMDir(n) + "/kernel</kernel>", "<initrd>", "<cmdline>ip=192.168.150.", "inst.ks=hd:LABEL=CONTEXT:/ks-" + r.ID + ".cfg", "device='cdrom'"} {
		if !strings.Contains(d0, want) {
			t.Errorf("installer deployment.0 lacks %q:\n%s", want, d0)
		}
	}
	for _, bad := range []string{"<serial", "<console", "<on_reboot", "<on_poweroff"} {
		if strings.Contains(d0, bad) {
			t.Errorf("installer deployment.0 has %s (the KVM driver writes none):\n%s", bad, d0)
		}
	}
	if _, err := os.Stat(filepath.Join(srv.VMDir(n), "vm.xml")); err != nil {
		t.Errorf("vm.xml beside the deployment: %v", err)
	}
	live, err := srv.DomainXML(n)
	if err != nil {
		t.Fatalf("domain of %s after resume: %v", r.Result.InstanceID, err)
	}
	if strings.Contains(live, "<kernel>") || !strings.Contains(live, "<boot order='1'/>") {
		t.Errorf("resumed domain still boots the installer, or not disk 0:\n%s", live)
	}
	if want := fmt.Sprintf("port='%d'", srv.Options().VNCStart+n); !strings.Contains(live, want) {
		t.Errorf("resumed domain VNC: want %s:\n%s", want, live)
	}
	iso, err := os.ReadFile(filepath.Join(srv.VMDir(n), "disk.1"))
	if err != nil || !bytes.Contains(iso, []byte("ks-"+r.ID+".cfg")) || !bytes.Contains(iso, []byte("CONTEXT")) {
		t.Errorf("context CD-ROM: %v; want label CONTEXT and ks-%s.cfg on it", err, r.ID)
	}
	if c, err := p.VNCConsole(ctx, r.Result.InstanceID); err != nil || c.Port != srv.Options().VNCStart+n || c.Password == "" {
		t.Errorf("VNC console: %+v, %v", c, err)
	}
}

// TestConformanceNode runs the conformance suite against the endpoint in
// node mode: instances are real one-<ID> domains (an empty disk: they
// boot to the BIOS), attach and detach hotplug into them.
func TestConformanceNode(t *testing.T) {
	uri := testenv.Libvirt(t)
	srv := oneendpoint.Start(t, oneendpoint.Options{Node: &oneendpoint.Node{LibvirtURI: uri}, VNCStart: 20000 + rand.IntN(20000),
		Monitor: time.Second, Misses: 3})
	cloudtest.Run(t, func(t *testing.T) cloud.Provider { return newProvider(t, srv) }, cloudtest.Options{
		Waiter: wait.Waiter{Initial: 200 * time.Millisecond, Max: time.Second}, Missing: missing, Device: "/dev/vdf", SnapshotInUseDeletable: true,
		Timeout: 5 * time.Minute,
	})
}

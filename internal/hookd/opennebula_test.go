package hookd

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/virt"
)

// oneInstaller is an installer domain of OpenNebula VM 7 whose console log
// is in its VM directory.
func oneInstaller(t *testing.T, name, mode, vmdir string) (xml, console string) {
	console = filepath.Join(vmdir, "console.log")
	x := installer(t, mode, console)
	return strings.Replace(x, "<name>i-1</name>", "<name>"+name+"</name>", 1), console
}

func testServer(store *Store, f *Follower) *Server {
	return New(quiet, f.cfg(), store, "test")
}

// An OpenNebula install in place: the installer's reboot brings the VM
// back from its disk under its name and UUID, the finished install is
// recorded in the store and in the VM directory, and the deploy hook's
// question "has this VM installed?" is answered from either, also on a
// host whose daemon never saw the VM (migration), and the record is
// dropped once the VM directory is gone.
func TestOneInstallInPlaceRecorded(t *testing.T) {
	state, vmdir := t.TempDir(), t.TempDir()
	v := newFakeVirt()
	f, store := newFollower(t, v, state)
	srv := testServer(store, f)
	ctx := context.Background()
	x, con := oneInstaller(t, "one-7", "in-place", vmdir)
	os.WriteFile(con, []byte("Starting installer, one moment...\nInstalling bash (3/9)\n"), 0o644)
	dfile := filepath.Join(vmdir, "deployment.0")
	os.WriteFile(dfile, []byte(x), 0o644)
	v.CreateXML(ctx, x)
	store.Started(&preboot.Outcome{Instance: "one-7", Dir: vmdir, DomainFile: dfile, Mode: "in-place", Changed: true})
	if _, ok, err := srv.InstallFinished("one-7", vmdir); ok || err != nil {
		t.Fatalf("installing VM said finished (%v)", err)
	}
	f.handle(ctx, virt.Event{Domain: "one-7", Kind: virt.Started})
	f.poll(ctx)
	if st, _ := store.Get("one-7"); st.Progress != "installing packages 3/9 (bash)" {
		t.Fatalf("progress from the VM directory's console: %+v", st)
	}
	os.WriteFile(con, []byte("Starting installer, one moment...\nInstalling bash (3/9)\nreboot: Restarting system\n"), 0o644)
	v.stop("one-7")
	f.handle(ctx, virt.Event{Domain: "one-7", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
	st, _ := store.Get("one-7")
	if st.Phase != PhaseFinal || len(v.created) != 2 {
		t.Fatalf("after the installer's reboot: %+v, %d domains created", st, len(v.created))
	}
	if fin := v.created[1]; strings.Contains(fin, "<kernel>") || !strings.Contains(fin, "<name>one-7</name>") ||
		!strings.Contains(fin, "11111111-2222-3333-4444-555555555555") {
		t.Fatalf("final domain:\n%s", fin)
	}
	if mode, ok, err := srv.InstallFinished("one-7", vmdir); !ok || err != nil || mode != "in-place" {
		t.Fatalf("finished: %q %v %v", mode, ok, err)
	}
	m, ok, err := preboot.ReadInstalled(f.cfg(), vmdir, "one-7")
	if !ok || err != nil || m.Mode != "in-place" || m.FinishedAt.IsZero() {
		t.Fatalf("marker: %+v %v %v", m, ok, err)
	}
	// Another host (or this one after the record was swept): the marker.
	other, err := OpenStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if mode, ok, err := New(quiet, f.cfg(), other, "test").InstallFinished("one-7", vmdir); !ok || err != nil || mode != "in-place" {
		t.Fatalf("from the marker alone: %q %v %v", mode, ok, err)
	}
	// Terminated: the VM directory goes, and the record with it.
	os.RemoveAll(vmdir)
	f.Reconcile(ctx)
	if _, ok := store.Get("one-7"); ok {
		t.Fatal("record of a VM whose directory is gone kept")
	}
}

// A bake the hook's fallback rewrote while the daemon was down: adopted
// from the domain's metadata with its VM directory, finished at the
// power-off (the VM's POWEROFF is OpenNebula's to declare: nothing is
// created), recorded so that a resume boots the disk.
func TestOneBakeAdoptedRecorded(t *testing.T) {
	vmdir := t.TempDir()
	v := newFakeVirt()
	f, store := newFollower(t, v, t.TempDir())
	srv := testServer(store, f)
	ctx := context.Background()
	x, con := oneInstaller(t, "one-8", "bake", vmdir)
	os.WriteFile(con, []byte("Installing bash (9/9)\nreboot: Power down\n"), 0o644)
	v.CreateXML(ctx, x)
	f.handle(ctx, virt.Event{Domain: "one-8", Kind: virt.Started})
	if st, ok := store.Get("one-8"); !ok || st.Dir != vmdir {
		t.Fatalf("adopted without its VM directory: %+v", st)
	}
	v.stop("one-8")
	f.handle(ctx, virt.Event{Domain: "one-8", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
	if len(v.created) != 1 {
		t.Fatal("bake: a domain was created after the power-off")
	}
	if mode, ok, err := srv.InstallFinished("one-8", vmdir); !ok || err != nil || mode != "bake" {
		t.Fatalf("bake finished: %q %v %v", mode, ok, err)
	}
}

// A failed install is not finished: the next deploy runs the installer.
func TestOneFailedNotRecorded(t *testing.T) {
	vmdir := t.TempDir()
	v := newFakeVirt()
	f, store := newFollower(t, v, t.TempDir())
	ctx := context.Background()
	x, con := oneInstaller(t, "one-9", "in-place", vmdir)
	os.WriteFile(con, []byte("Traceback (most recent call last):\n"), 0o644)
	v.CreateXML(ctx, x)
	store.Started(&preboot.Outcome{Instance: "one-9", Dir: vmdir, Mode: "in-place", Changed: true})
	f.handle(ctx, virt.Event{Domain: "one-9", Kind: virt.Started})
	v.stop("one-9")
	f.handle(ctx, virt.Event{Domain: "one-9", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
	if _, ok, _ := testServer(store, f).InstallFinished("one-9", vmdir); ok {
		t.Fatal("failed install recorded as finished")
	}
	if _, err := os.Lstat(filepath.Join(vmdir, preboot.InstalledMarker)); err == nil {
		t.Fatal("marker written for a failed install")
	}
}

// The VM directory belongs to the node's OpenNebula user: a marker it
// forged for another VM, garbage, or a symlink is never a finished
// install, and says why.
func TestOneMarkerHostile(t *testing.T) {
	root := t.TempDir()
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{root}
	store, err := OpenStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(quiet, cfg, store, "test")
	for name, plant := range map[string]func(p string){
		"other VM": func(p string) { os.WriteFile(p, []byte(`{"instance":"one-1","mode":"in-place"}`), 0o644) },
		"garbage":  func(p string) { os.WriteFile(p, []byte("yes"), 0o644) },
		"bad mode": func(p string) { os.WriteFile(p, []byte(`{"instance":"one-5","mode":"fry"}`), 0o644) },
		"symlink": func(p string) {
			target := filepath.Join(root, "t.json")
			os.WriteFile(target, []byte(`{"instance":"one-5","mode":"in-place"}`), 0o644)
			os.Symlink(target, p)
		},
	} {
		dir := filepath.Join(root, strings.ReplaceAll(name, " ", "-"))
		os.Mkdir(dir, 0o755)
		plant(filepath.Join(dir, preboot.InstalledMarker))
		mode, ok, err := srv.InstallFinished("one-5", dir)
		if ok || err == nil || !strings.Contains(err.Error(), preboot.InstalledMarker) && name != "symlink" {
			t.Errorf("%s: finished=%v mode=%q err=%v", name, ok, mode, err)
		}
	}
	if _, ok, err := srv.InstallFinished("one-5", filepath.Join(root, "none")); ok || err != nil {
		t.Errorf("missing VM directory (a first deploy): ok=%v err=%v", ok, err)
	}
}

// The one-deploy op for a VM whose install finished (its record says
// final): the domain OpenNebula generated again, installer kernel and
// user-data and all, comes back as its disk boot, and the record stays
// final (a resume after poweroff, with the same user-data).
func TestServerOneDeployFinished(t *testing.T) {
	store, err := OpenStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Installer["fedora-40"] = config.Installer{Kernel: "/k", Initrd: "/i"}
	cfg.Hook.InstancesRoot = []string{"/var/lib/one/datastores"}
	srv := New(quiet, cfg, store, "test")
	dom := oneTestdata(t, "deployment-7.0.xml")
	dfile := "/var/lib/one//datastores/0/42/deployment.3"
	store.Started(&preboot.Outcome{Instance: "one-42", Dir: filepath.Dir(dfile), Mode: "in-place", Changed: true})
	store.Update("one-42", func(s *hookproto.InstanceStatus) { s.Phase = PhaseFinal })
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	resp, out, err := hookproto.CallOneDeploy(cctx, sock, hookproto.OneDeploy{DeployFile: dfile, Host: "node1", DomainXML: dom, VMXML: oneTestdata(t, "vm-userdata.xml")})
	if err != nil || !resp.OK || out == nil {
		t.Fatalf("answer %+v, %d bytes, %v", resp, len(out), err)
	}
	if m, ok, _ := libvirtxml.ReadMeta(out); !ok || m.Phase != libvirtxml.PhaseFinal || bytes.Contains(out, []byte("<kernel>")) || bytes.Contains(out, []byte("on_reboot>destroy")) {
		t.Fatalf("not the disk boot (meta %+v):\n%s", m, out)
	}
	if st, _ := store.Get("one-42"); st.Phase != PhaseFinal {
		t.Fatalf("record changed: %+v", st)
	}
	// Without the record, the same deploy is an install.
	store.Cleaned("one-42")
	cctx2, ccancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel2()
	_, out, err = hookproto.CallOneDeploy(cctx2, sock, hookproto.OneDeploy{DeployFile: dfile, Host: "node1", DomainXML: dom, VMXML: oneTestdata(t, "vm-userdata.xml")})
	if m, ok, _ := libvirtxml.ReadMeta(out); err != nil || !ok || m.Phase != libvirtxml.PhaseInstall {
		t.Fatalf("no record: want the installer (%v, meta %+v)", err, m)
	}
}

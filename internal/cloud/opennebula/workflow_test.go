package opennebula_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

type rig struct {
	srv   *oneendpoint.Server
	p     *opennebula.Provider
	store *install.Store
	calls map[string]int
	wf    *opennebula.Workflow
}

func newRig(t *testing.T, opts oneendpoint.Options) *rig {
	t.Helper()
	if opts.Install == 0 {
		opts.Install = 300 * time.Millisecond
	}
	srv := oneendpoint.Start(t, opts)
	r := &rig{srv: srv, calls: map[string]int{}}
	p, err := opennebula.New(context.Background(), opennebula.Config{Endpoint: srv.URL(), Session: srv.Session(),
		Calls: func(m string) { r.calls[m]++ }})
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	if r.store, err = install.OpenStore(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(kernel, []byte("a kernel"), 0o644)
	os.WriteFile(initrd, []byte("an initrd"), 0o644)
	r.wf = &opennebula.Workflow{P: p, Kernel: kernel, Initrd: initrd, Args: "inst.text",
		Kickstart: []byte("text\npoweroff\n"), Poll: 20 * time.Millisecond, PollMax: 100 * time.Millisecond,
		Provenance: &install.Provenance{KickstartSource: "/src/ks/base.ks", KickstartSHA256: "abc123", GitRevision: "b860da0",
			KernelSHA256: "k256", InitrdSHA256: "i256", KscloudVersion: "test", Build: "x", Date: time.Now()},
		Status: func(l string) { t.Log(l) }}
	return r
}

func (r *rig) build(kind string) *install.Build {
	b := install.NewBuild(kind, "opennebula", install.Spec{Name: "t", DiskGiB: 1, VNC: kind == "run",
		Timeout: install.Duration{Duration: time.Minute}})
	r.wf.Provenance.Build = b.ID
	return b
}

func (r *rig) engine() *install.Engine { return &install.Engine{Provider: r.p, Store: r.store} }

// recorded returns the build's resource of role, deleted or not.
func recorded(b *install.Build, role string) install.Resource {
	for _, r := range b.Resources {
		if r.Role == role {
			return r
		}
	}
	return install.Resource{}
}

func vmNum(t *testing.T, id string) int {
	var n int
	if _, err := fmtSscan(strings.TrimPrefix(strings.TrimPrefix(id, "vm-"), "img-"), &n); err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return n
}

// TestBake: a bake leaves one image, READY, holding what the installer
// wrote, with the provenance attributes; the installer is DONE, the target
// and kickstart file are gone; a second bake reuses kernel and initrd.
func TestBake(t *testing.T) {
	for _, version := range []string{"7.0.0", "5.12.0"} {
		t.Run(version, func(t *testing.T) {
			r := newRig(t, oneendpoint.Options{Version: version})
			b := r.build("bake")
			start := time.Now()
			if err := r.engine().Run(context.Background(), b, r.wf.BakeSteps()); err != nil {
				t.Fatal(err)
			}
			t.Logf("bake: %s wall, %.2f s beyond the installer's power-off", time.Since(start).Round(time.Millisecond), b.Result.OverheadSeconds)
			var methods []string
			total := 0
			for m, n := range r.calls {
				methods = append(methods, m)
				total += n
			}
			sort.Strings(methods)
			for _, m := range methods {
				t.Logf("  %-28s %d", m, r.calls[m])
			}
			t.Logf("  %d calls in all (including New: system.version, datastorepool.info, vnpool.info)", total)
			img, err := r.p.Image(context.Background(), b.Result.ImageID)
			if err != nil || img.State != cloud.ImageAvailable {
				t.Fatalf("image %s: %+v, %v", b.Result.ImageID, img, err)
			}
			if !strings.Contains(img.Description, "Source: base.ks, GitRev: b860da0") || img.Tags[cloud.TagBuild] != b.ID || img.Tags[cloud.TagRole] != "image" {
				t.Errorf("image provenance/tags: %q %v", img.Description, img.Tags)
			}
			n := vmNum(t, b.Result.ImageID)
			file, ok := r.srv.ImageFile(n)
			data := make([]byte, len(oneendpoint.InstalledMark))
			if f, err := os.Open(file); err == nil {
				f.ReadAt(data, 0) // the head only: the image is a sparse GiB
				f.Close()
			}
			if !ok || !strings.HasPrefix(string(data), oneendpoint.InstalledMark) {
				t.Errorf("image %s file %s does not hold the install (%q…)", b.Result.ImageID, file, data[:min(len(data), 40)])
			}
			attrs := r.srv.ImageAttrs(n)
			for k, want := range map[string]string{"KSCLOUD_KS_SHA256": "abc123", "KSCLOUD_GIT_REV": "b860da0", "KSCLOUD_KS_SOURCE": "/src/ks/base.ks",
				"KSCLOUD_KERNEL_SHA256": "k256", "KSCLOUD_INITRD_SHA256": "i256", "KSCLOUD_BUILD": b.ID} {
				if attrs[k] != want {
					t.Errorf("image attribute %s = %q, want %q", k, attrs[k], want)
				}
			}
			if r.srv.ImageType(n) != "OS" {
				t.Errorf("image type %s, want OS", r.srv.ImageType(n))
			}
			for _, res := range b.Resources {
				if res.Role == "image" {
					continue
				}
				if !res.Deleted {
					t.Errorf("%s %s (%s) not removed", res.Kind, res.ID, res.Role)
				}
			}
			inst := recorded(b, "installer")
			if got, err := r.p.Instance(context.Background(), inst.ID); err != nil || got.State != cloud.InstanceTerminated {
				t.Errorf("installer %s: %+v, %v: want terminated (DONE, still listed)", inst.ID, got, err)
			}
			tgt := recorded(b, "target")
			if _, err := r.p.Volume(context.Background(), tgt.ID); err != nil && !cloud.IsNotFound(err) {
				t.Errorf("target %s: %v", tgt.ID, err)
			}
			// A second bake registers no new kernel or initrd.
			before := r.calls["one.image.allocate"]
			b2 := r.build("bake")
			b2.Spec.Name = "t2"
			if err := r.engine().Run(context.Background(), b2, r.wf.BakeSteps()); err != nil {
				t.Fatal(err)
			}
			if got := r.calls["one.image.allocate"] - before; got != 2 {
				t.Errorf("second bake allocated %d images, want 2 (target and kickstart file: kernel and initrd reused)", got)
			}
		})
	}
}

// TestRunInPlace: the VM installs, powers off, loses its installer boot
// (merge on 7.0, replace with every section re-sent on 5.12: GRAPHICS
// survives), resumes and runs from its disk.
func TestRunInPlace(t *testing.T) {
	for _, version := range []string{"7.0.0", "5.12.0"} {
		t.Run(version, func(t *testing.T) {
			r := newRig(t, oneendpoint.Options{Version: version})
			b := r.build("run")
			if err := r.engine().Run(context.Background(), b, r.wf.RunSteps()); err != nil {
				t.Fatal(err)
			}
			id := b.Result.InstanceID
			n := vmNum(t, id)
			os := r.srv.VMSection(n, "OS")
			if os["KERNEL"] != "" || os["KERNEL_CMD"] != "" || os["INITRD"] != "" || os["BOOT"] != "disk0" || os["KERNEL_DS"] == "" {
				t.Errorf("OS after the install: %v: want no KERNEL/INITRD/KERNEL_CMD, BOOT disk0, KERNEL_DS kept", os)
			}
			if c := r.srv.VMSection(n, "CONTEXT"); !strings.Contains(c["FILES_DS"], ":'ks-"+b.ID+".cfg' ") {
				t.Errorf("CONTEXT after the install: %v: want FILES_DS still carrying the kickstart as oned resolved it", c)
			}
			if g := r.srv.VMSection(n, "GRAPHICS"); g["TYPE"] != "VNC" || g["PORT"] == "" {
				t.Errorf("GRAPHICS after updateconf: %v: want TYPE VNC and its PORT kept", g)
			}
			if got := r.srv.Boots(n); got != 2 {
				t.Errorf("%s booted %d times, want 2 (installer, then its disk)", id, got)
			}
			cmd := b.Value("cmdline")
			if !strings.Contains(cmd, "ip=192.168.150.") || !strings.Contains(cmd, "inst.ks=hd:LABEL=CONTEXT:/ks-"+b.ID+".cfg") {
				t.Errorf("installer command line %q: want the lease's ip= and the CONTEXT kickstart", cmd)
			}
			if inst, err := r.p.Instance(context.Background(), id); err != nil || inst.State != cloud.InstanceRunning || b.Result.VNC == "" {
				t.Errorf("instance %s: %+v, %v, VNC %q", id, inst, err, b.Result.VNC)
			}
			if r.calls["one.vm.updateconf"] != 2 {
				t.Errorf("%d updateconf calls, want 2 (ip= in HOLD, installer dropped in POWEROFF)", r.calls["one.vm.updateconf"])
			}
		})
	}
}

// TestFailedInstallReason: a deploy failure is reported with oned's
// USER_TEMPLATE/ERROR, and the build cleans up.
func TestFailedInstallReason(t *testing.T) {
	r := newRig(t, oneendpoint.Options{DeployFail: "Cannot find kernel /var/lib/one/datastores/0/7/kernel"})
	b := r.build("bake")
	err := r.engine().Run(context.Background(), b, r.wf.BakeSteps())
	var ie *install.InstallError
	if !errors.As(err, &ie) || !strings.Contains(ie.Reason, "BOOT_FAILURE") || !strings.Contains(ie.Reason, "Cannot find kernel") {
		t.Fatalf("got %v: want an install error with BOOT_FAILURE and oned's reason", err)
	}
	for _, res := range b.Resources {
		if !res.Deleted {
			t.Errorf("%s %s (%s) left behind", res.Kind, res.ID, res.Role)
		}
	}
}

// TestResumeAndCleanup: a bake interrupted while the installer runs
// resumes to an image; another is swept by cleanup.
func TestResumeAndCleanup(t *testing.T) {
	r := newRig(t, oneendpoint.Options{Install: 2 * time.Second})
	b := r.build("bake")
	ctx, cancel := context.WithCancel(context.Background())
	eng := r.engine()
	eng.KeepOnError = true // kscloud interrupted by SIGKILL leaves everything: play it
	go func() {
		for {
			if res, ok := b.Resource("installer"); ok && res.ID != "" {
				time.Sleep(300 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := eng.Run(ctx, b, r.wf.BakeSteps()); !errors.Is(err, install.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	loaded, err := r.store.Load(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.engine().Run(context.Background(), loaded, r.wf.BakeSteps()); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if loaded.Result == nil || loaded.Result.ImageID == "" {
		t.Fatalf("resumed build has no image: %+v", loaded.Result)
	}
	if n := len(loaded.Resources); n != 4 {
		t.Errorf("resumed build recorded %d resources, want 4 (kickstart file, target, installer, image; no duplicates): %+v", n, loaded.Resources)
	}

	// Interrupt another, then clean up.
	b2 := r.build("bake")
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		for {
			if res, ok := b2.Resource("installer"); ok && res.ID != "" {
				cancel2()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	eng.Run(ctx2, b2, r.wf.BakeSteps())
	l2, _ := r.store.Load(b2.ID)
	if err := r.engine().Sweep(context.Background(), l2); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	found, err := r.p.FindTagged(context.Background(), cloud.TagBuild, b2.ID)
	if err != nil || len(found) != 0 {
		t.Errorf("after cleanup, build %s still has %+v, %v", b2.ID, found, err)
	}
}

// TestCmdlineTooLong: the installer command line with the lease's ip= is
// checked against the kernel's limit before the VM leaves hold (the kernel
// would cut it silently); the bake fails in one error and leaves nothing.
func TestCmdlineTooLong(t *testing.T) {
	r := newRig(t, oneendpoint.Options{})
	r.wf.Args = "inst.text " + strings.Repeat("x", 2040)
	b := r.build("bake")
	err := r.engine().Run(context.Background(), b, r.wf.BakeSteps())
	if err == nil || !strings.Contains(err.Error(), "2047-byte limit") {
		t.Fatalf("got %v: want the command line refused over the 2047-byte limit", err)
	}
	for _, res := range b.Resources {
		if !res.Deleted {
			t.Errorf("%s %s (%s) left behind", res.Kind, res.ID, res.Role)
		}
	}
}

// TestMergeUpdateConfVersions: updateconf's type argument (merge) exists
// from 6.2.0 on (release-6.2.0 RequestManagerVirtualMachine.cc), whatever
// the version string's tail (enterprise "6.10.0.1").
func TestMergeUpdateConfVersions(t *testing.T) {
	for version, want := range map[string]bool{"5.12.0": false, "6.0.3": false, "6.2.0": true, "6.10.0.1": true, "7.0.0": true} {
		r := newRig(t, oneendpoint.Options{Version: version})
		if got := r.p.MergeUpdateConf(); got != want {
			t.Errorf("OpenNebula %s: merge updateconf %v, want %v", version, got, want)
		}
	}
}

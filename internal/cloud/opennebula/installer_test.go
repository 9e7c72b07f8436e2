package opennebula_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// catalogImage registers a file as an image the way an operator does
// (oneimage create, then oneimage update --append with attrs) and waits
// for it to leave LOCKED.
func catalogImage(t *testing.T, r *rig, op *oneendpoint.Operator, name, typ string, ds int, file, attrs string) int {
	t.Helper()
	src := fmt.Sprintf("PATH=%q", file)
	if file == "" {
		src = "SIZE=1"
	}
	n, err := op.CreateImage(fmt.Sprintf("NAME=%q\nTYPE=%q\n%s\n", name, typ, src), ds)
	if err != nil {
		t.Fatalf("oneimage create %s: %v", name, err)
	}
	if attrs != "" {
		if err := op.UpdateImage(n, attrs); err != nil {
			t.Fatalf("oneimage update %d: %v", n, err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if im, err := r.p.Image(context.Background(), fmt.Sprintf("img-%d", n)); err == nil && im.State != cloud.ImagePending {
			return n
		}
	}
	t.Fatalf("image %d (%s) still LOCKED", n, name)
	return 0
}

func writeFile(t *testing.T, dir, name, data string) (path, sum string) {
	t.Helper()
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(data))
	return path, hex.EncodeToString(h[:])
}

// TestInstallerCatalog: a catalog installer (KERNEL and RAMDISK images an
// operator marked KSCLOUD_INSTALLER) resolves into their ids, the kernel's
// KSCLOUD_CMDLINE and the images' KSCLOUD_SHA256; a bake booting it
// registers no kernel or initrd and puts the prefix first on the command
// line; every way the catalog can be wrong is one error naming the
// installer and the cause.
func TestInstallerCatalog(t *testing.T) {
	r := newRig(t, oneendpoint.Options{})
	op, err := r.srv.Operator()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	kf, ksum := writeFile(t, dir, "vmlinuz-c9", "centos 9 kernel")
	inf, isum := writeFile(t, dir, "initrd-c9", "centos 9 initrd")
	const prefix = "inst.stage2=hd:LABEL=CentOS-Stream-9 console=ttyS0"
	k := catalogImage(t, r, op, "c9-vmlinuz", "KERNEL", 2, kf, fmt.Sprintf("KSCLOUD_INSTALLER=\"centos9\"\nKSCLOUD_CMDLINE=%q\nKSCLOUD_SHA256=%q\n", prefix, ksum))
	i := catalogImage(t, r, op, "c9-initrd", "RAMDISK", 2, inf, fmt.Sprintf("KSCLOUD_INSTALLER=\"centos9\"\nKSCLOUD_SHA256=%q\n", isum))
	fk, _ := writeFile(t, dir, "vmlinuz-f40", "fedora kernel")
	fi, _ := writeFile(t, dir, "initrd-f40", "fedora initrd")
	catalogImage(t, r, op, "f40-vmlinuz", "KERNEL", 2, fk, `KSCLOUD_INSTALLER="fedora40"`)
	catalogImage(t, r, op, "f40-initrd", "RAMDISK", 2, fi, `KSCLOUD_INSTALLER="fedora40"`)

	in, err := r.p.Installer(ctx, "centos9")
	if err != nil {
		t.Fatal(err)
	}
	want := opennebula.Installer{Name: "centos9", Kernel: fmt.Sprintf("img-%d", k), Initrd: fmt.Sprintf("img-%d", i),
		Cmdline: prefix, KernelSHA256: ksum, InitrdSHA256: isum}
	if in != want {
		t.Fatalf("resolved %+v, want %+v", in, want)
	}
	if f, err := r.p.Installer(ctx, "fedora40"); err != nil || f.Cmdline != "" || f.KernelSHA256 != "" || f.Kernel == in.Kernel {
		t.Errorf("fedora40: %+v, %v: want its own images, no prefix, no sha256", f, err)
	}

	// A bake with the catalog installer: the workflow gets the ids.
	before := r.calls["one.image.allocate"]
	r.wf.Kernel, r.wf.Initrd, r.wf.CmdlinePrefix = in.Kernel, in.Initrd, in.Cmdline
	b := r.build("bake")
	if err := r.engine().Run(ctx, b, r.wf.BakeSteps()); err != nil {
		t.Fatal(err)
	}
	if got := r.calls["one.image.allocate"] - before; got != 2 {
		t.Errorf("bake allocated %d images, want 2 (target and kickstart file; the catalog's kernel and initrd)", got)
	}
	if b.Value("one.kernel") != fmt.Sprint(k) || b.Value("one.initrd") != fmt.Sprint(i) {
		t.Errorf("build booted kernel %s initrd %s, want %d and %d", b.Value("one.kernel"), b.Value("one.initrd"), k, i)
	}
	vm := vmNum(t, recorded(b, "installer").ID)
	os := r.srv.VMSection(vm, "OS")
	if os["KERNEL_DS"] != fmt.Sprintf("$FILE[IMAGE_ID=%d]", k) || os["INITRD_DS"] != fmt.Sprintf("$FILE[IMAGE_ID=%d]", i) {
		t.Errorf("installer OS %v: want KERNEL_DS/INITRD_DS of images %d and %d", os, k, i)
	}
	if cmd := b.Value("cmdline"); !strings.HasPrefix(cmd, prefix+" ip=") {
		t.Errorf("installer command line %q: want the catalog's prefix first", cmd)
	}

	// What can be wrong, each its own installer name.
	catalogImage(t, r, op, "half-vmlinuz", "KERNEL", 2, kf, `KSCLOUD_INSTALLER="half"`)
	dup1 := catalogImage(t, r, op, "dup-vmlinuz-1", "KERNEL", 2, kf, `KSCLOUD_INSTALLER="dup"`)
	catalogImage(t, r, op, "dup-vmlinuz-2", "KERNEL", 2, kf, `KSCLOUD_INSTALLER="dup"`)
	catalogImage(t, r, op, "dup-initrd", "RAMDISK", 2, inf, `KSCLOUD_INSTALLER="dup"`)
	catalogImage(t, r, op, "os-disk", "DATABLOCK", 1, "", `KSCLOUD_INSTALLER="wrongtype"`)
	catalogImage(t, r, op, "wrongtype-initrd", "RAMDISK", 2, inf, `KSCLOUD_INSTALLER="wrongtype"`)
	broken := catalogImage(t, r, op, "broken-vmlinuz", "KERNEL", 2, filepath.Join(dir, "no-such-file"), `KSCLOUD_INSTALLER="broken"`)
	catalogImage(t, r, op, "broken-initrd", "RAMDISK", 2, inf, `KSCLOUD_INSTALLER="broken"`)
	catalogImage(t, r, op, "badsum-vmlinuz", "KERNEL", 2, kf, "KSCLOUD_INSTALLER=\"badsum\"\nKSCLOUD_SHA256=\"c0ffee\"")
	catalogImage(t, r, op, "badsum-initrd", "RAMDISK", 2, inf, `KSCLOUD_INSTALLER="badsum"`)
	catalogImage(t, r, op, "ctl-vmlinuz", "KERNEL", 2, kf, "KSCLOUD_INSTALLER=\"ctl\"\nKSCLOUD_CMDLINE=\"a\tb\"")
	catalogImage(t, r, op, "ctl-initrd", "RAMDISK", 2, inf, `KSCLOUD_INSTALLER="ctl"`)
	catalogImage(t, r, op, "misplaced-vmlinuz", "KERNEL", 2, kf, `KSCLOUD_INSTALLER="misplaced"`)
	catalogImage(t, r, op, "misplaced-initrd", "RAMDISK", 2, inf, "KSCLOUD_INSTALLER=\"misplaced\"\nKSCLOUD_CMDLINE=\"quiet\"")
	for _, c := range []struct {
		name string
		is   error
		msg  string
	}{
		{"nosuch", cloud.ErrNotFound, "no KERNEL nor RAMDISK image carries KSCLOUD_INSTALLER=\"nosuch\""},
		{"half", cloud.ErrNotFound, "no RAMDISK image carries"},
		{"dup", opennebula.ErrCatalog, "2 KERNEL images carry KSCLOUD_INSTALLER=\"dup\""},
		{"wrongtype", opennebula.ErrCatalog, "(os-disk) is a DATABLOCK image"},
		{"broken", cloud.ErrIncorrectState, fmt.Sprintf("KERNEL image %d (broken-vmlinuz) is ERROR, not READY: ", broken)},
		{"badsum", opennebula.ErrCatalog, `KSCLOUD_SHA256 "c0ffee" is not a sha256`},
		{"ctl", opennebula.ErrCatalog, "KSCLOUD_CMDLINE: control character U+0009"},
		{"misplaced", opennebula.ErrCatalog, "(misplaced-initrd) carries KSCLOUD_CMDLINE"},
	} {
		_, err := r.p.Installer(ctx, c.name)
		t.Logf("%s: %v", c.name, err)
		var ie *opennebula.InstallerError
		if !errors.As(err, &ie) || !errors.Is(err, c.is) || !strings.HasPrefix(err.Error(), fmt.Sprintf("installer %q: ", c.name)) ||
			!strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("installer %s: got %v: want one line naming it, %q, wrapping %v", c.name, err, c.msg, c.is)
		}
		if c.name == "nosuch" && (ie == nil || strings.Join(ie.Known, ",") != "badsum,broken,centos9,ctl,dup,fedora40,half,misplaced,wrongtype") {
			t.Errorf("known installers %v", ie)
		}
		if c.name == "dup" && !strings.Contains(err.Error(), "owner "+r.srv.Options().User) {
			t.Errorf("dup: %v: want the images' owners", err)
		}
	}
	// An image being deleted leaves the catalog at once.
	if _, err := op.Call("one.image.delete", dup1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.p.Installer(ctx, "dup"); err != nil {
		t.Errorf("dup after deleting image %d: %v", dup1, err)
	}
}

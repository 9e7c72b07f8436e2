package isomedia

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mkiso builds an ISO from files with Debian's xorriso; rockridge false
// makes a plain ISO 9660 image (8.3-ish upper-case names).
func mkiso(t *testing.T, files map[string][]byte, rockridge bool) string {
	t.Helper()
	x, err := exec.LookPath("xorriso")
	if err != nil {
		t.Fatal("xorriso not found (Debian's xorriso; scripts/deps.sh installs it)")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for name, data := range files {
		p := filepath.Join(tree, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(dir, "m.iso")
	args := []string{"-as", "mkisofs", "-V", "Test-Media 1", "-o", iso}
	if rockridge {
		args = append(args, "-R")
	}
	if out, err := exec.Command(x, append(args, tree)...).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	return iso
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestFindInstallerTreeInfo(t *testing.T) {
	kernel, initrd := bytes.Repeat([]byte("K"), 70000), bytes.Repeat([]byte("I"), 5000)
	ti := "[general]\nname = Test\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n[checksums]\nimages/pxeboot/vmlinuz = sha256:" + sum(kernel) + "\n"
	iso := mkiso(t, map[string][]byte{".treeinfo": []byte(ti), "images/pxeboot/vmlinuz": kernel, "images/pxeboot/initrd.img": initrd}, true)
	m, err := Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if l, _ := m.Label(); l != "Test-Media 1" {
		t.Fatalf("label %q", l)
	}
	in, err := m.FindInstaller("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if !in.FromTreeInfo || in.Kernel != "images/pxeboot/vmlinuz" || in.KernelSHA256 != sum(kernel) {
		t.Fatalf("installer %+v", in)
	}
	cache := t.TempDir()
	p, s, err := m.Extract(in.Kernel, cache)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if s != sum(kernel) || !bytes.Equal(got, kernel) || filepath.Base(p) != s {
		t.Fatalf("extracted %s (%s), %d bytes", p, s, len(got))
	}
	if _, err := m.FindInstaller("aarch64"); err == nil || !strings.Contains(err.Error(), "no kernel/initrd for aarch64") {
		t.Fatalf("aarch64: %v", err)
	}
}

// Without Rock Ridge and without .treeinfo: the usual paths, matched
// through ISO 9660's upper-case names.
func TestFindInstallerPlainISO(t *testing.T) {
	iso := mkiso(t, map[string][]byte{"install.amd/vmlinuz": []byte("kernel"), "install.amd/initrd.gz": []byte("initrd")}, false)
	m, err := Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	in, err := m.FindInstaller("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if in.FromTreeInfo || in.Kernel != "install.amd/vmlinuz" {
		t.Fatalf("installer %+v", in)
	}
	b, err := m.ReadFile(in.Initrd, 100)
	if err != nil || string(b) != "initrd" {
		t.Fatalf("initrd %q %v", b, err)
	}
}

func TestFindInstallerNone(t *testing.T) {
	iso := mkiso(t, map[string][]byte{"README": []byte("hi")}, true)
	m, err := Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.FindInstaller("x86_64"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v", err)
	}
	if _, err := m.ReadFile("../../etc/passwd", 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("escape: %v", err)
	}
}

func TestOpenNotISO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.iso")
	os.WriteFile(p, bytes.Repeat([]byte{0}, 40000), 0o644)
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "not an ISO 9660 image") {
		t.Fatalf("err %v", err)
	}
}

func TestIsISO(t *testing.T) {
	for s, want := range map[string]bool{"/a/F40.ISO": true, "http://m/x.iso?x=1": true, "http://m/os/": false, "dir": false} {
		if IsISO(s) != want {
			t.Errorf("IsISO(%q) != %v", s, want)
		}
	}
}

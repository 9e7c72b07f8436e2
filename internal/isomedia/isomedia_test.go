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
	if rockridge {
		return mkisoWith(t, files, "-R")
	}
	return mkisoWith(t, files, "--norock") // xorriso writes Rock Ridge unless told not to
}

// mkisoWith builds an ISO with xorriso -as mkisofs and the extra options
// (-R Rock Ridge, --norock none, -J Joliet).
func mkisoWith(t *testing.T, files map[string][]byte, opts ...string) string {
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
	args := append([]string{"-as", "mkisofs", "-V", "Test-Media 1", "-o", iso}, opts...)
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

// TestJoliet: a medium with Joliet names and no Rock Ridge (genisoimage
// -J, Windows tools): its primary tree has only mangled 8.3 names, so
// long names (.treeinfo, initrd-with-a-long-name.img) are found in the
// Joliet tree, in their case; with Rock Ridge as well, the same names.
func TestJoliet(t *testing.T) {
	kernel, initrd := bytes.Repeat([]byte("K"), 5000), bytes.Repeat([]byte("I"), 3000)
	long := "images/pxeboot/initrd-with-a-long-name.img"
	ti := "[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = " + long + "\n[checksums]\n" + long + " = sha256:" + sum(initrd) + "\n"
	files := map[string][]byte{".treeinfo": []byte(ti), "images/pxeboot/vmlinuz": kernel, long: initrd, "Mixed-Case Dir/Read Me.txt": []byte("hi")}
	for _, opts := range [][]string{{"--norock", "-J"}, {"-J", "-R"}, {"--norock", "-J", "-joliet-long"}} {
		t.Run(strings.Join(opts, ""), func(t *testing.T) {
			m, err := Open(mkisoWith(t, files, opts...))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.joliet == nil {
				t.Fatal("no Joliet tree found")
			}
			if opts[0] == "--norock" {
				// Without Rock Ridge the primary tree cannot name them.
				if _, err := m.findPrimary(strings.Split(long, "/"), true); !errors.Is(err, ErrNotFound) {
					t.Fatalf("primary tree found %s: %v (the test would not need Joliet)", long, err)
				}
			}
			in, err := m.FindInstaller("x86_64")
			if err != nil {
				t.Fatal(err)
			}
			if !in.FromTreeInfo || in.Initrd != long {
				t.Fatalf("installer %+v", in)
			}
			p, s, err := m.Extract(in.Initrd, t.TempDir())
			if err != nil || s != sum(initrd) {
				t.Fatalf("extract %s: %s %v", long, s, err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, initrd) {
				t.Fatal("extracted initrd differs")
			}
			if b, err := m.ReadFile("Mixed-Case Dir/Read Me.txt", 10); err != nil || string(b) != "hi" {
				t.Fatalf("Read Me.txt: %q %v", b, err)
			}
			if b, err := m.ReadFile("mixed-case dir/read me.TXT", 10); err != nil || string(b) != "hi" {
				t.Fatalf("Read Me.txt in another case: %q %v", b, err)
			}
			if _, err := m.ReadFile("images/pxeboot/nothing", 10); !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing file: %v", err)
			}
		})
	}
}

// TestJolietHostile: a Joliet tree whose records lie (lengths, sizes,
// names) gives errors, never a panic or a read outside the image.
func TestJolietHostile(t *testing.T) {
	iso := mkisoWith(t, map[string][]byte{"a-long-file-name.txt": []byte("x"), "d/e": []byte("y")}, "--norock", "-J")
	good, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	root := int64(m.joliet.lba) * sector
	m.Close()
	svd := int64(0)
	for s := int64(16); s < 32 && svd == 0; s++ {
		if good[s*sector] == 2 {
			svd = s * sector
		}
	}
	if svd == 0 {
		t.Fatal("no supplementary volume descriptor")
	}
	for i := 0; i < 300; i++ {
		b := bytes.Clone(good)
		// Corrupt the Joliet root directory's records, the Joliet
		// descriptor's root record, or the primary one's (the iso9660
		// package panicked on that: an error now).
		b[root+int64(i%120)] ^= byte(i*37 + 1)
		switch i % 3 {
		case 0:
			b[svd+156+int64(i%34)] ^= 0xff
		case 1:
			b[16*sector+156+int64(i%34)] ^= byte(i | 1)
		}
		p := filepath.Join(t.TempDir(), "h.iso")
		os.WriteFile(p, b, 0o644)
		if m, err := Open(p); err == nil {
			m.ReadFile("a-long-file-name.txt", 10)
			m.ReadFile("d/e", 10)
			m.FindInstaller("x86_64")
			m.Close()
		}
	}
}

// TestHostileSizes: an image whose volume descriptors never end, or whose
// root directory claims 4 GiB of records, is refused before it is read
// (the iso9660 package kept every descriptor and every record in memory:
// a 200 MB context CD-ROM of either kind took 0.2 and 1.2 GB and 1 and 12
// seconds in the OpenNebula deploy wrapper).
func TestHostileSizes(t *testing.T) {
	iso := mkiso(t, map[string][]byte{"context.sh": []byte("A='1'\n")}, true)
	good, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	pvd := good[16*sector : 17*sector]

	// 4096 primary descriptors, no terminator.
	var flood bytes.Buffer
	flood.Write(good[:16*sector])
	for i := 0; i < 4096; i++ {
		flood.Write(pvd)
	}
	// The root directory's extent length set to 0xfffff800 (both-endian).
	big := bytes.Clone(good)
	rec := 16*sector + 156
	copy(big[rec+10:], []byte{0x00, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xf8, 0x00})
	for name, b := range map[string][]byte{"descriptors": flood.Bytes(), "root": big} {
		want := map[string]string{"descriptors": "no volume descriptor set terminator", "root": "directory of 4294965248 bytes"}[name]
		p := filepath.Join(t.TempDir(), name+".iso")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Open(p)
		if err == nil {
			_, err = m.ReadFile("context.sh", 1<<20)
			m.Close()
		}
		if err == nil {
			t.Errorf("%s: hostile image read without an error", name)
		} else if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not name the image and %q", name, err, want)
		}
	}
	// The good image still reads.
	m, err := Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if b, err := m.ReadFile("context.sh", 1<<20); err != nil || string(b) != "A='1'\n" {
		t.Fatalf("good image: %q, %v", b, err)
	}
}

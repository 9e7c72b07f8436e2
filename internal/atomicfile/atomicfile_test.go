package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAndKeepsMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.xml")
	if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "new" {
		t.Fatalf("content %q", got)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want the replaced file's 0640", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary file left behind: %v", ents)
	}
}

func TestWriteFailureLeavesFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.xml")
	os.WriteFile(p, []byte("old"), 0o644)
	// A directory where the file should be renamed: rename fails.
	sub := filepath.Join(dir, "d")
	os.Mkdir(sub, 0o755)
	if err := Write(sub, []byte("x"), 0o644); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, []byte("old")) {
		t.Fatal("file changed")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("leftovers: %v", ents)
	}
}

func TestReadRegularRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("data"), 0o644)
	l := filepath.Join(dir, "l")
	os.Symlink(p, l)
	if _, err := ReadRegular(l, 100); err == nil {
		t.Fatal("symlink was followed")
	}
	if _, err := ReadRegular(p, 2); err == nil {
		t.Fatal("size limit ignored")
	}
	b, err := ReadRegular(p, 100)
	if err != nil || string(b) != "data" {
		t.Fatalf("got %q %v", b, err)
	}
}

func TestCopyIfAbsent(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "a"), filepath.Join(dir, "a.orig")
	os.WriteFile(src, []byte("one"), 0o644)
	if wrote, err := CopyIfAbsent(src, dst); err != nil || !wrote {
		t.Fatalf("first copy: %v %v", wrote, err)
	}
	os.WriteFile(src, []byte("two"), 0o644)
	if wrote, err := CopyIfAbsent(src, dst); err != nil || wrote {
		t.Fatalf("second copy: %v %v", wrote, err)
	}
	got, _ := os.ReadFile(dst)
	if string(got) != "one" {
		t.Fatalf("original overwritten: %q", got)
	}
}

func TestKeepOriginalSurvivesReplace(t *testing.T) {
	dir := t.TempDir()
	p, orig := filepath.Join(dir, "d.xml"), filepath.Join(dir, "d.xml.orig")
	os.WriteFile(p, []byte("nc"), 0o644)
	if made, err := KeepOriginal(p, orig); err != nil || !made {
		t.Fatalf("%v %v", made, err)
	}
	if err := Write(p, []byte("rewritten"), 0o644); err != nil {
		t.Fatal(err)
	}
	if made, err := KeepOriginal(p, orig); err != nil || made {
		t.Fatalf("second keep: %v %v", made, err)
	}
	got, _ := os.ReadFile(orig)
	now, _ := os.ReadFile(p)
	if string(got) != "nc" || string(now) != "rewritten" {
		t.Fatalf("orig %q, file %q", got, now)
	}
}

// TestNoSyncStillAtomic: without the fsyncs a reader still sees one whole
// version or the other, never a mix or a short file; the mode is kept and
// no temporary file is left.
func TestNoSyncStillAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "libvirt.xml")
	a, b := bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 256<<10)
	if err := os.WriteFile(p, a, 0o640); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			data := a
			if i%2 == 0 {
				data = b
			}
			write := func() error { return d.WriteUnsynced("libvirt.xml", data, 0o600, 0, NoOwner) }
			if i%3 == 0 {
				write = func() error {
					return d.ReplaceUnsynced("libvirt.xml", 0o600, NoOwner, func(f *os.File) error {
						_, err := f.Write(data)
						return err
					})
				}
			}
			if err := write(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(a) || (!bytes.Equal(got, a) && !bytes.Equal(got, b)) {
			t.Fatalf("reader saw %d bytes, not one whole version", len(got))
		}
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want the replaced file's 0640", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

package initrd

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCPIOReadableByCpio checks the archive with the real cpio tool when it
// is installed (scripts/deps.sh installs it).
func TestCPIOReadableByCpio(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Fatal("cpio is not installed: run scripts/deps.sh")
	}
	var buf bytes.Buffer
	ks := []byte("text\nrootpw --lock\npoweroff\n")
	if err := WriteCPIO(&buf, []File{{Name: "/ks.cfg", Data: ks}, {Name: "etc/x", Data: []byte("odd"), Mode: 0o600}}, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	dir := t.TempDir()
	cmd := exec.Command(cpio, "-idm", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "ks.cfg"))
	if err != nil || !bytes.Equal(got, ks) {
		t.Fatalf("ks.cfg: %q %v", got, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "etc/x")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("etc/x: %v %v", st, err)
	}
}

func TestInjectKeepsBaseAndAligns(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "initrd.img")
	orig := []byte("01234") // odd length: the appended archive must start 4-aligned
	os.WriteFile(base, orig, 0o644)
	dst := filepath.Join(dir, "kscloud-initrd.img")
	if err := Inject(base, dst, []File{{Name: "ks.cfg", Data: []byte("x")}}, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.HasPrefix(got, orig) || got[5] != 0 || got[6] != 0 || got[7] != 0 || got[8] != 0x1f || got[9] != 0x8b {
		t.Fatalf("layout: % x", got[:12])
	}
	if err := Inject(filepath.Join(dir, "absent"), dst+"2", nil, time.Unix(0, 0)); err == nil {
		t.Fatal("missing base accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("leftovers: %v", ents)
	}
}

// TestInjectMode: the copy holding a kickstart (its rootpw hash) is 0600,
// not readable by the node's other users; as root it is owned like the
// directory it is placed in (an instance directory belongs to the NC's
// user).
func TestInjectMode(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	os.WriteFile(base, []byte("0707010000"), 0o644)
	out := filepath.Join(dir, "inst", "kscloud-initrd.img")
	os.Mkdir(filepath.Dir(out), 0o755)
	owner := os.Geteuid()
	if owner == 0 {
		owner = 65534
		if err := os.Chown(filepath.Dir(out), owner, owner); err != nil {
			t.Fatal(err)
		}
	}
	if err := Inject(base, out, []File{{Name: "ks.cfg", Data: []byte("rootpw --iscrypted $6$x$y\n"), Mode: 0o600}}, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s is %v, want 0600", out, fi.Mode().Perm())
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != owner {
		t.Errorf("owned by uid %d, want the directory's %d", uid, owner)
	}
}

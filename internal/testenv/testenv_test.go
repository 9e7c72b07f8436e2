package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenAncestorsKeepsSticky: the directories above a path become
// traversable by every user and keep their sticky and set-group-ID bits
// (a sticky /tmp made 0777 lets every user remove every other's files).
func TestOpenAncestorsKeepsSticky(t *testing.T) {
	top := t.TempDir()
	sticky := filepath.Join(top, "sticky")
	sgid := filepath.Join(sticky, "sgid")
	open := filepath.Join(sgid, "open")
	if err := os.MkdirAll(open, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		mode fs.FileMode
	}{{sticky, 0o700 | fs.ModeSticky}, {sgid, 0o750 | fs.ModeSetgid}, {open, 0o755}} {
		if err := os.Chmod(c.dir, c.mode); err != nil {
			t.Fatal(err)
		}
	}
	OpenAncestors(t, filepath.Join(open, "file"))
	for _, c := range []struct {
		dir  string
		want fs.FileMode
	}{{sticky, 0o705 | fs.ModeSticky}, {sgid, 0o755 | fs.ModeSetgid}, {open, 0o755}} {
		st, err := os.Stat(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		got := st.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid | fs.ModeSetuid)
		if got != c.want {
			t.Errorf("%s: mode %v, want %v", c.dir, got, c.want)
		}
	}
}

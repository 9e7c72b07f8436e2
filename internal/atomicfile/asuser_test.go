package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kscloud/kscloud/internal/testenv"
)

// OpenAs reads no further than the user named: a root-only file is refused
// for uid 65534, a world-readable one is not, and the caller keeps root's
// credentials afterwards.
func TestOpenAs(t *testing.T) {
	testenv.Root(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	secret, public := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	os.WriteFile(secret, []byte("s"), 0o600)
	os.WriteFile(public, []byte("p"), 0o644)
	if f, err := OpenAs(secret, 65534, 65534); err == nil {
		f.Close()
		t.Fatal("root-only file opened as uid 65534")
	}
	f, err := OpenAs(public, 65534, 65534)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for range 20 { // every thread still has root's credentials
		f, err := os.Open(secret)
		if err != nil {
			t.Fatalf("root lost access: %v", err)
		}
		f.Close()
	}
}

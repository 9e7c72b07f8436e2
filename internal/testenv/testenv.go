// Package testenv tells tests what the machine offers. Tests that need a
// real libvirtd call Libvirt: in CI (CI set) a missing libvirtd fails the
// test; on a developer machine the test skips and says how to run it.
package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// EnvLibvirt names the libvirt URI tests may use (scripts/test.sh sets it
// to qemu:///system after starting libvirtd as root).
const EnvLibvirt = "KSCLOUD_TEST_LIBVIRT"

// Libvirt returns the URI of a libvirtd the test may create domains on.
func Libvirt(t testing.TB) string {
	t.Helper()
	uri := os.Getenv(EnvLibvirt)
	if uri != "" {
		return uri
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set in CI: run the tests with 'make test' (scripts/test.sh starts libvirtd)", EnvLibvirt)
	}
	t.Skipf("needs a real libvirtd: run 'make test' as root (it starts libvirtd and sets %s)", EnvLibvirt)
	return ""
}

// Root skips (fails in CI) a test that needs root: one that changes file
// owners or reads with another user's credentials.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root in CI: run the tests with 'make test' as root")
	}
	t.Skip("needs root (file owners, another user's credentials): run 'make test' as root")
}

// OpenAncestors lets every user traverse and list the directories above
// path (t.TempDir's are 0700), as a cloud's instances root is, so that a
// test can act as another user below them. A directory that already allows
// it is left alone, and no other mode bit changes: /tmp keeps its sticky
// bit (a chmod to Perm()|0o005 once left the machine's /tmp 0777).
func OpenAncestors(t testing.TB, path string) {
	t.Helper()
	for d := filepath.Dir(path); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o005 == 0o005 {
			continue
		}
		keep := st.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid | fs.ModeSetuid)
		if err := os.Chmod(d, keep|0o005); err != nil {
			t.Fatalf("opening %s to every user: %v", d, err)
		}
	}
}

// Package testenv tells tests what the machine offers. Tests that need a
// real libvirtd call Libvirt: in CI (CI set) a missing libvirtd fails the
// test; on a developer machine the test skips and says how to run it.
package testenv

import (
	"os"
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

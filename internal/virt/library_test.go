package virt

import (
	"errors"
	"strings"
	"testing"

	"libvirt.org/go/libvirt"
)

func TestVersionString(t *testing.T) {
	for v, want := range map[uint32]string{2000000: "2.0.0", 1002014: "1.2.14", 7000000: "7.0.0", 11010000: "11.10.0"} {
		if got := versionString(v); got != want {
			t.Errorf("versionString(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestLoadError(t *testing.T) {
	dl := func(m string) error {
		return libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Domain: libvirt.FROM_NONE, Message: m, Level: libvirt.ERR_ERROR}
	}
	for _, m := range []string{
		"libvirt.so.0: cannot open shared object file: No such file or directory",
		"libvirt-admin.so.0: cannot open shared object file: No such file or directory",
		"/usr/lib64/libvirt.so.0: undefined symbol: virDomainInterfaceAddresses",
		"Failed to open libvirt.so.0",
		"Failed to load virDomainInterfaceAddresses",
	} {
		err := loadError(dl(m))
		s := err.Error()
		if strings.Contains(s, "\n") || !strings.Contains(s, m) || !strings.Contains(s, "install libvirt 2.0.0 or newer") || strings.Contains(s, "virError(") {
			t.Errorf("loadError(%q) = %q: want one line with the cause and what to install", m, s)
		}
	}
	// Other libvirt errors and other errors pass unchanged.
	for _, err := range []error{
		libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Domain: libvirt.FROM_QEMU, Message: "undefined symbol: x"},
		libvirt.Error{Code: libvirt.ERR_NO_DOMAIN, Domain: libvirt.FROM_NONE, Message: "Failed to load x"},
		errors.New("libvirt.so.0: cannot open shared object file"),
	} {
		if got := loadError(err); got != err {
			t.Errorf("loadError(%v) = %v, want it unchanged", err, got)
		}
	}
}

// The library the tests link against (the build machine's libvirt0) loads
// and is new enough.
func TestCheckLibrary(t *testing.T) {
	if err := checkLibrary(); err != nil {
		t.Fatal(err)
	}
	v, err := libvirt.GetVersion()
	if err != nil || v < MinLibvirt {
		t.Fatalf("libvirt.GetVersion() = %d, %v", v, err)
	}
}

package virt

import (
	"errors"
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"
)

// MinLibvirt is the oldest libvirt library (libvirt.so.0) the binaries
// work with, as libvirt's version number (major*1e6 + minor*1e3 + micro).
// The binding loads libvirt at run time (dlopen) and each function at its
// first call, so an older library fails only at the call it lacks. The
// newest function called is virAdmInitialize (libvirt-admin.so.0, 2.0.0):
// the binding's EventRegisterDefaultImpl calls it, and every connection
// starts the event loop. The newest in libvirt.so.0 are
// virDomainInterfaceAddresses (1.2.14, kscloud) and
// virConnectGetAllDomainStats (1.2.8). README, Requirements, has the list
// and how it was made; scripts/test-compat.sh runs the binaries against
// Debian 11's libvirt 7.0 and a stand-in older than MinLibvirt.
const MinLibvirt = 2000000

// versionString formats a libvirt version number (2000000 → "2.0.0").
func versionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v/1000000, v/1000%1000, v%1000)
}

// checkLibrary loads libvirt and refuses a library older than MinLibvirt,
// in one line, before any call it may lack.
func checkLibrary() error {
	v, err := libvirt.GetVersion()
	if err != nil {
		return loadError(err)
	}
	if v < MinLibvirt {
		return fmt.Errorf("libvirt %s (libvirt.so.0) is older than %s, the oldest this program works with: update libvirt", versionString(v), versionString(MinLibvirt))
	}
	return nil
}

// loadError turns the binding's dlopen/dlsym failures (libvirt.so.0 or
// libvirt-admin.so.0 missing, a function missing) into one line that says
// what to install; other errors pass unchanged.
func loadError(err error) error {
	var le libvirt.Error
	if !errors.As(err, &le) || le.Code != libvirt.ERR_INTERNAL_ERROR || le.Domain != libvirt.FROM_NONE {
		return err
	}
	m := le.Message
	if !strings.Contains(m, "cannot open shared object file") && !strings.Contains(m, "undefined symbol: ") &&
		!strings.HasPrefix(m, "Failed to open libvirt") && !strings.HasPrefix(m, "Failed to load ") {
		return err
	}
	return fmt.Errorf("libvirt cannot be loaded (%s): install libvirt %s or newer (Debian, Ubuntu: libvirt0; RHEL, CentOS: libvirt-libs)", m, versionString(MinLibvirt))
}

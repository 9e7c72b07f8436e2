// Command nchookd-euca-hook is the executable installed into the
// Eucalyptus node controller's hook directory (/etc/eucalyptus/nc-hooks/).
// The NC runs every executable there as HOOK EVENT EUCA_HOME [PARAM],
// synchronously and with no timeout, on every hypervisor access: this
// binary is static, pure Go and returns at once for events it ignores. For
// euca-nc-pre-boot and euca-nc-pre-clean it asks nchookd over its socket
// and, when the daemon cannot be reached, does the same work itself.
package main

import (
	"os"

	"github.com/kscloud/kscloud/internal/hookapi"
)

func main() {
	os.Exit(hookapi.RunHook(os.Args[1:], os.Getenv, os.Stderr))
}

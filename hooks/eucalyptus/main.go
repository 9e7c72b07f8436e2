// Command nchookd-euca-hook is the Eucalyptus hook's Go half, installed
// as /usr/lib/nchookd/nchookd-euca-hook. The NC runs every executable in
// /etc/eucalyptus/nc-hooks/ as HOOK EVENT EUCA_HOME [PARAM], synchronously
// and with no timeout, on every hypervisor access; what sits there is the
// static C dispatcher (dispatch/nc-hook.c), which exits at once for the
// events nchookd ignores and execs this binary, static and pure Go, for
// euca-nc-pre-boot and euca-nc-pre-clean. It asks nchookd over its socket
// and, when the daemon cannot be reached, does the same work itself. (Run
// directly it also returns at once for other events.)
package main

import (
	"os"

	"github.com/kscloud/kscloud/internal/hook"
)

func main() {
	os.Exit(hook.RunHook(os.Args[1:], os.Getenv, os.Stderr))
}

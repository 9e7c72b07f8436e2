// Command nchookd-one-monitor is nchookd's OpenNebula VM monitor probe's
// Go half, installed as /usr/lib/nchookd/nchookd-one-monitor on the hosts.
// The probe script remotes/im/kvm-probes.d/vm/monitor/nchookd
// (hooks/opennebula/nchookd-probe) execs it; it prints one
// VM = [ ID, DEPLOY_ID, MONITOR ] line per VM nchookd follows with
// KSCLOUD_NCHOOKD, KSCLOUD_PHASE, KSCLOUD_PROGRESS and KSCLOUD_REASON
// (hook.OneMonitor). Static, libvirt-free, bounded by 2 s (NCHOOKD_TIMEOUT
// shortens or lengthens it); it always exits 0, so the host's monitoring
// never fails because of it.
package main

import (
	"os"
	"time"

	"github.com/kscloud/kscloud/internal/hook"
)

func main() {
	timeout := 2 * time.Second
	if v := os.Getenv(hook.EnvTimeout); v != "" {
		if t, err := time.ParseDuration(v); err == nil && t > 0 && t <= 10*time.Second {
			timeout = t
		}
	}
	hook.OneMonitor(os.Stdout, os.Stderr, os.Getenv, timeout)
}

package opennebula

import "strings"

// nchookd on the node. Its VM monitor probe
// (remotes/im/kvm-probes.d/vm/monitor/nchookd, hooks/opennebula) reports
// the installs it follows into the VM's MONITORING, which one.vm.info
// returns (monitord merges every probe's attributes into the VM's record):
//
//	KSCLOUD_NCHOOKD   the daemon's version: this VM's host runs nchookd
//	KSCLOUD_PHASE     installing, finishing, final (in place), finished (bake), failed
//	KSCLOUD_PROGRESS  the installer's last progress line
//	KSCLOUD_REASON    why the install failed, or how it ended
//
// With them kscloud shows the install's progress, takes phase final on a
// RUNNING VM as the end of an install in place (nchookd re-created the
// domain from its disk: the VM never powers off), and lets a kickstart end
// in reboot (nchookd's deploy wrapper gives the installer
// on_reboot=destroy). Without them nothing changes: the install ends at
// POWEROFF. The values come from the node and the guest's console: they
// are shown, never acted on beyond these phases.

// nodeHook is what nchookd's probe says of a VM.
type nodeHook struct {
	Version, Phase, Progress, Reason string
}

// nodeHook returns nchookd's attributes of the VM, ok when its host runs
// nchookd and follows this VM's install.
func (v *vmInfo) nodeHook() (nodeHook, bool) {
	m := &v.Monitoring
	h := nodeHook{
		Version:  printable(m.get("KSCLOUD_NCHOOKD")),
		Phase:    printable(m.get("KSCLOUD_PHASE")),
		Progress: printable(m.get("KSCLOUD_PROGRESS")),
		Reason:   printable(m.get("KSCLOUD_REASON")),
	}
	return h, h.Version != ""
}

// printable keeps a node-supplied value to one short line of printable
// ASCII.
func printable(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 200; i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			c = ' '
		}
		b = append(b, c)
	}
	return strings.TrimSpace(string(b))
}

// nchookd install phases (internal/hookd's PhaseInstalling …).
const (
	hookFinal  = "final"
	hookFailed = "failed"
)

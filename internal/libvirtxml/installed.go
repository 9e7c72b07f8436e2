package libvirtxml

import (
	"fmt"
)

// InstalledDomain is the domain a cloud generated anew (OpenNebula's deploy
// after a resume, an undeploy or a migration) for an instance whose install
// already finished: it boots from its disk, never the installer again.
//
// A domain carrying kscloud metadata (an installer domain) becomes its
// [FinalDomain]. A domain without it (what the cloud wrote from the VM's
// template: with OS/KERNEL_DS it still names the installer's kernel) loses
// <kernel>, <initrd>, <cmdline>, <root> and <dtb> in <os>, and gets
// <boot dev="hd"/> unless it has a <boot> or a device a <boot order=…>;
// its lifecycle actions stay as the cloud wrote them. Either way the
// metadata says phase "final" with mode (so nchookd's follower never takes
// it for an installer), and the function is idempotent. On any error the
// result is nil.
func InstalledDomain(domainXML []byte, mode string) ([]byte, error) {
	if mode != ModeInPlace && mode != ModeBake {
		return nil, fmt.Errorf("installed domain: mode %q is neither %s nor %s", mode, ModeBake, ModeInPlace)
	}
	d, err := parseDomain(domainXML)
	if err != nil {
		return nil, err
	}
	_, ok, err := d.readMeta()
	if err != nil {
		return nil, err
	}
	if ok {
		if err := d.finalDomain(); err != nil {
			return nil, err
		}
		return d.bytes()
	}
	devices, err := single(d.root, "devices")
	if err != nil {
		return nil, err
	}
	d.bootFromDisk(devices)
	onReboot, err := single(d.root, "on_reboot")
	if err != nil {
		return nil, err
	}
	onPoweroff, err := single(d.root, "on_poweroff")
	if err != nil {
		return nil, err
	}
	if err := d.writeMeta(Meta{Mode: mode, Phase: PhaseFinal, OrigOnReboot: text(onReboot), OrigOnPoweroff: text(onPoweroff)}); err != nil {
		return nil, err
	}
	return d.bytes()
}

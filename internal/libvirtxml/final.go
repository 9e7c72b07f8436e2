package libvirtxml

import (
	"fmt"

	"github.com/beevik/etree"
)

// FinalDomain turns an installer domain (output of [RewriteInstall]) into the
// post-install domain that boots from its disk:
//
//   - <os> loses <kernel>, <initrd>, <cmdline>, <root> and <dtb>, and gets
//     <boot dev="hd"/> unless it has a <boot> or a device has <boot order=…>;
//   - <on_reboot> and <on_poweroff> get back the values [Meta] recorded (an
//     element that was absent is removed again);
//   - the VNC console is removed if nchookd added it ([Meta].VNCAdded, which
//     is then cleared); a serial device it added stays, so that the console
//     log keeps being written;
//   - [Meta].Phase becomes "final".
//
// Everything else stays as it was. FinalDomain is idempotent. A domain without
// kscloud metadata is not one of ours: the error wraps [ErrNotInstaller].
// On any error the result is nil.
func FinalDomain(domainXML []byte) ([]byte, error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return nil, err
	}
	if err := d.finalDomain(); err != nil {
		return nil, err
	}
	return d.bytes()
}

func (d *domain) finalDomain() error {
	m, ok, err := d.readMeta()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: domain %q", ErrNotInstaller, text(first(d.root, "name")))
	}
	devices, err := single(d.root, "devices")
	if err != nil {
		return err
	}

	d.bootFromDisk(devices)

	for _, v := range []struct{ tag, orig string }{{"on_poweroff", m.OrigOnPoweroff}, {"on_reboot", m.OrigOnReboot}} {
		if v.orig == "" {
			removeChildren(d.root, v.tag)
			continue
		}
		e, err := d.ensure(d.root, v.tag, domainOrder)
		if err != nil {
			return err
		}
		setText(e, v.orig)
	}

	if m.VNCAdded && devices != nil {
		removeAll(devices, isVNC)
	}
	m.VNCAdded = false
	m.Phase = PhaseFinal
	return d.writeMeta(m)
}

// hasBootOrder reports whether a device has a <boot order=…> element.
func hasBootOrder(devices *etree.Element) bool {
	if devices == nil {
		return false
	}
	for _, dev := range devices.ChildElements() {
		for _, b := range children(dev, "boot") {
			if _, ok := attr(b, "order"); ok {
				return true
			}
		}
	}
	return false
}

// bootFromDisk drops the domain's direct kernel boot (kernel, initrd,
// cmdline, root, dtb of libvirt's namespace) and, unless a <boot> or a
// device's boot order says otherwise, boots the first disk.
func (d *domain) bootFromDisk(devices *etree.Element) {
	removeAll(d.os, func(e *etree.Element) bool {
		if e.Space != "" {
			return false
		}
		switch e.Tag {
		case "kernel", "initrd", "cmdline", "root", "dtb":
			return true
		}
		return false
	})
	if len(children(d.os, "boot")) == 0 && !hasBootOrder(devices) {
		b := etree.NewElement("boot")
		b.CreateAttr("dev", "hd")
		d.insertOrdered(d.os, b, osOrder)
	}
}

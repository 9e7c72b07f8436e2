package libvirtxml

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// RewriteInstall turns a domain into its installer boot. It owns these parts
// of the document and leaves everything else as it was:
//
//   - <os>/<kernel> and <initrd> are set from in, or the domain's own are kept
//     when in names no kernel; a domain left without a kernel (an HVM
//     instance without EKI/ERI and no catalog installer) is an [ErrNoKernel].
//   - <os>/<cmdline> is built as the package documentation describes; the
//     cloud's own command line is discarded. <os>/<root> is removed.
//   - <on_reboot> and <on_poweroff> become "destroy": the installer's reboot
//     or power-off ends the installer boot. They are created where missing.
//   - A VNC console <graphics type="vnc"> listening on in.VNC.Listen with
//     in.VNC.Password is added when in.VNC is set and the domain has no VNC
//     graphics yet.
//   - A <serial type="file"> writing to in.SerialLog is added when the domain
//     has no serial device and SerialLog is set.
//   - The first file-backed serial device's <source> gets append="on": the
//     installer's output stays in the log when the installed system boots
//     in place (QEMU would truncate it), for GetConsoleOutput and debugging.
//   - [Meta] is recorded in <metadata> (created if missing).
//
// RewriteInstall is idempotent: given its own output and the same in, it
// returns the same bytes. On a domain it rewrote before, the original
// <on_reboot>/<on_poweroff> come from [Meta], and a VNC console or serial
// device it added is kept as it is (a new VNC password does not replace the
// one already there); one it added that in no longer asks for is removed.
//
// On any error the result is nil, and the caller keeps its file as it was.
func RewriteInstall(domainXML []byte, in Install) ([]byte, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	d, err := parseDomain(domainXML)
	if err != nil {
		return nil, err
	}
	if err := d.rewriteInstall(in); err != nil {
		return nil, err
	}
	return d.bytes()
}

func (d *domain) rewriteInstall(in Install) error {
	prev, hasPrev, err := d.readMeta()
	if err != nil {
		return err
	}
	devices, err := single(d.root, "devices")
	if err != nil {
		return err
	}
	onReboot, err := single(d.root, "on_reboot")
	if err != nil {
		return err
	}
	onPoweroff, err := single(d.root, "on_poweroff")
	if err != nil {
		return err
	}
	m := Meta{Mode: in.Mode, Installer: in.Installer, Phase: PhaseInstall}
	if hasPrev {
		m.OrigOnReboot, m.OrigOnPoweroff = prev.OrigOnReboot, prev.OrigOnPoweroff
	} else {
		m.OrigOnReboot, m.OrigOnPoweroff = text(onReboot), text(onPoweroff)
		for _, v := range []struct{ name, val string }{{"on_reboot", m.OrigOnReboot}, {"on_poweroff", m.OrigOnPoweroff}} {
			if v.val != "" && !isLifecycleAction(v.val) {
				return invalid("<%s> %q is not a lifecycle action", v.name, v.val)
			}
		}
	}

	// Kernel and initrd.
	kernel, err := single(d.os, "kernel")
	if err != nil {
		return err
	}
	initrd, err := single(d.os, "initrd")
	if err != nil {
		return err
	}
	if in.Kernel != "" {
		if kernel == nil {
			kernel = etree.NewElement("kernel")
			d.insertOrdered(d.os, kernel, osOrder)
		}
		setText(kernel, in.Kernel)
		switch {
		case in.Initrd != "" && initrd == nil:
			initrd = etree.NewElement("initrd")
			d.insertOrdered(d.os, initrd, osOrder)
			setText(initrd, in.Initrd)
		case in.Initrd != "":
			setText(initrd, in.Initrd)
		case initrd != nil:
			remove(initrd)
		}
	} else if text(kernel) == "" {
		name := text(first(d.root, "name"))
		return fmt.Errorf("%w: domain %q boots from its disk and no installer kernel was given", ErrNoKernel, name)
	}
	removeChildren(d.os, "root")

	// Devices nchookd added on an earlier pass: a VNC console no longer asked
	// for and a serial log no longer given are removed, the others stay.
	if hasPrev && devices != nil {
		if prev.VNCAdded && in.VNC == nil {
			removeAll(devices, isVNC)
		}
		if prev.SerialAdded && in.SerialLog == "" {
			removeChildren(devices, "serial")
		}
	}

	// Serial console.
	tty := consoleTTY(d.os)
	port, hasSerial, err := consolePort(devices, tty)
	if err != nil {
		return err
	}
	switch {
	case hasSerial:
		m.SerialAdded = hasPrev && prev.SerialAdded
	case in.SerialLog != "":
		if devices, err = d.ensure(d.root, "devices", domainOrder); err != nil {
			return err
		}
		d.addSerial(devices, in.SerialLog)
		port, m.SerialAdded = 0, true
	}

	// Command line.
	cmdline := in.Cmdline
	if port >= 0 {
		cmdline = withSerialConsole(cmdline, tty, port)
	}
	if len(cmdline) > MaxCmdline {
		return fmt.Errorf("%w: %d bytes with the console parameter, the limit is %d", ErrCmdlineTooLong, len(cmdline), MaxCmdline)
	}
	ce, err := single(d.os, "cmdline")
	if err != nil {
		return err
	}
	switch {
	case cmdline == "" && ce != nil:
		remove(ce)
	case cmdline != "" && ce == nil:
		ce = etree.NewElement("cmdline")
		d.insertOrdered(d.os, ce, osOrder)
		setText(ce, cmdline)
	case cmdline != "":
		setText(ce, cmdline)
	}

	// Lifecycle.
	for _, tag := range []string{"on_poweroff", "on_reboot"} {
		e, err := d.ensure(d.root, tag, domainOrder)
		if err != nil {
			return err
		}
		setText(e, "destroy")
	}

	// VNC console.
	if in.VNC != nil {
		switch {
		case devices != nil && len(vncGraphics(devices)) > 0:
			m.VNCAdded = hasPrev && prev.VNCAdded
		default:
			if devices, err = d.ensure(d.root, "devices", domainOrder); err != nil {
				return err
			}
			d.addVNC(devices, *in.VNC)
			m.VNCAdded = true
		}
	}
	appendConsoleLog(devices)

	return d.writeMeta(m)
}

// first returns the first child element of e named tag in no namespace, or nil.
func first(e *etree.Element, tag string) *etree.Element {
	for _, t := range e.Child {
		if c, ok := t.(*etree.Element); ok && c.Space == "" && c.Tag == tag {
			return c
		}
	}
	return nil
}

// vncGraphics returns the <graphics type="vnc"> devices.
func vncGraphics(devices *etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, g := range devices.ChildElements() {
		if isVNC(g) {
			out = append(out, g)
		}
	}
	return out
}

// isVNC reports whether e is a <graphics type="vnc"> device.
func isVNC(e *etree.Element) bool {
	return e.Space == "" && e.Tag == "graphics" && attrValue(e, "type") == "vnc"
}

// consolePort returns the target port of the serial device whose ttyS the
// installer's console should be, or -1 when the domain has none (see the
// package documentation), and whether the domain has any serial device.
// Ports are numbered as libvirt does: a serial without a port gets one more
// than the highest port before it.
func consolePort(devices *etree.Element, tty string) (port int, hasSerial bool, err error) {
	if devices == nil {
		return -1, false, nil
	}
	fileIdx, anyIdx, next := -1, -1, 0 // next: one more than the highest port so far
	var ports []int
	for _, s := range children(devices, "serial") {
		target := first(s, "target")
		n := -1
		if target != nil {
			if v, ok := attr(target, "port"); ok {
				p, perr := strconv.Atoi(strings.TrimSpace(v))
				if perr != nil || p < 0 {
					return -1, false, invalid("<serial> target port %q is not a port number", v)
				}
				n = p
			}
		}
		if n < 0 {
			n = next
		}
		next = max(next, n+1)
		ports = append(ports, n)
		if target != nil {
			if tt := attrValue(target, "type"); tt != "" && tt != serialTargetType[tty] {
				continue
			}
		}
		if anyIdx < 0 {
			anyIdx = len(ports) - 1
		}
		if fileIdx < 0 && attrValue(s, "type") == "file" {
			fileIdx = len(ports) - 1
		}
	}
	switch {
	case fileIdx >= 0:
		return ports[fileIdx], true, nil
	case anyIdx >= 0:
		return ports[anyIdx], true, nil
	}
	return -1, len(ports) > 0, nil
}

// consoleTTY is the Linux name of a domain's serial ports (without the
// number): ttyAMA on Arm (the virt machine's PL011, libvirt's
// system-serial target), ttyS elsewhere (isa-serial).
func consoleTTY(osElem *etree.Element) string {
	if osElem != nil {
		if t := first(osElem, "type"); t != nil {
			switch attrValue(t, "arch") {
			case "aarch64", "armv7l", "armv6l":
				return "ttyAMA"
			}
		}
	}
	return "ttyS"
}

// serialTargetType is the <serial><target type=…> whose port is a tty.
var serialTargetType = map[string]string{"ttyS": "isa-serial", "ttyAMA": "system-serial"}

// withSerialConsole makes the serial console of the command line the one
// the domain really has, <tty><port> (ttyS0, ttyAMA0), and puts it last: Linux runs one
// serial console only, and makes the last console= /dev/console, where an
// installer writes. A user's console=ttyS<port>[,options] is kept (moved
// last); a console=ttyS<k> naming a port the domain lacks is dropped (it
// would take the one serial console away from the log); every other
// parameter, console=tty0 included, stays as written.
func withSerialConsole(line, tty string, port int) string {
	own := "console=" + tty + strconv.Itoa(port)
	var keep []string
	for _, f := range strings.Split(line, " ") {
		if p, ok := serialConsoleOn(f, tty); ok {
			if p == port {
				own = f
			}
			continue
		}
		keep = append(keep, f)
	}
	rest := strings.Join(keep, " ")
	if rest == "" {
		return own
	}
	return rest + " " + own
}

// serialConsolePort parses console=ttyS<N>[,options].
func serialConsolePort(tok string) (int, bool) { return serialConsoleOn(tok, "ttyS") }

// serialConsoleOn parses console=<tty><N>[,options].
func serialConsoleOn(tok, tty string) (int, bool) {
	rest, ok := strings.CutPrefix(tok, "console="+tty)
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, ",")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || digits[0] == '+' {
		return 0, false
	}
	return n, true
}

// addSerial adds <serial type="file"><source path=…/><target port="0"/></serial>.
func (d *domain) addSerial(devices *etree.Element, path string) {
	s := etree.NewElement("serial")
	s.CreateAttr("type", "file")
	d.insertOrdered(devices, s, devicesOrder)
	src := etree.NewElement("source")
	src.CreateAttr("path", path)
	d.appendChild(s, src)
	target := etree.NewElement("target")
	target.CreateAttr("port", "0")
	d.appendChild(s, target)
}

// appendConsoleLog opens the first file-backed serial log in append mode.
func appendConsoleLog(devices *etree.Element) {
	if src := fileSerialSource(devices); src != nil {
		src.CreateAttr("append", "on")
	}
}

// addVNC adds a VNC console with an automatically assigned port.
func (d *domain) addVNC(devices *etree.Element, v VNC) {
	g := etree.NewElement("graphics")
	g.CreateAttr("type", "vnc")
	g.CreateAttr("port", "-1")
	g.CreateAttr("autoport", "yes")
	g.CreateAttr("listen", v.Listen)
	g.CreateAttr("passwd", v.Password)
	d.insertOrdered(devices, g, devicesOrder)
	l := etree.NewElement("listen")
	l.CreateAttr("type", "address")
	l.CreateAttr("address", v.Listen)
	d.appendChild(g, l)
}

// validate checks the fields of in.
func (in Install) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidInstall, fmt.Sprintf(format, args...))
	}
	if err := checkText("cmdline", in.Cmdline); err != nil {
		return bad("%v", err)
	}
	for _, p := range []struct{ name, val string }{{"kernel", in.Kernel}, {"initrd", in.Initrd}, {"serial log", in.SerialLog}} {
		if p.val == "" {
			continue
		}
		if err := checkText(p.name, p.val); err != nil {
			return bad("%v", err)
		}
		if !strings.HasPrefix(p.val, "/") {
			return bad("%s path %q is not absolute", p.name, p.val)
		}
	}
	if in.Kernel == "" && in.Initrd != "" {
		return bad("initrd %q given without a kernel", in.Initrd)
	}
	if in.Mode != ModeBake && in.Mode != ModeInPlace {
		return bad("mode %q is not %q or %q", in.Mode, ModeBake, ModeInPlace)
	}
	if err := checkText("installer name", in.Installer); err != nil {
		return bad("%v", err)
	}
	if v := in.VNC; v != nil {
		if _, err := netip.ParseAddr(v.Listen); err != nil {
			return bad("vnc listen address %q is not an IP address", v.Listen)
		}
		if v.Password == "" {
			return bad("vnc password is empty")
		}
		if len(v.Password) > MaxVNCPassword {
			return bad("vnc password is %d characters, the limit is %d", len(v.Password), MaxVNCPassword)
		}
		for i := 0; i < len(v.Password); i++ {
			if c := v.Password[i]; c < 0x21 || c > 0x7e {
				return bad("vnc password has a character other than printable ASCII at byte %d", i)
			}
		}
	}
	return nil
}

// checkText refuses strings that could not travel through XML unchanged or do
// not belong on a single kernel command line: invalid UTF-8, control
// characters, and characters XML 1.0 does not allow.
func checkText(what, s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Errorf("%s is not valid UTF-8 at byte %d", what, i)
		case unicode.IsControl(r):
			return fmt.Errorf("%s has control character %U at byte %d", what, r, i)
		case r == 0xFFFE || r == 0xFFFF:
			return fmt.Errorf("%s has character %U, which XML does not allow, at byte %d", what, r, i)
		}
	}
	return nil
}

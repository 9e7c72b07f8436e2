package libvirtxml

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps one of them;
// test for them with errors.Is. Messages are one lowercase line.
var (
	// ErrInvalidDomain means the input is not a domain XML document this
	// package accepts: not well-formed, root not <domain>, no or several
	// <os>, a DOCTYPE or other <!...> declaration, duplicate attributes,
	// duplicate elements the rewrite owns, or an invalid value in one of them.
	ErrInvalidDomain = errors.New("invalid domain XML")
	// ErrInvalidInstall means a field of [Install] has a value the rewrite
	// refuses (control characters, a relative path, an unknown mode, a VNC
	// password longer than 8 characters, ...).
	ErrInvalidInstall = errors.New("invalid install request")
	// ErrCmdlineTooLong means the installer's kernel command line, after the
	// console= parameter was appended, is longer than [MaxCmdline] bytes.
	ErrCmdlineTooLong = errors.New("kernel command line too long")
	// ErrNoKernel means the rewrite would leave the domain without a kernel
	// to boot: [Install] names no kernel and the domain has none of its own
	// (an HVM instance without EKI/ERI).
	ErrNoKernel = errors.New("domain has no kernel")
	// ErrNotInstaller means [FinalDomain] was given a domain without kscloud
	// [Meta]: it is not an installer domain made by [RewriteInstall].
	ErrNotInstaller = errors.New("domain has no kscloud install metadata")
)

// MaxCmdline is the longest kernel command line, in bytes, that
// [RewriteInstall] writes: x86 allows 2048 bytes including the terminating NUL.
const MaxCmdline = 2047

// MaxVNCPassword is the longest VNC password libvirt and QEMU accept, in
// characters (VNC authentication uses an 8-byte DES key).
const MaxVNCPassword = 8

const pwAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewVNCPassword returns a random password of MaxVNCPassword characters
// that are easy to read and type (no 0/O, 1/l/I).
func NewVNCPassword() (string, error) {
	b := make([]byte, MaxVNCPassword)
	// getrandom(2) itself, as crypto/rand reads it: crypto/rand would link
	// the whole crypto tree (its package init included) into the static
	// hook, whose start-up is the pre-boot's cost (issue 10).
	if err := getrandom(b); err != nil {
		return "", fmt.Errorf("vnc password: %w", err)
	}
	for i := range b {
		b[i] = pwAlphabet[int(b[i])%len(pwAlphabet)]
	}
	return string(b), nil
}

// Namespace and element of the kscloud metadata.
const (
	// MetaNamespace is the XML namespace URI of the kscloud metadata element.
	MetaNamespace = "https://kscloud.dev/xmlns/install/1"
	// MetaPrefix is the namespace prefix used when the element is created.
	MetaPrefix = "kscloud"
	// MetaElement is the local name of the metadata element under <metadata>.
	MetaElement = "install"
)

// Values of [Meta].Mode and [Install].Mode.
const (
	// ModeBake boots the installer and lets its power action end the
	// instance; the installed disk becomes an image.
	ModeBake = "bake"
	// ModeInPlace boots the installer, then the installed disk in the same
	// instance.
	ModeInPlace = "in-place"
)

// Values of [Meta].Phase.
const (
	// PhaseInstall marks a domain rewritten by [RewriteInstall].
	PhaseInstall = "install"
	// PhaseFinal marks a domain rewritten by [FinalDomain].
	PhaseFinal = "final"
)

// VNC is an install's VNC console: asked for in [Install] (Listen and
// Password), read back from a domain by [VNCGraphics] (with the port libvirt
// assigned), and kept in nchookd's status (its JSON).
type VNC struct {
	// Listen is the IP address QEMU's VNC server listens on, e.g. "127.0.0.1".
	Listen string `json:"listen"`
	// Port is the TCP port libvirt assigned: 0 when not known, -1 in a
	// domain libvirt has not started. [RewriteInstall] ignores it (the
	// port is always assigned automatically).
	Port int `json:"port,omitempty"`
	// Password is the VNC password: 1 to 8 printable ASCII characters
	// (libvirt's limit); a VNC console is never added without one.
	Password string `json:"password"`
}

// Addr is listen:port, an IPv6 address in brackets.
func (v VNC) Addr() string { return net.JoinHostPort(v.Listen, strconv.Itoa(v.Port)) }

// URL is vnc://listen:port.
func (v VNC) URL() string { return "vnc://" + v.Addr() }

// Meta is what nchookd records in the domain's <metadata> under its own
// namespace ([MetaNamespace], element <kscloud:install>), so that a later pass
// (and a restarted daemon) can recognise an installer domain and undo the
// install-only parts.
type Meta struct {
	// Mode is "bake" or "in-place".
	Mode string
	// Installer is the catalog name of the installer, or "" when the
	// instance's own kernel and ramdisk (Eucalyptus EKI/ERI) serve as one.
	Installer string
	// Phase is "install" after [RewriteInstall] and "final" after
	// [FinalDomain].
	Phase string
	// OrigOnReboot and OrigOnPoweroff are the domain's <on_reboot> and
	// <on_poweroff> before the first rewrite; "" when the element was absent
	// (libvirt's default applies then).
	OrigOnReboot, OrigOnPoweroff string
	// VNCAdded reports that the domain carries a VNC graphics device nchookd
	// added; [FinalDomain] removes it and clears the flag.
	VNCAdded bool
	// SerialAdded reports that the domain carries a serial device nchookd
	// added because it had none; it is kept in the final domain.
	SerialAdded bool
}

// Install describes the installer boot [RewriteInstall] makes of a domain.
type Install struct {
	// Kernel and Initrd are absolute host paths of a catalog installer. Both
	// empty keeps the domain's own <kernel> and <initrd> (Eucalyptus EKI/ERI).
	// A Kernel without Initrd removes the domain's <initrd>; an Initrd
	// without Kernel is refused.
	Kernel, Initrd string
	// Cmdline is the user's kernel parameters, already validated by the
	// caller, carried verbatim (see the package documentation for how the
	// final command line is built).
	Cmdline string
	// VNC, when not nil, adds a VNC console unless the domain has one.
	VNC *VNC
	// SerialLog is the absolute path of a <serial type="file"> log, used only
	// when the domain has no serial device.
	SerialLog string
	// Mode ("bake" or "in-place") and Installer (catalog name or "") are
	// recorded in [Meta].
	Mode, Installer string
}

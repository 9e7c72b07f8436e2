// Package libvirtxml rewrites libvirt domain XML for kscloud's installer boots.
//
// Every function here is a pure function of bytes: a domain XML document goes
// in, a new document (or a value read from it) comes out. Nothing here talks to
// libvirt, uses cgo or does work at init time, so the package can be linked
// into the static Eucalyptus hook binary. Documents are handled as element
// trees with github.com/beevik/etree, never by string substitution: text that
// comes from user-data (the kernel command line) only ever reaches the output
// as escaped character data inside <os>/<cmdline>.
//
// [RewriteInstall] turns the domain a cloud generated (for Eucalyptus, the
// output of the node controller's XSLT) into the installer boot, [FinalDomain]
// turns that installer domain into the post-install domain that boots from its
// disk, and [ReadMeta], [DomainName], [VNCGraphics], [DirectBoot] and
// [SerialLog] read what the daemon and the hook need: every read of domain
// XML in the project is here. What the daemon
// needs. The rewrites own only the parts of the document listed on each
// function; everything else (unknown elements, foreign namespaces, comments,
// attribute order, indentation) is left as it was. Both rewrites are
// idempotent: applying one to its own output returns the same bytes.
//
// What the rewrites did is recorded in the domain's <metadata> as
//
//	<kscloud:install xmlns:kscloud="https://kscloud.dev/xmlns/install/1"
//	    mode="bake" installer="NAME" phase="install"
//	    orig-on-poweroff="destroy" orig-on-reboot="restart"
//	    vnc-added="no" serial-added="no"/>
//
// (see [Meta]), so that a later pass, or a restarted daemon, can recognise an
// installer domain and undo its install-only parts.
//
// # The installer's kernel command line
//
// The <cmdline> of the installer boot is built from the user's kernel
// parameters and the domain's serial device only:
//
//   - The command line the cloud put into the domain is discarded. The
//     Eucalyptus node controller writes "root=/dev/sda1 console=ttyS0", and an
//     installer's initramfs given root= would try to mount the disk it is
//     about to install onto.
//   - The user's parameters ([Install].Cmdline) come first, carried verbatim.
//   - " console=ttyS<N>" is appended, where N is the target port of the serial
//     device that feeds the console log: the first <serial type="file"> under
//     <devices>, or, if there is none, the first <serial> of any type. Only
//     serials whose <target> has no type or type "isa-serial" count (other
//     target types are not ttyS devices). A serial without a port attribute
//     gets the port libvirt gives it: one more than the highest port of the
//     serials before it, so 0 for the first one. Eucalyptus writes
//     <target port="1"/>, which the guest sees as ttyS1. On Arm (<os><type
//     arch="aarch64">, also armv7l/armv6l) the serial ports are the virt
//     machine's PL011 UARTs: the token is console=ttyAMA<N>, and targets of
//     type "system-serial" count instead of "isa-serial".
//   - The console= token is not appended when the user's parameters already
//     contain exactly that token (split at spaces). It is appended last
//     because Linux makes the last console= the /dev/console: the installer's
//     text then reaches the console log, and a console=tty0 or console=ttyS0
//     the user gave stays as an additional console.
//   - A domain without any serial device gets <serial type="file"> with
//     <target port="0"/> writing to [Install].SerialLog, and console=ttyS0.
//     When SerialLog is empty no serial device is added and no console= is
//     appended.
//   - With no user parameters the line is only "console=ttyS<N>"; when that
//     is empty too, <cmdline> is removed.
//   - The result must be at most 2047 bytes (x86 allows 2048 including the
//     terminating NUL, and QEMU and the kernel truncate silently); a longer
//     line fails with [ErrCmdlineTooLong]. The user's parameters must be
//     valid UTF-8 without control characters ([ErrInvalidInstall]).
package libvirtxml

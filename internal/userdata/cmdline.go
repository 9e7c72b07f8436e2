package userdata

import (
	"strings"
	"unicode/utf8"
)

// MaxCmdline is the longest kernel command line accepted, in bytes. The x86 boot
// protocol allows 2048 bytes including the terminating NUL, and QEMU and the
// kernel truncate longer lines silently, so longer lines are refused instead.
const MaxCmdline = 2047

// ValidateCmdline checks a kernel command line taken from untrusted input: it
// must be valid UTF-8, contain no control characters (C0 including NUL and tab,
// DEL, and C1 U+0080–U+009F), be non-empty after trimming white space, and be at
// most [MaxCmdline] bytes. Errors are [*Error] values wrapping [ErrCmdline].
func ValidateCmdline(s string) error {
	if err := checkCmdline(s); err != nil {
		return &Error{Where: "bootparams", Err: err}
	}
	return nil
}

// CheckCmdline is ValidateCmdline without the user-data location: for a
// command line from elsewhere (an OpenNebula catalog's KSCLOUD_CMDLINE).
func CheckCmdline(s string) error { return checkCmdline(s) }

// checkCmdline is ValidateCmdline without the location wrapper.
func checkCmdline(s string) error {
	if len(s) > MaxCmdline {
		return errf(ErrCmdline, "kernel command line is %d bytes, %d over the %d-byte limit",
			len(s), len(s)-MaxCmdline, MaxCmdline)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return errf(ErrCmdline, "invalid UTF-8 at byte %d", i)
		case r < 0x20 || r == 0x7f || 0x80 <= r && r <= 0x9f:
			return errf(ErrCmdline, "control character U+%04X at byte %d", r, i)
		}
		i += size
	}
	if strings.TrimSpace(s) == "" {
		return errf(ErrCmdline, "kernel command line is empty")
	}
	return nil
}

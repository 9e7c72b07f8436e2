// Package safetext makes text from a guest or a tenant safe to print on an
// operator's terminal: a guest's console lines, an installer's progress and
// failure lines, a user's boot parameters. Line drops every terminal escape
// and control sequence (ECMA-48 CSI, OSC — window title, clipboard write
// OSC 52 —, DCS/SOS/PM/APC strings, two-byte escapes, a lone ESC, their
// 8-bit C1 forms) and every other control character (a carriage return or
// backspace that would overwrite what is shown, BEL, DEL, C1), and shows
// what would reorder or hide text — Unicode format characters (category
// Cf: bidi overrides and isolates, zero-width joiners, BOM), line and
// paragraph separators, bytes that are not UTF-8 — escaped as \u202e or
// \x9b. The result is one line of printable text; Line is idempotent.
package safetext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line returns s as one printable line: escape sequences and control
// characters removed (tab and newline become a space), format characters
// and invalid bytes shown escaped.
func Line(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
			i++
			continue
		case r == 0x1b: // ESC
			i = skipEscape(s, i+1)
			continue
		case r == 0x9b: // C1 CSI
			i = skipCSI(s, i+n)
			continue
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f: // C1 DCS, SOS, OSC, PM, APC
			i = skipString(s, i+n)
			continue
		case r == '\t' || r == '\n':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			// other C0 (CR, BS, BEL, …), DEL, other C1: dropped
		case unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029:
			b.WriteString(escapeRune(r))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Lines applies Line to each element of ls, in place, and returns ls.
func Lines(ls []string) []string {
	for i, l := range ls {
		ls[i] = Line(l)
	}
	return ls
}

// isPlain reports whether s is printable ASCII only, the common case.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// skipEscape returns the index after the escape sequence whose ESC ends at
// i (s[i] is the byte after ESC).
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i // a lone ESC at the end
	}
	switch s[i] {
	case '[':
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC
		return skipString(s, i+1)
	}
	// nF escapes: intermediates 0x20–0x2F, then one final byte 0x30–0x7E
	// (ESC ( B, ESC # 8, ESC 7, ESC c …).
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipCSI skips a control sequence's parameter (0x30–0x3F) and
// intermediate (0x20–0x2F) bytes and its final byte (0x40–0x7E), starting
// after CSI. A sequence broken by any other byte ends there; that byte is
// then read as text (which drops it if it is a control).
func skipCSI(s string, i int) int {
	for i < len(s) && s[i] >= 0x30 && s[i] <= 0x3f {
		i++
	}
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipString skips a command string (OSC, DCS, SOS, PM, APC) up to and
// including its terminator: BEL, ESC \ or C1 ST. An unterminated string
// runs to the end of s: all of it is dropped, as a terminal would swallow
// it.
func skipString(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == 0x07:
			return i + 1
		case s[i] == 0x1b:
			if i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			// ESC starting something else also ends the string (xterm)
			return i
		case strings.HasPrefix(s[i:], "\u009c"):
			return i + len("\u009c")
		}
		i++
	}
	return i
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}

// escapeRune spells r as Go does in a string literal: \u202e, \U000e0001.
func escapeRune(r rune) string {
	h := strconv.FormatInt(int64(r), 16)
	if r > 0xffff {
		return `\U` + strings.Repeat("0", 8-len(h)) + h
	}
	return `\u` + strings.Repeat("0", 4-len(h)) + h
}

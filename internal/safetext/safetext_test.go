package safetext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"plain", "Installing bash (12/345)", "Installing bash (12/345)"},
		{"utf8 kept", "Paquets installés: 3 — ok ✓", "Paquets installés: 3 — ok ✓"},
		{"sgr colour", "\x1b[1;31mFAILED\x1b[0m unit", "FAILED unit"},
		{"cursor and erase", "a\x1b[2J\x1b[H\x1b[?25lb", "ab"},
		{"osc title bel", "\x1b]0;root@evil\x07ok", "ok"},
		{"osc 52 clipboard st", "x\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x1b\\y", "xy"},
		{"osc 8 hyperlink", "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"osc unterminated swallows rest", "ok\x1b]52;c;AAAA", "ok"},
		{"dcs", "a\x1bP+q544e\x1b\\b", "ab"},
		{"apc pm sos", "\x1b_x\x1b\\\x1b^y\x1b\\\x1bXz\x1b\\t", "t"},
		{"two-byte escapes", "\x1b7a\x1b8\x1bcb\x1b(Bc\x1b#8", "abc"},
		{"lone esc at end", "abc\x1b", "abc"},
		{"c1 csi", "a\u009b31mb", "ab"},
		{"c1 osc with c1 st", "a\u009d0;title\u009cb", "ab"},
		{"raw 8-bit csi byte", "a\x9b31mb", `a\x9b31mb`},
		{"cr overwrite", "rm -rf / #\rharmless", "rm -rf / #harmless"},
		{"backspace overwrite", "evil\b\b\b\bgood", "evilgood"},
		{"bell del nul", "a\x07b\x7fc\x00d", "abcd"},
		{"tab newline", "a\tb\nc", "a b c"},
		{"rlo", "cmdline=\u202egnp.exe", `cmdline=\u202egnp.exe`},
		{"lro zwj isolates", "a\u202db\u200dc\u2066d\u2069", `a\u202db\u200dc\u2066d\u2069`},
		{"bom zwsp", "\ufeffx\u200by", `\ufeffx\u200by`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"tag character", "a\U000e0041", `a\U000e0041`},
	} {
		if got := Line(c.in); got != c.want {
			t.Errorf("%s: Line(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func TestLines(t *testing.T) {
	ls := Lines([]string{"\x1b[31mred", "ok"})
	if ls[0] != "red" || ls[1] != "ok" {
		t.Fatalf("Lines = %q", ls)
	}
}

// checkSafe fails when out could move the cursor, change the terminal's
// state, or reorder or hide text.
func checkSafe(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("Line(%q) = %q: not UTF-8", in, out)
	}
	for _, r := range out {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029 {
			t.Fatalf("Line(%q) = %q: holds %U", in, out, r)
		}
	}
	if again := Line(out); again != out {
		t.Fatalf("Line not idempotent: Line(%q) = %q, Line of that = %q", in, out, again)
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31mx", "\x1b]52;c;QQ==\x07", "\x1bP\x1b\\", "\u202e", "\x9b", "\u009b1m", "a\rb", "\x1b", "\x1b]", "\x1b[", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Line(s)
		checkSafe(t, s, out)
		// printable text survives: every letter of a plain input stays
		if !strings.ContainsAny(s, "\x1b\u009b\u0090\u0098\u009d\u009e\u009f") {
			for _, r := range s {
				if unicode.IsLetter(r) && r < 0x80 && !strings.ContainsRune(out, r) {
					t.Fatalf("Line(%q) = %q lost %q", s, out, r)
				}
			}
		}
	})
}

func BenchmarkLinePlain(b *testing.B) {
	s := "Installing kernel-core-6.8.5-301.fc40.x86_64 (312/645)"
	for i := 0; i < b.N; i++ {
		Line(s)
	}
}

package userdata

import (
	"strings"
	"testing"
)

func TestValidateCmdline(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		err  bool
		msg  string
	}{
		{"seed", seedParams, false, ""},
		{"xml specials", "a=</cmdline><disk type='file'> &amp; <!ENTITY x> \"q\" !", false, ""},
		{"unicode", "hostname=café lang=日本語", false, ""},
		{"nbsp is not a control character", "a\u00a0b", false, ""},
		{"2047 bytes", strings.Repeat("a", 2047), false, ""},
		{"2047 bytes of multibyte runes", strings.Repeat("é", 1023) + "a", false, ""},
		{"2048 bytes", strings.Repeat("a", 2048), true, "kernel command line is 2048 bytes, 1 over the 2047-byte limit"},
		{"huge", strings.Repeat("a", 1<<20), true, "1048576 bytes"},
		{"empty", "", true, "empty"},
		{"spaces", "   ", true, "empty"},
		{"unicode spaces", "\u2003\u3000", true, "empty"},
		{"NUL", "a\x00", true, "U+0000 at byte 1"},
		{"tab", "a\tb", true, "U+0009"},
		{"newline", "a\nb", true, "U+000A"},
		{"CR", "a\r", true, "U+000D"},
		{"escape", "\x1b[2J", true, "U+001B at byte 0"},
		{"unit separator", "a\x1f", true, "U+001F"},
		{"DEL", "a\x7f", true, "U+007F"},
		{"C1 first", "a\u0080", true, "U+0080"},
		{"C1 NEL", "a\u0085", true, "U+0085"},
		{"C1 last", "a\u009f", true, "U+009F"},
		{"after C1", "a\u00a0\u00ff", false, ""},
		{"invalid UTF-8", "a\xc3", true, "invalid UTF-8 at byte 1"},
		{"overlong encoding", "a\xc0\xaf", true, "invalid UTF-8"},
		{"surrogate", "a\xed\xa0\x80", true, "invalid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateCmdline(tc.in)
			if !tc.err {
				checkErr(t, err, nil)
				return
			}
			checkErr(t, err, ErrCmdline, "user-data: bootparams: ", tc.msg)
		})
	}
}

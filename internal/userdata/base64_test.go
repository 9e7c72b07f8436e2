package userdata

import (
	"bytes"
	"strings"
	"testing"
)

type base64Case struct {
	name string
	in   string
	want string // when err is nil
	err  error
	msgs []string
}

// base64Cases is the table for TestDecodeBase64; FuzzDecodeBase64 seeds its
// corpus with it.
func base64Cases() []base64Case {
	return []base64Case{
		{name: "empty", in: "", want: ""},
		{name: "whitespace only", in: " \n\t\r\n ", want: ""},
		{name: "eucalyptus sample", in: "Ym9vdHBhcmFtcz1rcz1odHRwOi8vMTAuMC4wLjEva3MuY2ZnIGtzZGV2aWNlPWxpbmsgaXA9ZGhjcAo=", want: seed},
		{name: "wrapped lines CRLF", in: "Ym9vdHBhcmFtcz1rcz1odHRwOi8vMTAuMC4w\r\nLjEva3MuY2ZnIGtzZGV2aWNlPWxpbmsgaXA9\r\nZGhjcAo=\r\n", want: seed},
		{name: "spaces and tabs anywhere", in: "  Ym9v dHBh\tcmFt\vcz1h\f", want: "bootparams=a"},
		{name: "missing one pad", in: "YWI", want: "ab"},
		{name: "missing two pads", in: "YQ", want: "a"},
		{name: "padded", in: "YQ==", want: "a"},
		{name: "partial padding", in: "YQ=", want: "a"},
		{name: "padding with whitespace", in: "YQ=\n=\n", want: "a"},
		{name: "all bytes", in: "AAECA/z9/v8=", want: "\x00\x01\x02\x03\xfc\xfd\xfe\xff"},
		{name: "illegal character", in: "Ym9v*dHBh", err: ErrBase64, msgs: []string{`user-data: base64: illegal character "*" at offset 4`}},
		{name: "url-safe alphabet", in: "Ym9v-_", err: ErrBase64, msgs: []string{`"-" at offset 4`}},
		{name: "control character", in: "Ym9v\x00", err: ErrBase64, msgs: []string{`"\x00"`}},
		{name: "non-ascii", in: "Ym9vé", err: ErrBase64, msgs: []string{`"\xc3" at offset 4`}},
		{name: "xml entity", in: "Ym9v&amp;", err: ErrBase64, msgs: []string{`"&"`}},
		{name: "truncated", in: "Ym9vd", err: ErrBase64, msgs: []string{"truncated: 5 base64 characters"}},
		{name: "data after padding", in: "YQ==YQ==", err: ErrBase64, msgs: []string{"data after '=' padding at offset 4"}},
		{name: "too much padding", in: "YQ===", err: ErrBase64, msgs: []string{"too much '=' padding at offset 4"}},
		{name: "padding only", in: "=", want: ""},
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, tc := range base64Cases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBase64(tc.in)
			checkErr(t, err, tc.err, tc.msgs...)
			if tc.err == nil && !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.err != nil && got != nil {
				t.Errorf("got %q with an error", got)
			}
		})
	}
}

// TestDecodeBase64Large checks a user-data of the full Eucalyptus size.
func TestDecodeBase64Large(t *testing.T) {
	raw := strings.Repeat("0123456789abcdef", 1024) // 16384 bytes
	got, err := DecodeBase64(b64(raw))
	checkErr(t, err, nil)
	if string(got) != raw {
		t.Errorf("round trip of %d bytes failed", len(raw))
	}
}

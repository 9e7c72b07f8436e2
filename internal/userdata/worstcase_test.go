package userdata

import (
	"strings"
	"testing"
	"time"
)

// TestParseWorstCaseTime feeds Parse inputs of the maximum size built to make a
// careless implementation quadratic, and checks each finishes quickly. A
// quadratic pass over 64 KiB costs seconds; these take about a millisecond.
func TestParseWorstCaseTime(t *testing.T) {
	const n = 64 << 10
	fill := func(prefix, unit, suffix string) string {
		return prefix + strings.Repeat(unit, (n-len(prefix)-len(suffix))/len(unit)) + suffix
	}
	for _, tc := range []struct {
		name string
		in   string
		err  error
	}{
		{"folded Content-Type", fill("Content-Type: multipart/mixed; boundary=b\n", " x\n", "\n--b--\n"), ErrMIME},
		{"folded part header", fill("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n", " ;\n", "\nx\n--b--\n"), ErrMIME},
		{"near-delimiters", fill("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n", "--bx\n", "--b--\n"), nil},
		{"boundary runs", fill("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n", "--b", "\n--b--\n"), nil},
		{"empty parts", fill("Content-Type: multipart/mixed; boundary=b\n\n", "--b\n", "--b--\n"), ErrTooManyParts},
		{"repeated directives", fill("", "kscloud.vnc=yes\n", ""), nil},
		{"repeated long bootparams", fill("", "bootparams="+strings.Repeat("a", 2000)+"\n", ""), nil},
		{"comment marks", fill("", "#", "bootparams=a\n"), nil},
		{"long line", fill("", "a", "\n"), nil},
		{"base64 whitespace", fill("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n", " \n", "YQ=="), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.in) > n {
				t.Fatalf("input is %d bytes", len(tc.in))
			}
			start := time.Now()
			_, err := Parse([]byte(tc.in), DefaultLimits())
			elapsed := time.Since(start)
			checkErr(t, err, tc.err)
			if elapsed > 250*time.Millisecond {
				t.Errorf("Parse took %v on %d bytes", elapsed, len(tc.in))
			}
		})
	}
}

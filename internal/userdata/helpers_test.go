package userdata

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// seed is the user-data of seed 001 and of the Eucalyptus sample instance.xml.
const seed = "bootparams=ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp\n"

const seedParams = "ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp"

// gz compresses b.
func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzs is gz for string literals in tables (compression of a literal cannot fail).
func gzs(s string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.String()
}

// b64 encodes s in 76-column lines, as MIME writers do.
func b64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	return strings.Join(append(lines, enc), "\n")
}

// part is one MIME part for multipart: its header block and body.
type part struct{ header, body string }

// multipart builds a multipart/mixed document as cloud-init's make-mime does.
// The headers of the document come first, then the parts.
func multipart(boundary string, parts ...part) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--" + boundary + "\n" + p.header + "\n\n" + p.body + "\n")
	}
	b.WriteString("--" + boundary + "--\n")
	return b.String()
}

// nested wraps body (a multipart document with headers) as a part.
func nested(doc string) part {
	header, body, _ := strings.Cut(doc, "\n\n")
	return part{header, body}
}

// crlf converts line endings to CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// checkErr asserts that err wraps want (nil for no error), is an *Error, and has
// a single-line message containing every one of msgs and no control characters.
func checkErr(t *testing.T, err, want error, msgs ...string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %v", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q is %T, not *Error", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "user-data: ") {
		t.Errorf("message %q does not start with \"user-data: \"", msg)
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f || 0x80 <= r && r <= 0x9f {
			t.Errorf("message %q contains control character U+%04X", msg, r)
		}
	}
	if len(msg) > 400 {
		t.Errorf("message is %d bytes long: %q", len(msg), msg)
	}
	for _, m := range msgs {
		if !strings.Contains(msg, m) {
			t.Errorf("message %q does not contain %q", msg, m)
		}
	}
}

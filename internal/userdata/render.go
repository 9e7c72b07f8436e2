package userdata

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxUserData is the largest user-data Render produces, in bytes: the EC2 limit
// on user-data before base64 encoding.
//
// Eucalyptus 3.x/4.x keep the user-data in a 16384-byte NC buffer
// (ncInstance.userData) that holds the base64 text, so there raw user-data over
// about 12 KiB may arrive truncated. Only Render's larger outputs (a MIME
// multipart or gzip) can be that big, and Parse reports a truncated multipart or
// gzip stream as an error rather than reading part of it.
const MaxUserData = 16384

// compressThreshold is the size above which "auto" compression is tried.
const compressThreshold = 4 << 10

// RenderInput is what `kscloud userdata` puts into user-data.
type RenderInput struct {
	// BootParams is the installer's kernel command line (required). Trailing
	// spaces, tabs and '\r' are dropped, as Parse drops them.
	BootParams string
	// Mode is the kscloud.mode directive; "" means ModeBake, which is not written
	// because it is the default.
	Mode Mode
	// Installer is the kscloud.installer directive, omitted when "".
	Installer string
	// VNC writes kscloud.vnc=yes when true.
	VNC bool
	// Kickstart, when not empty, travels as a text/x-kickstart MIME part. It
	// must be UTF-8 text.
	Kickstart []byte
	// CloudConfig, when not empty, travels as a text/cloud-config MIME part with
	// the directives inserted as "# key=value" comment lines after its first
	// line, which must be "#cloud-config". Any directives it already carries
	// must agree with the other fields.
	CloudConfig []byte
	// Compress is "auto" (or ""), "always" or "never". "auto" gzips the whole
	// user-data when it is over 4 KiB and gzip makes it smaller.
	Compress string
}

// Render builds user-data that Parse reads back as in. Without a kickstart or
// cloud-config it is plain text, one directive per line, starting with the
// bootparams= line. With either it is a cloud-init style MIME multipart: the
// directives go as comment lines into the cloud-config part when there is one,
// else into a text/plain part, and the kickstart into a text/x-kickstart part.
// Inputs are validated as Parse validates them. Render refuses output over
// MaxUserData bytes with an ErrTooLarge error that says by how much. Errors are
// *Error values. The output is deterministic.
func Render(in RenderInput) ([]byte, error) {
	lines, err := renderDirectives(in)
	if err != nil {
		return nil, wrap("render", err)
	}
	var plain []byte
	if len(in.Kickstart) == 0 && len(in.CloudConfig) == 0 {
		plain = []byte(strings.Join(lines, "\n") + "\n")
	} else {
		plain = renderMIME(lines, in.CloudConfig, in.Kickstart)
	}

	out := plain
	compressed := false
	switch in.Compress {
	case "", "auto":
		if len(plain) > compressThreshold {
			if gz := gzipBytes(plain); len(gz) < len(plain) {
				out, compressed = gz, true
			}
		}
	case "always":
		out, compressed = gzipBytes(plain), true
	case "never":
	default:
		return nil, &Error{Where: "render: compress", Err: errf(ErrBadValue, "%s is not one of auto, always, never", quote(in.Compress))}
	}
	if len(out) > MaxUserData {
		msg := "user-data is " + strconv.Itoa(len(out)) + " bytes, " + strconv.Itoa(len(out)-MaxUserData) +
			" over the " + strconv.Itoa(MaxUserData) + "-byte limit"
		if compressed {
			msg += " after gzip (" + strconv.Itoa(len(plain)) + " bytes uncompressed)"
		} else if gz := gzipBytes(plain); len(gz) <= MaxUserData {
			msg += " (gzip compression would make it " + strconv.Itoa(len(gz)) + " bytes)"
		}
		return nil, &Error{Where: "render", Err: errf(ErrTooLarge, "%s", msg)}
	}
	return out, nil
}

// renderDirectives validates in and returns its directive lines, "key=value"
// with bootparams first. Errors are *Error values naming the offending field.
func renderDirectives(in RenderInput) ([]string, error) {
	bp := strings.TrimRight(in.BootParams, " \t\r")
	if err := checkCmdline(bp); err != nil {
		return nil, &Error{Where: "bootparams", Err: err}
	}
	mode := in.Mode
	if mode == "" {
		mode = ModeBake
	}
	if _, err := parseMode(string(mode)); err != nil {
		return nil, &Error{Where: keyNames[keyMode], Err: err}
	}
	if in.Installer != "" {
		if err := checkInstaller(in.Installer); err != nil {
			return nil, &Error{Where: keyNames[keyInstaller], Err: err}
		}
	}
	if len(in.Kickstart) > 0 {
		if err := checkText(in.Kickstart); err != nil {
			return nil, &Error{Where: "kickstart", Err: err}
		}
		if limit := DefaultLimits().MaxKickstart; len(in.Kickstart) > limit {
			return nil, &Error{Where: "kickstart", Err: errf(ErrTooLarge, "kickstart is %d bytes, %d over the %d-byte limit",
				len(in.Kickstart), len(in.Kickstart)-limit, limit)}
		}
	}

	var want [numKeys]string
	var lines []string
	want[keyBootParams] = bp
	want[keyMode] = string(mode)
	want[keyInstaller] = in.Installer
	want[keyVNC] = "no"
	lines = append(lines, keyNames[keyBootParams]+"="+bp)
	if mode != ModeBake {
		lines = append(lines, keyNames[keyMode]+"="+string(mode))
	}
	if in.Installer != "" {
		lines = append(lines, keyNames[keyInstaller]+"="+in.Installer)
	}
	if in.VNC {
		want[keyVNC] = "yes"
		lines = append(lines, keyNames[keyVNC]+"=yes")
	}

	if len(in.CloudConfig) > 0 {
		if err := checkCloudConfig(in.CloudConfig); err != nil {
			return nil, &Error{Where: "cloud-config", Err: err}
		}
		// Directives the cloud-config already carries must agree with ours, or
		// Parse would report a conflict (or a different value) later.
		p := parser{lim: DefaultLimits()}
		if err := p.text(in.CloudConfig, "cloud-config"); err != nil {
			return nil, err
		}
		for k := range numKeys {
			if p.have[k] && p.value[k] != want[k] {
				return nil, &Error{Where: p.firstAt[k] + ": " + keyNames[k],
					Err: errf(ErrConflict, "%s differs from the requested %s", quote(p.value[k]), quote(want[k]))}
			}
		}
	}
	return lines, nil
}

// checkText accepts UTF-8 text without control characters other than tab,
// line feed and carriage return.
func checkText(b []byte) error {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return errf(ErrBadValue, "invalid UTF-8 at byte %d", i)
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f:
			return errf(ErrBadValue, "control character U+%04X at byte %d", r, i)
		}
		i += size
	}
	return nil
}

// checkCloudConfig checks that b is text whose first line is "#cloud-config":
// other cloud-init formats (#cloud-config-archive, jinja templates, JSON
// patches, scripts) cannot take comment lines or need another Content-Type.
func checkCloudConfig(b []byte) error {
	if err := checkText(b); err != nil {
		return err
	}
	first := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		first = b[:i]
	}
	if string(bytes.TrimRight(first, " \t\r")) != "#cloud-config" {
		return errf(ErrBadValue, "first line is %s, not \"#cloud-config\"", quote(first))
	}
	return nil
}

// mimePart is one part of a rendered multipart.
type mimePart struct {
	contentType, filename string
	body                  []byte
}

// renderMIME writes a cloud-init style multipart/mixed message.
func renderMIME(lines []string, cloudConfig, kickstart []byte) []byte {
	var parts []mimePart
	if len(cloudConfig) > 0 {
		// Keep the "#cloud-config" line first, then the directives as comments.
		head, rest := cloudConfig, []byte(nil)
		if i := bytes.IndexByte(cloudConfig, '\n'); i >= 0 {
			head, rest = cloudConfig[:i+1], cloudConfig[i+1:]
		}
		var body bytes.Buffer
		body.Write(head)
		if !bytes.HasSuffix(head, []byte("\n")) {
			body.WriteByte('\n')
		}
		for _, l := range lines {
			body.WriteString("# " + l + "\n")
		}
		body.Write(rest)
		parts = append(parts, mimePart{"text/cloud-config", "cloud-config.txt", body.Bytes()})
	} else {
		parts = append(parts, mimePart{"text/plain", "kscloud.txt", []byte(strings.Join(lines, "\n") + "\n")})
	}
	if len(kickstart) > 0 {
		parts = append(parts, mimePart{"text/x-kickstart", "ks.cfg", kickstart})
	}

	encs := make([]string, len(parts))
	bodies := make([][]byte, len(parts))
	for i, p := range parts {
		encs[i], bodies[i] = transferEncode(p.body)
	}
	boundary := chooseBoundary(bodies)

	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\n")
	b.WriteString("MIME-Version: 1.0\n\n")
	for i, p := range parts {
		b.WriteString("--" + boundary + "\n")
		b.WriteString("Content-Type: " + p.contentType + "; charset=\"utf-8\"\n")
		b.WriteString("Content-Transfer-Encoding: " + encs[i] + "\n")
		b.WriteString("Content-Disposition: attachment; filename=\"" + p.filename + "\"\n\n")
		b.Write(bodies[i])
		b.WriteByte('\n') // belongs to the delimiter that follows
	}
	b.WriteString("--" + boundary + "--\n")
	return b.Bytes()
}

// transferEncode picks the lightest Content-Transfer-Encoding that carries body
// unchanged through Parse and cloud-init: 7bit for ASCII text, 8bit for UTF-8
// text, base64 when body has a carriage return that is not part of CRLF (the
// line break before a boundary would swallow a final one).
func transferEncode(body []byte) (string, []byte) {
	ascii := true
	for i, c := range body {
		if c == '\r' && (i+1 == len(body) || body[i+1] != '\n') {
			return "base64", base64Lines(body)
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if ascii {
		return "7bit", body
	}
	return "8bit", body
}

// base64Lines encodes b as base64 in lines of 76 characters (RFC 2045).
func base64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	out.WriteString(enc)
	return out.Bytes()
}

// chooseBoundary returns a boundary that occurs in none of the bodies.
func chooseBoundary(bodies [][]byte) string {
	for n := 0; ; n++ {
		b := "==kscloud-boundary=="
		if n > 0 {
			b = "==kscloud-boundary-" + strconv.Itoa(n) + "=="
		}
		clash := false
		for _, body := range bodies {
			if bytes.Contains(body, []byte(b)) {
				clash = true
				break
			}
		}
		if !clash {
			return b
		}
	}
}

// gzipBytes compresses b deterministically (no name, no modification time).
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	zw.Write(b)                                              // writes to a bytes.Buffer do not fail
	zw.Close()
	return buf.Bytes()
}

package userdata

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

type parseCase struct {
	name string
	in   string
	lim  Limits
	want *Request // checked when err is nil
	err  error    // sentinel the error must wrap
	msgs []string // substrings of the error message
}

// bp is the Request for a bootparams line alone.
func bp(s string) *Request {
	return &Request{BootParams: s, HasBootParams: true, Mode: ModeBake}
}

// with returns a copy of r changed by f.
func with(r *Request, f func(*Request)) *Request {
	c := *r
	f(&c)
	return &c
}

const kickstartText = "text\nurl --url=http://10.0.0.1/os\n# bootparams=not-a-directive-in-a-kickstart\nkscloud.bogus=also-not\npoweroff\n"

// parseCases is the table for TestParse; FuzzParse seeds its corpus with it.
func parseCases() []parseCase {
	long2047 := "ks=http://10.0.0.1/ks.cfg " + strings.Repeat("x", MaxCmdline-len("ks=http://10.0.0.1/ks.cfg "))
	manyParts := make([]part, 65)
	for i := range manyParts {
		manyParts[i] = part{"Content-Type: text/plain", "# part " + strconv.Itoa(i)}
	}
	deep := func(levels int) string {
		doc := multipart("b0", part{"Content-Type: text/plain", seed})
		for i := 1; i < levels; i++ {
			doc = multipart("b"+strconv.Itoa(i), nested(doc))
		}
		return doc
	}
	zeros := gzs(strings.Repeat("\x00", 700<<10))
	return []parseCase{
		// Plain text, the seed form.
		{name: "empty", in: "", want: &Request{Mode: ModeBake}},
		{name: "seed", in: seed, want: bp(seedParams)},
		{name: "seed without newline", in: strings.TrimSuffix(seed, "\n"), want: bp(seedParams)},
		{name: "seed CRLF", in: crlf(seed), want: bp(seedParams)},
		{name: "seed indented", in: "\t  " + seed, want: bp(seedParams)},
		{name: "trailing blanks trimmed", in: "bootparams=a b \t \r\n", want: bp("a b")},
		{name: "leading blank kept", in: "bootparams= a b\n", want: bp(" a b")},
		{name: "among other lines", in: "hello\nworld\n" + seed + "bye\n", want: bp(seedParams)},
		{name: "byte order mark", in: "\ufeff" + seed, want: bp(seedParams)},
		{name: "byte order mark in a part", in: multipart("b", part{"Content-Type: text/plain", "\ufeff" + seed}), want: bp(seedParams)},
		{name: "no directives", in: "#!/bin/sh\necho hello\n", want: &Request{Mode: ModeBake}},
		{name: "all directives CRLF", in: crlf("bootparams=a\nkscloud.mode=in-place\nkscloud.installer=fedora-40_x86.64\nkscloud.vnc=YES\n"),
			want: &Request{BootParams: "a", HasBootParams: true, Mode: ModeInPlace, ModeSet: true, Installer: "fedora-40_x86.64", VNC: true}},
		{name: "mode bake explicit", in: "kscloud.mode=bake\n", want: &Request{Mode: ModeBake, ModeSet: true}},
		{name: "vnc true", in: seed + "kscloud.vnc=True\n", want: with(bp(seedParams), func(r *Request) { r.VNC = true })},
		{name: "vnc 1", in: seed + "kscloud.vnc=1\n", want: with(bp(seedParams), func(r *Request) { r.VNC = true })},
		{name: "vnc no", in: seed + "kscloud.vnc=no\n", want: bp(seedParams)},
		{name: "vnc FALSE and 0 agree", in: seed + "kscloud.vnc=FALSE\nkscloud.vnc=0\n", want: bp(seedParams)},
		{name: "vnc yes and true agree", in: "kscloud.vnc=yes\n# kscloud.vnc=true\n", want: &Request{Mode: ModeBake, VNC: true}},
		{name: "same value twice", in: seed + "# " + seed, want: bp(seedParams)},
		{name: "installer 64 chars", in: "kscloud.installer=" + strings.Repeat("a", 64), want: &Request{Mode: ModeBake, Installer: strings.Repeat("a", 64)}},
		{name: "key not at line start", in: "echo bootparams=x\nxbootparams=y\n", want: &Request{Mode: ModeBake}},
		{name: "yaml key is not a directive", in: "#cloud-config\nbootparams: x\nkscloud.mode: in-place\n", want: &Request{Mode: ModeBake}},
		{name: "kscloud word without =", in: "# see kscloud.example.com for docs\nkscloud.mode is bake\n", want: &Request{Mode: ModeBake}},
		{name: "space before = is not a directive", in: "bootparams =x\nkscloud.mode =in-place\n", want: &Request{Mode: ModeBake}},

		// Comment forms in scripts and cloud-config.
		{name: "shell script comment", in: "#!/bin/sh\n# " + seed + "#kscloud.mode=in-place\necho hi\n",
			want: with(bp(seedParams), func(r *Request) { r.Mode, r.ModeSet = ModeInPlace, true })},
		{name: "many hashes and spaces", in: " ## # #\tbootparams=a b\n", want: bp("a b")},
		{name: "cloud-config comment", in: "#cloud-config\n# " + seed + "# kscloud.installer=debian12\npackages: [vim]\n",
			want: with(bp(seedParams), func(r *Request) { r.Installer = "debian12" })},
		{name: "cloud-config CRLF", in: crlf("#cloud-config\n#bootparams=a\nruncmd: [ls]\n"), want: bp("a")},

		// Security-relevant values are carried verbatim: XML escaping is the
		// domain rewriter's job, and etree does it.
		{name: "xml injection verbatim", in: "bootparams=ks=x </cmdline><disk type='file'><source file='/etc/shadow'/></disk><cmdline>\n",
			want: bp("ks=x </cmdline><disk type='file'><source file='/etc/shadow'/></disk><cmdline>")},
		{name: "xsl and entities verbatim", in: "bootparams=<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]> &e; &amp; &lt; ]]> <xsl:value-of select=\"/\"/>\n",
			want: bp("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]> &e; &amp; &lt; ]]> <xsl:value-of select=\"/\"/>")},
		{name: "shell metacharacters verbatim", in: "bootparams=a!b&c \"d\" 'e' $(id) `id` |;\\ @@BOOTPARAMS@@ s!x!y!\n",
			want: bp("a!b&c \"d\" 'e' $(id) `id` |;\\ @@BOOTPARAMS@@ s!x!y!")},
		{name: "utf-8 verbatim", in: "bootparams=lang=fr_FR.UTF-8 hostname=café\n", want: bp("lang=fr_FR.UTF-8 hostname=café")},
		{name: "2047 bytes accepted", in: "bootparams=" + long2047 + "\n", want: bp(long2047)},

		// Gzip.
		{name: "gzip plain", in: gzs(seed), want: bp(seedParams)},
		{name: "gzip script", in: gzs("#!/bin/bash\n# " + seed), want: bp(seedParams)},
		{name: "gzip empty", in: gzs(""), want: &Request{Mode: ModeBake}},
		{name: "gzip two members", in: gzs("kscloud.vnc=yes\n") + gzs(seed), want: with(bp(seedParams), func(r *Request) { r.VNC = true })},

		// MIME.
		{name: "mime cloud-config and script", in: multipart("==B==",
			part{"Content-Type: text/cloud-config; charset=\"us-ascii\"", "#cloud-config\n# " + seed + "packages: [vim]"},
			part{"Content-Type: text/x-shellscript", "#!/bin/sh\n#kscloud.mode=in-place\necho done"}),
			want: with(bp(seedParams), func(r *Request) { r.Mode, r.ModeSet = ModeInPlace, true })},
		{name: "mime CRLF", in: crlf(multipart("xyz", part{"Content-Type: text/plain", seed}, part{"Content-Type: text/x-kickstart", kickstartText})),
			want: with(bp(seedParams), func(r *Request) { r.Kickstart = []byte(crlf(kickstartText)) })},
		{name: "mime kickstart part", in: multipart("b",
			part{"Content-Type: text/x-shellscript", "#!/bin/sh\n# " + seed},
			part{"Content-Type: text/x-kickstart; charset=utf-8\nContent-Disposition: attachment; filename=\"ks.cfg\"", kickstartText}),
			want: with(bp(seedParams), func(r *Request) { r.Kickstart = []byte(kickstartText) })},
		{name: "mime kickstart base64 gzip", in: multipart("b",
			part{"Content-Type: text/plain", seed},
			part{"Content-Type: text/x-kickstart\nContent-Transfer-Encoding: base64", b64(gzs(kickstartText))}),
			want: with(bp(seedParams), func(r *Request) { r.Kickstart = []byte(kickstartText) })},
		{name: "mime base64 part", in: multipart("b", part{"Content-Type: text/cloud-config\nContent-Transfer-Encoding: BASE64", b64("#cloud-config\n# " + seed)}),
			want: bp(seedParams)},
		{name: "mime quoted-printable part", in: multipart("b", part{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: quoted-printable", "#!/bin/sh\n# bootparams=3Da=3Db lang=3Dfr hostname=3Dcaf=C3=A9 ks=3Dhttp://10.0.0.1/k=\ns.cfg"}),
			want: bp("a=b lang=fr hostname=café ks=http://10.0.0.1/ks.cfg")},
		{name: "mime x-gzip part", in: multipart("b", part{"Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64", b64(gzs("#!/bin/sh\n# " + seed))}),
			want: bp(seedParams)},
		{name: "mime gzip part binary", in: multipart("b", part{"Content-Type: application/gzip\nContent-Transfer-Encoding: binary", gzs("#cloud-config\n#" + seed)}),
			want: bp(seedParams)},
		{name: "mime text part with gzip magic", in: multipart("b", part{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64", b64(gzs("# " + seed))}),
			want: bp(seedParams)},
		{name: "mime gzip part holding a multipart", in: multipart("outer", part{"Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64",
			b64(gzs(multipart("inner", part{"Content-Type: text/plain", seed})))}), want: bp(seedParams)},
		{name: "gzip of mime with gzip part", in: gzs(multipart("b", part{"Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64", b64(gzs(seed))})),
			want: bp(seedParams)},
		{name: "mime nested depth 4", in: deep(4), want: bp(seedParams)},
		{name: "mime 64 parts", in: multipart("b", manyParts[:64]...), want: &Request{Mode: ModeBake}},
		{name: "mime no content-type is text/plain", in: multipart("b", part{"Content-Disposition: inline", seed}), want: bp(seedParams)},
		{name: "mime part without header", in: "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n" + seed + "--b--\n", want: bp(seedParams)},
		{name: "mime folded content-type", in: "Content-Type: multipart/mixed;\n boundary=\"b\"\nMIME-Version: 1.0\n\n--b\nContent-Type:\n\ttext/plain\n\n" + seed + "--b--\n", want: bp(seedParams)},
		{name: "mime preamble and epilogue ignored", in: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\nbootparams=preamble\n--b\nContent-Type: text/plain\n\n" + seed + "--b--\nbootparams=epilogue\n",
			want: bp(seedParams)},
		{name: "mime boundary prefix is not a delimiter", in: multipart("b", part{"Content-Type: text/plain", "--bb\n--b-x\n" + seed}), want: bp(seedParams)},
		{name: "mime delimiter with transport padding", in: "Content-Type: multipart/mixed; boundary=b\n\n--b  \nContent-Type: text/plain\n\n" + seed + "--b-- \t\n", want: bp(seedParams)},
		{name: "mime non-text part ignored", in: multipart("b", part{"Content-Type: application/octet-stream", "bootparams=ignored"}, part{"Content-Type: text/plain", seed}),
			want: bp(seedParams)},
		{name: "mime empty multipart", in: "Content-Type: multipart/mixed; boundary=b\n\n--b--\n", want: &Request{Mode: ModeBake}},
		{name: "mime single entity", in: "Content-Type: text/x-shellscript\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n" + b64("#!/bin/sh\n# "+seed),
			want: bp(seedParams)},
		{name: "not mime: header-like first line without MIME fields", in: "Subject: install\n\n" + seed, want: bp(seedParams)},
		{name: "not mime: malformed header block", in: "Note: hello\nbootparams=a\n", want: bp("a")},
		{name: "same value across parts", in: multipart("b", part{"Content-Type: text/plain", seed}, part{"Content-Type: text/x-shellscript", "# " + seed}), want: bp(seedParams)},

		// Errors: values.
		{name: "tab rejected", in: "bootparams=a\tb\n", err: ErrCmdline, msgs: []string{"line 1: bootparams", "U+0009"}},
		{name: "NUL rejected", in: "bootparams=a\x00b\n", err: ErrCmdline, msgs: []string{"U+0000"}},
		{name: "C0 rejected", in: "bootparams=a\x1b[31mb\n", err: ErrCmdline, msgs: []string{"U+001B"}},
		{name: "DEL rejected", in: "bootparams=a\x7fb\n", err: ErrCmdline, msgs: []string{"U+007F"}},
		{name: "C1 rejected", in: "bootparams=a\u0085b\n", err: ErrCmdline, msgs: []string{"U+0085"}},
		{name: "bare CR rejected", in: "bootparams=a\rb\n", err: ErrCmdline, msgs: []string{"U+000D"}},
		{name: "invalid UTF-8 rejected", in: "bootparams=a\xffb\n", err: ErrCmdline, msgs: []string{"invalid UTF-8 at byte 1"}},
		{name: "2048 bytes rejected", in: "bootparams=" + long2047 + "y\n", err: ErrCmdline, msgs: []string{"2048 bytes, 1 over the 2047-byte limit"}},
		{name: "empty bootparams", in: "bootparams=\n", err: ErrCmdline, msgs: []string{"empty"}},
		{name: "blank bootparams", in: "bootparams=   \n", err: ErrCmdline, msgs: []string{"empty"}},
		{name: "control char in a part", in: multipart("b", part{"Content-Type: text/plain", "x\nbootparams=a\x01"}), err: ErrCmdline,
			msgs: []string{"MIME part 1: line 2: bootparams"}},
		{name: "unknown directive", in: seed + "kscloud.colour=blue\n", err: ErrUnknownDirective, msgs: []string{"line 2", `"kscloud.colour"`}},
		{name: "unknown directive empty key", in: "# kscloud.=x\n", err: ErrUnknownDirective, msgs: []string{`"kscloud."`}},
		{name: "unknown directive case", in: "kscloud.Mode=bake\n", err: ErrUnknownDirective, msgs: []string{`"kscloud.Mode"`}},
		{name: "bad mode", in: "kscloud.mode=fry\n", err: ErrBadValue, msgs: []string{"line 1: kscloud.mode", `"fry"`}},
		{name: "bad mode with escape", in: "kscloud.mode=\x1b]0;pwned\x07\n", err: ErrBadValue, msgs: []string{`"\x1b]0;pwned\a"`}},
		{name: "bad vnc", in: "kscloud.vnc=maybe\n", err: ErrBadValue, msgs: []string{"kscloud.vnc", `"maybe"`}},
		{name: "installer path", in: "kscloud.installer=../../etc/passwd\n", err: ErrBadValue, msgs: []string{"kscloud.installer"}},
		{name: "installer leading dash", in: "kscloud.installer=-rf\n", err: ErrBadValue},
		{name: "installer empty", in: "kscloud.installer=\n", err: ErrBadValue},
		{name: "installer 65 chars", in: "kscloud.installer=" + strings.Repeat("a", 65), err: ErrBadValue, msgs: []string{`"...`}},
		{name: "conflicting bootparams", in: seed + "# bootparams=ks=http://evil/ks.cfg\n", err: ErrConflict,
			msgs: []string{"line 2: bootparams", `"ks=http://evil/ks.cfg" differs from`, "given at line 1"}},
		{name: "conflicting mode across parts", in: multipart("b", part{"Content-Type: text/plain", "kscloud.mode=bake"}, part{"Content-Type: text/x-shellscript", "#kscloud.mode=in-place"}),
			err: ErrConflict, msgs: []string{"MIME part 2: line 1: kscloud.mode", "given at MIME part 1: line 1"}},
		{name: "conflicting vnc", in: "kscloud.vnc=yes\nkscloud.vnc=0\n", err: ErrConflict, msgs: []string{"kscloud.vnc"}},
		{name: "conflicting installer", in: "kscloud.installer=a\nkscloud.installer=b\n", err: ErrConflict, msgs: []string{"kscloud.installer"}},
		{name: "two kickstarts", in: multipart("b", part{"Content-Type: text/x-kickstart", "text"}, part{"Content-Type: text/x-kickstart", "text"}),
			err: ErrConflict, msgs: []string{"MIME part 2", "second text/x-kickstart", "MIME part 1"}},
		{name: "empty kickstart", in: multipart("b", part{"Content-Type: text/x-kickstart", ""}), err: ErrBadValue, msgs: []string{"empty"}},
		{name: "kickstart too large", in: multipart("b", part{"Content-Type: text/x-kickstart", kickstartText}), lim: Limits{MaxKickstart: 10},
			err: ErrTooLarge, msgs: []string{"over the 10-byte limit"}},

		// Errors: encodings and structure.
		{name: "input too large", in: seed, lim: Limits{MaxInput: 10}, err: ErrTooLarge, msgs: []string{"input is 59 bytes, 49 over the 10-byte limit"}},
		{name: "corrupt gzip", in: gzs(seed)[:10] + "garbage-garbage-garbage", err: ErrGzip, msgs: []string{"user-data: gzip: "}},
		{name: "truncated gzip", in: gzs(seed)[:20], err: ErrGzip, msgs: []string{"truncated"}},
		{name: "gzip checksum", in: func() string { b := []byte(gzs(seed)); b[len(b)-5] ^= 1; return string(b) }(), err: ErrGzip, msgs: []string{"checksum"}},
		{name: "gzip trailing garbage", in: gzs(seed) + "junk", err: ErrGzip, msgs: []string{"trailing data after the compressed data (4 bytes)"}},
		{name: "gzip trailing garbage after two members", in: gzs(seed) + gzs("") + "\x00", err: ErrGzip, msgs: []string{"(1 bytes)"}},
		{name: "gzip in gzip", in: gzs(gzs(seed)), err: ErrNesting, msgs: []string{"compressed data inside compressed data"}},
		{name: "gzip in gzip in a part", in: multipart("b", part{"Content-Type: text/plain\nContent-Transfer-Encoding: base64", b64(gzs(gzs(seed)))}),
			err: ErrNesting, msgs: []string{"MIME part 1: gzip"}},
		{name: "x-gzip part not gzip", in: multipart("b", part{"Content-Type: application/x-gzip", seed}), err: ErrGzip, msgs: []string{"MIME part 1: gzip"}},
		{name: "expanded over budget across parts", in: multipart("b",
			part{"Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64", b64(zeros)},
			part{"Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64", b64(zeros)}),
			err: ErrTooLarge, msgs: []string{"MIME part 2: gzip: expanded size exceeds 1048576 bytes"}},
		{name: "expanded over a small budget", in: gzs(seed), lim: Limits{MaxExpanded: 58}, err: ErrTooLarge, msgs: []string{"user-data: gzip: expanded size exceeds 58 bytes"}},
		{name: "expanded exactly at budget", in: gzs(seed), lim: Limits{MaxExpanded: 59}, want: bp(seedParams)},
		{name: "mime nested depth 5", in: deep(5), err: ErrNesting, msgs: []string{"MIME part 1.1.1.1: multipart nesting exceeds the depth limit of 4"}},
		{name: "mime nested over MaxDepth 1", in: deep(2), lim: Limits{MaxDepth: 1}, err: ErrNesting, msgs: []string{"MIME part 1:"}},
		{name: "mime 65 parts", in: multipart("b", manyParts...), err: ErrTooManyParts, msgs: []string{"more than 64 MIME parts"}},
		{name: "mime parts counted across levels", in: multipart("o", nested(multipart("i", manyParts[:2]...)), nested(multipart("j", manyParts[:2]...))),
			lim: Limits{MaxParts: 5}, err: ErrTooManyParts, msgs: []string{"more than 5"}},
		{name: "mime no closing boundary", in: strings.TrimSuffix(multipart("b", part{"Content-Type: text/plain", seed}), "--b--\n"),
			err: ErrMIME, msgs: []string{"user-data: MIME: part 1 has no closing boundary"}},
		{name: "mime truncated", in: multipart("b", part{"Content-Type: text/plain", seed})[:90], err: ErrMIME},
		{name: "mime no boundary parameter", in: "Content-Type: multipart/mixed\n\n--b\n\n--b--\n", err: ErrMIME, msgs: []string{"without a boundary"}},
		{name: "mime boundary not found", in: "Content-Type: multipart/mixed; boundary=zz\n\n--b\n\n--b--\n", err: ErrMIME, msgs: []string{`boundary "zz" not found`}},
		{name: "mime bad content-type", in: "Content-Type: multipart/mixed; boundary=\"unterminated\n\n", err: ErrMIME, msgs: []string{"Content-Type"}},
		{name: "mime malformed part header", in: multipart("b", part{"Content-Type: text/plain\nbootparams=x", "body"}), err: ErrMIME,
			msgs: []string{"MIME part 1: header", "not a header field"}},
		{name: "mime malformed top header", in: "Content-Type: text/plain\n\x01junk\n\n", err: ErrMIME, msgs: []string{`"\x01junk"`}},
		{name: "mime continuation first", in: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n continued\n\nx\n--b--\n", err: ErrMIME,
			msgs: []string{"continuation"}},
		{name: "mime repeated content-type", in: multipart("b", part{"Content-Type: text/plain\nContent-Type: text/x-kickstart", "x"}), err: ErrMIME, msgs: []string{"repeated Content-Type"}},
		{name: "mime unknown encoding", in: multipart("b", part{"Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode", "x"}), err: ErrMIME,
			msgs: []string{`MIME part 1: Content-Transfer-Encoding: unsupported Content-Transfer-Encoding "x-uuencode"`}},
		{name: "mime invalid base64 part", in: multipart("b", part{"Content-Type: text/plain\nContent-Transfer-Encoding: base64", "Ym9vdHBh*cmFtcz1h"}), err: ErrBase64,
			msgs: []string{"MIME part 1: base64: illegal character \"*\" at offset 8"}},
		{name: "mime invalid quoted-printable", in: multipart("b", part{"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable", "a=\x01b"}), err: ErrMIME,
			msgs: []string{"MIME part 1: quoted-printable: invalid data"}},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in), tc.lim)
			checkErr(t, err, tc.err, tc.msgs...)
			if tc.err != nil {
				if got != nil {
					t.Errorf("got %+v with the error, want nil", got)
				}
				return
			}
			checkRequest(t, got, tc.want)
		})
	}
}

// checkRequest compares requests field by field, and checks the invariants every
// successful Parse result must satisfy.
func checkRequest(t *testing.T, got, want *Request) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v (kickstart %q)\nwant %+v (kickstart %q)", got, got.Kickstart, want, want.Kickstart)
	}
	checkInvariants(t, got)
}

// checkInvariants asserts what every successful Parse result must satisfy.
func checkInvariants(t testing.TB, r *Request) {
	t.Helper()
	if r == nil {
		t.Fatal("nil Request without an error")
	}
	if r.HasBootParams {
		if err := ValidateCmdline(r.BootParams); err != nil {
			t.Errorf("BootParams %q fails ValidateCmdline: %v", r.BootParams, err)
		}
	} else if r.BootParams != "" {
		t.Errorf("BootParams %q without HasBootParams", r.BootParams)
	}
	if r.Mode != ModeBake && r.Mode != ModeInPlace {
		t.Errorf("Mode %q", r.Mode)
	}
	if !r.ModeSet && r.Mode != ModeBake {
		t.Errorf("Mode %q without ModeSet", r.Mode)
	}
	if r.Installer != "" {
		if err := checkInstaller(r.Installer); err != nil {
			t.Errorf("Installer %q: %v", r.Installer, err)
		}
	}
	if r.Kickstart != nil && (len(r.Kickstart) == 0 || len(r.Kickstart) > DefaultLimits().MaxKickstart) {
		t.Errorf("Kickstart of %d bytes", len(r.Kickstart))
	}
}

// TestParseMakeMime reads user-data written by Python's email package the way
// cloud-init's make-mime and write-mime-multipart --gzip write it (see
// testdata/gen-make-mime.py): base64 utf-8 parts, an application/x-gzip part,
// and a gzip'd whole.
func TestParseMakeMime(t *testing.T) {
	ks := "#version=RHEL8\ntext\nurl --url=http://10.0.0.1/os\nbootparams=this-is-kickstart-text-not-a-directive\nrootpw --lock\n%packages\n@core\n%end\npoweroff\n"
	full := &Request{BootParams: seedParams, HasBootParams: true, Mode: ModeInPlace, ModeSet: true, VNC: true}
	for _, tc := range []struct {
		file string
		want *Request
	}{
		{"make-mime.txt", full},
		{"make-mime-kickstart.txt", with(full, func(r *Request) { r.Kickstart = []byte(ks) })},
		{"make-mime-gzip.bin", full},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(data, DefaultLimits())
			checkErr(t, err, nil)
			checkRequest(t, got, tc.want)
		})
	}
}

// TestParseEucalyptusUserData follows the hook path: the base64 <userData> of
// the Eucalyptus sample instance.xml, decoded, then parsed.
func TestParseEucalyptusUserData(t *testing.T) {
	const userData = "Ym9vdHBhcmFtcz1rcz1odHRwOi8vMTAuMC4wLjEva3MuY2ZnIGtzZGV2aWNlPWxpbmsgaXA9ZGhjcAo="
	raw, err := DecodeBase64(userData)
	checkErr(t, err, nil)
	got, err := Parse(raw, DefaultLimits())
	checkErr(t, err, nil)
	checkRequest(t, got, bp(seedParams))
}

// TestParseKickstartIsCopied checks that the Request does not alias the input.
func TestParseKickstartIsCopied(t *testing.T) {
	in := []byte(multipart("b", part{"Content-Type: text/x-kickstart", "text"}))
	got, err := Parse(in, DefaultLimits())
	checkErr(t, err, nil)
	for i := range in {
		in[i] = 'X'
	}
	if string(got.Kickstart) != "text" {
		t.Errorf("Kickstart changed with the input: %q", got.Kickstart)
	}
}

// TestErrorsIs checks the error type's contract: errors.Is reaches the sentinel,
// errors.As finds *Error, and the message format is "user-data: where: what".
func TestErrorsIs(t *testing.T) {
	_, err := Parse([]byte("kscloud.mode=x\n"), DefaultLimits())
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not *Error", err)
	}
	if e.Where != "line 1: kscloud.mode" {
		t.Errorf("Where = %q", e.Where)
	}
	if !errors.Is(err, ErrBadValue) || errors.Is(err, ErrConflict) {
		t.Errorf("errors.Is wrong for %v", err)
	}
	if want := `user-data: line 1: kscloud.mode: "x" is not "bake" or "in-place"`; err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err.Error(), want)
	}
	if got := (&Error{Err: ErrMIME}).Error(); got != "user-data: malformed MIME" {
		t.Errorf("Where-less message %q", got)
	}
	if got := (&Error{Where: "x"}).Error(); got != "user-data: x: <nil>" {
		t.Errorf("nil Err message %q", got)
	}
}

// TestQuote checks that values in messages are escaped and truncated.
func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc", `"abc"`},
		{"a\x00\n\x1b", `"a\x00\n\x1b"`},
		{strings.Repeat("a", 60), `"` + strings.Repeat("a", 60) + `"`},
		{strings.Repeat("a", 61), `"` + strings.Repeat("a", 60) + `"...`},
		{strings.Repeat("a", 59) + "éé", `"` + strings.Repeat("a", 59) + `"...`},
		{strings.Repeat("a", 10000), `"` + strings.Repeat("a", 60) + `"...`},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%.20q...) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestLimitsDefaults checks that zero and negative limits mean the defaults.
func TestLimitsDefaults(t *testing.T) {
	if got := (Limits{MaxParts: -1}).withDefaults(); got != DefaultLimits() {
		t.Errorf("withDefaults = %+v", got)
	}
	custom := Limits{MaxInput: 1, MaxExpanded: 2, MaxParts: 3, MaxDepth: 4, MaxKickstart: 5}
	if got := custom.withDefaults(); got != custom {
		t.Errorf("withDefaults changed explicit limits: %+v", got)
	}
	d := DefaultLimits()
	if d.MaxInput != 65536 || d.MaxExpanded != 1<<20 || d.MaxParts != 64 || d.MaxDepth != 4 || d.MaxKickstart != 256<<10 {
		t.Errorf("DefaultLimits = %+v", d)
	}
}

// TestParseNoDirectivesInKickstart checks that a kickstart is never scanned for
// directives, even when it holds an unknown kscloud. key that would be an error.
func TestParseNoDirectivesInKickstart(t *testing.T) {
	in := multipart("b", part{"Content-Type: text/x-kickstart", "kscloud.unknown=1\nbootparams=\x01\n"})
	got, err := Parse([]byte(in), DefaultLimits())
	checkErr(t, err, nil)
	if got.HasBootParams || !bytes.Contains(got.Kickstart, []byte("kscloud.unknown")) {
		t.Errorf("got %+v", got)
	}
}

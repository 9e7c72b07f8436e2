package userdata

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	stdmultipart "mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/render")

const cloudConfig = "#cloud-config\npackages:\n  - vim\nruncmd:\n  - [sh, -c, 'echo bootparams= is only text here']\n"

type renderCase struct {
	name string
	in   RenderInput
	want *Request // what Parse must read back
	gzip bool     // whether the output must be gzip-compressed
	mime bool     // whether the (uncompressed) output must be MIME
}

func renderCases() []renderCase {
	bigKickstart := func() []byte {
		var b strings.Builder
		b.WriteString("text\nurl --url=http://10.0.0.1/os\n%packages\n")
		for i := 0; b.Len() < 12000; i++ {
			b.WriteString("package-number-" + strconv.Itoa(i) + "\n")
		}
		b.WriteString("%end\npoweroff\n")
		return []byte(b.String())
	}()
	return []renderCase{
		{name: "seed", in: RenderInput{BootParams: seedParams}, want: bp(seedParams)},
		{name: "trailing blanks dropped", in: RenderInput{BootParams: seedParams + " \t\r"}, want: bp(seedParams)},
		{name: "leading blank kept", in: RenderInput{BootParams: " a"}, want: bp(" a")},
		{name: "all directives plain", in: RenderInput{BootParams: "a b", Mode: ModeInPlace, Installer: "fedora40", VNC: true},
			want: &Request{BootParams: "a b", HasBootParams: true, Mode: ModeInPlace, ModeSet: true, Installer: "fedora40", VNC: true}},
		{name: "bake is the default", in: RenderInput{BootParams: "a", Mode: ModeBake}, want: bp("a")},
		{name: "xml injection", in: RenderInput{BootParams: "ks=x </cmdline><disk type='file'><source file='/etc/shadow'/></disk> &amp; <!ENTITY e> \"!\""},
			want: bp("ks=x </cmdline><disk type='file'><source file='/etc/shadow'/></disk> &amp; <!ENTITY e> \"!\"")},
		{name: "kickstart", in: RenderInput{BootParams: seedParams, Kickstart: []byte(kickstartText)}, mime: true,
			want: with(bp(seedParams), func(r *Request) { r.Kickstart = []byte(kickstartText) })},
		{name: "cloud-config", in: RenderInput{BootParams: seedParams, Mode: ModeInPlace, CloudConfig: []byte(cloudConfig)}, mime: true,
			want: with(bp(seedParams), func(r *Request) { r.Mode, r.ModeSet = ModeInPlace, true })},
		{name: "cloud-config and kickstart", in: RenderInput{BootParams: seedParams, VNC: true, Installer: "el9", Kickstart: []byte(kickstartText), CloudConfig: []byte(cloudConfig)},
			mime: true, want: with(bp(seedParams), func(r *Request) { r.VNC, r.Installer, r.Kickstart = true, "el9", []byte(kickstartText) })},
		{name: "cloud-config header only", in: RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config")}, mime: true, want: bp("a")},
		{name: "cloud-config CRLF", in: RenderInput{BootParams: "a", CloudConfig: []byte(crlf(cloudConfig))}, mime: true, want: bp("a")},
		{name: "cloud-config carrying the same directives", in: RenderInput{BootParams: "a", VNC: true,
			CloudConfig: []byte("#cloud-config\n# bootparams=a\n#kscloud.vnc=true\n#kscloud.mode=bake\n")}, mime: true,
			want: with(bp("a"), func(r *Request) { r.VNC, r.ModeSet = true, true })},
		{name: "kickstart CRLF", in: RenderInput{BootParams: "a", Kickstart: []byte(crlf(kickstartText))}, mime: true,
			want: with(bp("a"), func(r *Request) { r.Kickstart = []byte(crlf(kickstartText)) })},
		{name: "kickstart ending in CR", in: RenderInput{BootParams: "a", Kickstart: []byte("text\r")}, mime: true,
			want: with(bp("a"), func(r *Request) { r.Kickstart = []byte("text\r") })},
		{name: "kickstart without final newline", in: RenderInput{BootParams: "a", Kickstart: []byte("text\n\n\npoweroff")}, mime: true,
			want: with(bp("a"), func(r *Request) { r.Kickstart = []byte("text\n\n\npoweroff") })},
		{name: "kickstart UTF-8", in: RenderInput{BootParams: "a", Kickstart: []byte("text\nlang fr_FR.UTF-8 # café\n")}, mime: true,
			want: with(bp("a"), func(r *Request) { r.Kickstart = []byte("text\nlang fr_FR.UTF-8 # café\n") })},
		{name: "kickstart holding the boundary", in: RenderInput{BootParams: "a", Kickstart: []byte("--==kscloud-boundary==\n--==kscloud-boundary==--\n")}, mime: true,
			want: with(bp("a"), func(r *Request) { r.Kickstart = []byte("--==kscloud-boundary==\n--==kscloud-boundary==--\n") })},
		{name: "big kickstart auto-compressed", in: RenderInput{BootParams: "a", Kickstart: bigKickstart}, mime: true, gzip: true,
			want: with(bp("a"), func(r *Request) { r.Kickstart = bigKickstart })},
		{name: "compress always", in: RenderInput{BootParams: "a", Compress: "always"}, gzip: true, want: bp("a")},
		{name: "compress never", in: RenderInput{BootParams: "a", Kickstart: bigKickstart, Compress: "never"}, mime: true,
			want: with(bp("a"), func(r *Request) { r.Kickstart = bigKickstart })},
		{name: "auto leaves small output alone", in: RenderInput{BootParams: strings.Repeat("a", 2000), Compress: "auto"}, want: bp(strings.Repeat("a", 2000))},
	}
}

// TestRenderRoundTrip renders each case, parses the result back, and checks the
// structure with the standard library's independent MIME reader.
func TestRenderRoundTrip(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.in)
			checkErr(t, err, nil)
			if len(out) > MaxUserData {
				t.Errorf("output is %d bytes", len(out))
			}
			got, err := Parse(out, DefaultLimits())
			checkErr(t, err, nil)
			checkRequest(t, got, tc.want)

			if isGzip(out) != tc.gzip {
				t.Fatalf("gzip = %v, want %v", isGzip(out), tc.gzip)
			}
			plain := out
			if tc.gzip {
				if plain, err = gunzipBounded(out, 1<<20); err != nil {
					t.Fatal(err)
				}
			}
			if isMIME := bytes.HasPrefix(plain, []byte("Content-Type: multipart/mixed")); isMIME != tc.mime {
				t.Fatalf("MIME = %v, want %v:\n%s", isMIME, tc.mime, plain)
			}
			if !tc.mime {
				if !bytes.HasPrefix(plain, []byte("bootparams=")) {
					t.Errorf("plain output does not start with the bootparams line:\n%s", plain)
				}
				return
			}
			parts := stdlibParts(t, plain)
			checkRenderedParts(t, tc.in, parts)
		})
	}
}

// stdlibPart is a MIME part as the standard library reads it.
type stdlibPart struct {
	mediaType string
	body      []byte
}

// stdlibParts reads a rendered multipart with mime/multipart, an implementation
// independent of Parse, decoding base64 bodies.
func stdlibParts(t *testing.T, doc []byte) []stdlibPart {
	t.Helper()
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(doc)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("reading the top-level header: %v", err)
	}
	if h.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version = %q", h.Get("MIME-Version"))
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	mr := stdmultipart.NewReader(tp.R, params["boundary"])
	var parts []stdlibPart
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(parts)+1, err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			if body, err = DecodeBase64(string(body)); err != nil {
				t.Fatal(err)
			}
		}
		pmt, pparams, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil || pparams["charset"] != "utf-8" {
			t.Errorf("part Content-Type %q: %v", p.Header.Get("Content-Type"), err)
		}
		parts = append(parts, stdlibPart{pmt, body})
	}
	return parts
}

// checkRenderedParts checks the parts Render wrote for in: the directives first
// (in the cloud-config after its first line, or in a text/plain part), then the
// kickstart unchanged.
func checkRenderedParts(t *testing.T, in RenderInput, parts []stdlibPart) {
	t.Helper()
	lines, err := renderDirectives(in)
	if err != nil {
		t.Fatal(err)
	}
	var want []stdlibPart
	if len(in.CloudConfig) > 0 {
		head, rest, found := strings.Cut(string(in.CloudConfig), "\n")
		var b strings.Builder
		b.WriteString(head + "\n")
		for _, l := range lines {
			b.WriteString("# " + l + "\n")
		}
		if found {
			b.WriteString(rest)
		}
		want = append(want, stdlibPart{"text/cloud-config", []byte(b.String())})
	} else {
		want = append(want, stdlibPart{"text/plain", []byte(strings.Join(lines, "\n") + "\n")})
	}
	if len(in.Kickstart) > 0 {
		want = append(want, stdlibPart{"text/x-kickstart", in.Kickstart})
	}
	if len(parts) != len(want) {
		t.Fatalf("%d parts, want %d", len(parts), len(want))
	}
	for i := range want {
		if parts[i].mediaType != want[i].mediaType || !bytes.Equal(parts[i].body, want[i].body) {
			t.Errorf("part %d: %s %q\nwant %s %q", i+1, parts[i].mediaType, parts[i].body, want[i].mediaType, want[i].body)
		}
	}
}

// TestRenderGolden compares rendered user-data with testdata/render/*.golden;
// run with -update to rewrite them after an intended change.
func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		in   RenderInput
	}{
		{"seed.golden", RenderInput{BootParams: seedParams}},
		{"directives.golden", RenderInput{BootParams: seedParams + " inst.text", Mode: ModeInPlace, Installer: "fedora40", VNC: true}},
		{"kickstart.golden", RenderInput{BootParams: "inst.ks=file:/ks.cfg console=ttyS1", Kickstart: []byte(kickstartText)}},
		{"cloud-config-kickstart.golden", RenderInput{BootParams: "inst.ks=file:/ks.cfg", Mode: ModeInPlace, Kickstart: []byte("text\r\nlang fr_FR # café\rpoweroff\n"), CloudConfig: []byte(cloudConfig)}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := Render(tc.in)
			checkErr(t, err, nil)
			path := filepath.Join("testdata", "render", tc.file)
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from %s:\n%s\nwant:\n%s", path, out, want)
			}
			// Rendering is deterministic.
			again, _ := Render(tc.in)
			if !bytes.Equal(out, again) {
				t.Error("two renders of the same input differ")
			}
		})
	}
}

var overLimit = regexp.MustCompile(`user-data is (\d+) bytes, (\d+) over the 16384-byte limit`)

func TestRenderErrors(t *testing.T) {
	// Text that gzip cannot shrink much: random base64.
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 30000)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	incompressible := []byte(b64(string(noise)))
	compressible := []byte(strings.Repeat("part --name=/var --size=1000\n", 700)) // 20300 bytes
	for _, tc := range []struct {
		name string
		in   RenderInput
		err  error
		msgs []string
	}{
		{"no bootparams", RenderInput{}, ErrCmdline, []string{"user-data: render: bootparams: kernel command line is empty"}},
		{"tab", RenderInput{BootParams: "a\tb"}, ErrCmdline, []string{"render: bootparams: control character U+0009"}},
		{"newline injects a directive", RenderInput{BootParams: "a\nkscloud.mode=in-place"}, ErrCmdline, []string{"U+000A"}},
		{"2048 bytes", RenderInput{BootParams: strings.Repeat("a", 2048)}, ErrCmdline, []string{"1 over the 2047-byte limit"}},
		{"bad mode", RenderInput{BootParams: "a", Mode: "fry"}, ErrBadValue, []string{"render: kscloud.mode: \"fry\""}},
		{"bad installer", RenderInput{BootParams: "a", Installer: "../x"}, ErrBadValue, []string{"render: kscloud.installer"}},
		{"installer with newline", RenderInput{BootParams: "a", Installer: "x\nbootparams=evil"}, ErrBadValue, []string{`"x\nbootparams=evil"`}},
		{"binary kickstart", RenderInput{BootParams: "a", Kickstart: []byte("text\x00")}, ErrBadValue, []string{"render: kickstart: control character U+0000 at byte 4"}},
		{"gzip kickstart", RenderInput{BootParams: "a", Kickstart: []byte(gzs("text"))}, ErrBadValue, []string{"U+001F at byte 0"}},
		{"non-UTF-8 kickstart", RenderInput{BootParams: "a", Kickstart: []byte("lang \xe9\n")}, ErrBadValue, []string{"invalid UTF-8 at byte 5"}},
		{"kickstart over 256 KiB", RenderInput{BootParams: "a", Kickstart: bytes.Repeat([]byte("a"), 256<<10+1)}, ErrTooLarge, []string{"kickstart is 262145 bytes, 1 over the 262144-byte limit"}},
		{"cloud-config without header", RenderInput{BootParams: "a", CloudConfig: []byte("packages: [vim]\n")}, ErrBadValue, []string{`render: cloud-config: first line is "packages: [vim]", not "#cloud-config"`}},
		{"cloud-config archive", RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config-archive\n- type: x\n")}, ErrBadValue, []string{"#cloud-config-archive"}},
		{"jinja cloud-config", RenderInput{BootParams: "a", CloudConfig: []byte("## template: jinja\n#cloud-config\n")}, ErrBadValue, []string{"template"}},
		{"shell script as cloud-config", RenderInput{BootParams: "a", CloudConfig: []byte("#!/bin/sh\n")}, ErrBadValue, []string{`"#!/bin/sh"`}},
		{"cloud-config conflicting bootparams", RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config\n# bootparams=b\n")}, ErrConflict,
			[]string{`user-data: render: cloud-config: line 2: bootparams: "b" differs from the requested "a"`}},
		{"cloud-config conflicting mode", RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config\n#kscloud.mode=in-place\n")}, ErrConflict,
			[]string{`kscloud.mode: "in-place" differs from the requested "bake"`}},
		{"cloud-config with an installer", RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config\n#kscloud.installer=x\n")}, ErrConflict, []string{"kscloud.installer"}},
		{"cloud-config with vnc", RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config\n#kscloud.vnc=1\n")}, ErrConflict, []string{`"yes" differs from the requested "no"`}},
		{"cloud-config unknown directive", RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config\n# kscloud.vcn=yes\n")}, ErrUnknownDirective,
			[]string{`render: cloud-config: line 2: unknown directive "kscloud.vcn"`}},
		{"cloud-config bad value", RenderInput{BootParams: "a", CloudConfig: []byte("#cloud-config\n# kscloud.vnc=perhaps\n")}, ErrBadValue, []string{"cloud-config: line 2: kscloud.vnc"}},
		{"bad compress", RenderInput{BootParams: "a", Compress: "gzip"}, ErrBadValue, []string{`render: compress: "gzip" is not one of auto, always, never`}},
		{"too large after gzip", RenderInput{BootParams: "a", Kickstart: incompressible}, ErrTooLarge, []string{"after gzip ("}},
		{"too large never compressed", RenderInput{BootParams: "a", Kickstart: incompressible, Compress: "never"}, ErrTooLarge, nil},
		{"too large but gzip would fit", RenderInput{BootParams: "a", Kickstart: compressible, Compress: "never"}, ErrTooLarge, []string{"(gzip compression would make it "}},
		{"too large plain bootparams and cloud-config", RenderInput{BootParams: "a", CloudConfig: append([]byte("#cloud-config\n"), incompressible...), Compress: "always"}, ErrTooLarge, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.in)
			checkErr(t, err, tc.err, tc.msgs...)
			if out != nil {
				t.Errorf("output with an error: %d bytes", len(out))
			}
			if !strings.HasPrefix(tc.name, "too large") {
				return
			}
			m := overLimit.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("message %q does not say by how much", err)
			}
			n, _ := strconv.Atoi(m[1])
			over, _ := strconv.Atoi(m[2])
			if n <= MaxUserData || n-MaxUserData != over {
				t.Errorf("%d bytes, %d over: inconsistent", n, over)
			}
			// N is the size of what Render would have returned.
			lines, _ := renderDirectives(tc.in)
			plain := renderMIME(lines, tc.in.CloudConfig, tc.in.Kickstart)
			if want := len(plain); tc.in.Compress == "never" && n != want {
				t.Errorf("reported %d bytes, the output is %d", n, want)
			}
			if want := len(gzipBytes(plain)); tc.in.Compress != "never" && n != want {
				t.Errorf("reported %d bytes, the compressed output is %d", n, want)
			}
		})
	}
}

// TestRenderParseProperty renders many random inputs and checks that Parse reads
// each back exactly, or that Render refused it for its size only.
func TestRenderParseProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 11))
	iterations := 1000
	if testing.Short() {
		iterations = 200
	}
	rendered, tooLarge := 0, 0
	for i := range iterations {
		in := randomRenderInput(rng)
		out, err := Render(in)
		if err != nil {
			checkErr(t, err, ErrTooLarge)
			tooLarge++
			continue
		}
		rendered++
		got, err := Parse(out, DefaultLimits())
		if err != nil {
			t.Fatalf("iteration %d: Parse(Render(%+v)): %v\n%q", i, in, err, out)
		}
		want := &Request{BootParams: strings.TrimRight(in.BootParams, " \t\r"), HasBootParams: true, Mode: ModeBake,
			Installer: in.Installer, VNC: in.VNC}
		if in.Mode == ModeInPlace {
			want.Mode, want.ModeSet = ModeInPlace, true
		}
		if len(in.Kickstart) > 0 {
			want.Kickstart = in.Kickstart
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Fatalf("iteration %d: input %+v\ngot  %+v\nwant %+v", i, in, got, want)
		}
		checkInvariants(t, got)
	}
	t.Logf("%d rendered and parsed back, %d refused as too large", rendered, tooLarge)
	if rendered < iterations/2 {
		t.Errorf("only %d of %d random inputs rendered: the generator is off", rendered, iterations)
	}
}

// randomRenderInput builds a valid RenderInput from awkward pieces: XML and
// shell metacharacters, directive look-alikes, CR/LF mixes, non-ASCII text,
// and the boundary Render prefers.
func randomRenderInput(rng *rand.Rand) RenderInput {
	words := []string{"ks=http://10.0.0.1/ks.cfg", "inst.ks=file:/ks.cfg", "ip=dhcp", "</cmdline>", "<disk type='file'>",
		"&amp;", "<!ENTITY x>", "!", "&", "\"", "'", "$(id)", "café", "日本", "bootparams=", "kscloud.mode=", "#", "--==kscloud-boundary==", "="}
	pick := func() string { return words[rng.IntN(len(words))] }
	var in RenderInput
	var bpb strings.Builder
	for n := 1 + rng.IntN(12); n > 0; n-- {
		bpb.WriteString(pick())
		if rng.IntN(3) > 0 {
			bpb.WriteString(" ")
		}
	}
	if rng.IntN(4) == 0 {
		bpb.WriteString(strings.Repeat("x", rng.IntN(2000)))
	}
	in.BootParams = bpb.String()
	for len(in.BootParams) > MaxCmdline || !utf8.ValidString(in.BootParams) {
		in.BootParams = in.BootParams[:len(in.BootParams)-1]
	}
	if strings.TrimSpace(in.BootParams) == "" {
		in.BootParams = "x"
	}
	if rng.IntN(2) == 0 {
		in.Mode = ModeInPlace
	}
	if rng.IntN(2) == 0 {
		in.Installer = "inst-" + strconv.Itoa(rng.IntN(1000)) + "_a.b"
	}
	in.VNC = rng.IntN(2) == 0
	text := func(lines int) []byte {
		var b bytes.Buffer
		eols := []string{"\n", "\r\n", "\r", ""}
		for range lines {
			for n := rng.IntN(6); n > 0; n-- {
				b.WriteString(pick() + " ")
			}
			b.WriteString(eols[rng.IntN(len(eols))])
		}
		return b.Bytes()
	}
	if rng.IntN(2) == 0 {
		in.Kickstart = text(1 + rng.IntN(400))
	}
	if rng.IntN(2) == 0 {
		cc := append([]byte("#cloud-config\n"), text(rng.IntN(300))...)
		// A cloud-config line starting with a directive key would be read as a
		// directive; keep them as YAML keys instead.
		cc = bytes.ReplaceAll(cc, []byte("bootparams="), []byte("bootparams: "))
		cc = bytes.ReplaceAll(cc, []byte("kscloud.mode="), []byte("kscloud.mode: "))
		in.CloudConfig = cc
	}
	in.Compress = []string{"", "auto", "always", "never"}[rng.IntN(4)]
	return in
}

// TestParseTruncatedRender cuts rendered MIME and gzip user-data short, as a
// too-small user-data buffer would, and checks that Parse never returns other
// directives for a truncated copy: it fails, finds no directives (a prefix that
// does not yet look like MIME), or (when only the final line break is lost)
// returns the full result.
func TestParseTruncatedRender(t *testing.T) {
	ks := []byte(strings.Repeat("part /home --fstype=xfs --size=1024 --grow\n", 300)) // 12900 bytes
	for _, compress := range []string{"never", "always"} {
		t.Run(compress, func(t *testing.T) {
			out, err := Render(RenderInput{BootParams: seedParams, Kickstart: ks, CloudConfig: []byte(cloudConfig), Compress: compress})
			checkErr(t, err, nil)
			full, err := Parse(out, DefaultLimits())
			checkErr(t, err, nil)
			failed := 0
			for cut := 0; cut < len(out); cut++ {
				if cut%7 != 0 && cut < len(out)-64 {
					continue
				}
				got, err := Parse(out[:cut], DefaultLimits())
				if err != nil {
					failed++
					continue
				}
				// A prefix too short to look like MIME is text without
				// directives, which nchookd leaves alone; anything with
				// directives must be the whole thing.
				empty := &Request{Mode: ModeBake}
				if !reflect.DeepEqual(got, full) && !reflect.DeepEqual(got, empty) {
					t.Fatalf("cut at %d of %d: got %+v, want an error, no directives, or the full result", cut, len(out), got)
				}
			}
			if failed == 0 {
				t.Error("no truncation was detected")
			}
		})
	}
}

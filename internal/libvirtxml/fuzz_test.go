package libvirtxml

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fuzzInstall builds the install request of a fuzz input from its flag bits.
func fuzzInstall(cmdline string, flags uint8) Install {
	in := Install{Cmdline: cmdline, Mode: ModeBake}
	if flags&1 != 0 {
		in.VNC = &VNC{Listen: "127.0.0.1", Password: "fuzzpw"}
	}
	if flags&2 != 0 {
		in.Kernel, in.Initrd, in.Installer = "/srv/fuzz/vmlinuz", "/srv/fuzz/initrd", "fuzz"
	}
	if flags&4 != 0 {
		in.SerialLog = "/var/log/fuzz/console.log"
	}
	if flags&8 != 0 {
		in.Mode = ModeInPlace
	}
	return in
}

// FuzzRewriteInstall fuzzes the domain bytes and, separately, the command
// line (and which options are set). It asserts: no panic; a failure returns
// nil bytes and a one-line error wrapping a sentinel; a success changes
// nothing outside the owned parts (in particular no device but the ones
// nchookd adds or removes), the command line reads back as the user's line
// plus at most the console parameter, the rewrite is idempotent, and
// FinalDomain of it succeeds, is idempotent, and only removes nchookd's VNC.
func FuzzRewriteInstall(f *testing.F) {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed domains: %v", err)
	}
	seedCmdlines := []string{
		"ks=http://10.0.0.1/ks.cfg",
		`</cmdline><disk type="file" device="disk"><source file="/etc/shadow"/><target dev="vdb"/></disk><cmdline>`,
		`]]>`,
		`<!ENTITY x SYSTEM "file:///etc/shadow">&x;`,
		`&amp; ! ' " $(reboot) ` + "`id`",
		"日本語 🙂 console=ttyS1",
		"",
	}
	for i, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for j, c := range seedCmdlines {
			f.Add(b, c, uint8(i+j))
		}
	}
	// Installer domains, so that second passes and metadata get fuzzed too.
	for i, file := range []string{
		"testdata/golden/hvm-nokernel.catalog-vnc.install.xml",
		"testdata/golden/eucalyptus-3.4.2.eki-vnc.install.xml",
		"testdata/golden/rich.catalog.final.xml",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "ks=x", uint8(i))
		f.Add(b, "ks=x", uint8(i|1|2|4))
	}
	f.Add(dom("\n  <on_reboot>preserve</on_reboot>", "\n    <initrd>/i</initrd>\n    <root>/dev/sda1</root>",
		"\n    <serial type=\"pty\"/>\n    <serial type=\"file\"><source path=\"/l\"/></serial>\n    <graphics type=\"vnc\"/>"), "console=ttyS1", uint8(3))
	f.Add([]byte(`<domain><name>a</name><os><type>hvm</type><kernel>/k</kernel></os></domain>`), "x", uint8(5))
	f.Add([]byte("<domain type='kvm'>\n\t<name>b</name>\n\t<os>\n\t\t<kernel>/k</kernel>\n\t</os>\n\t<devices>\n\t\t<serial type='pty'/>\n\t</devices>\n</domain>"), "y", uint8(7))

	f.Fuzz(func(t *testing.T, domainXML []byte, cmdline string, flags uint8) {
		in := fuzzInstall(cmdline, flags)
		out, err := RewriteInstall(domainXML, in)
		if err != nil {
			if out != nil {
				t.Fatalf("error %v with %d bytes", err, len(out))
			}
			checkFuzzError(t, err)
			return
		}

		prev, _, _ := ReadMeta(domainXML)
		m := meta(t, out)
		vnc, serial := m.VNCAdded || prev.VNCAdded, m.SerialAdded || prev.SerialAdded
		if got, want := devicesWithout(t, out, vnc, serial), devicesWithout(t, domainXML, vnc, serial); !slices.Equal(got, want) {
			t.Fatalf("devices changed:\n got %q\nwant %q", got, want)
		}
		assertOnlyOwnedChanged(t, domainXML, out)

		got, present := cmdlineOf(t, out)
		if !present && got != "" {
			t.Fatalf("no <cmdline> but text %q", got)
		}
		if !cmdlineMatches(got, in.Cmdline) {
			t.Fatalf("cmdline reads back as %q, want %q plus at most a console parameter", got, in.Cmdline)
		}

		again, err := RewriteInstall(out, in)
		if err != nil {
			t.Fatalf("second RewriteInstall: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("RewriteInstall not idempotent:\n%s", diff(out, again))
		}

		final, err := FinalDomain(out)
		if err != nil {
			t.Fatalf("FinalDomain of a RewriteInstall result: %v", err)
		}
		if got, want := deviceSet(t, final), devicesWithout(t, out, m.VNCAdded, false); !slices.Equal(got, want) {
			t.Fatalf("FinalDomain changed devices:\n got %q\nwant %q", got, want)
		}
		finalAgain, err := FinalDomain(final)
		if err != nil {
			t.Fatalf("second FinalDomain: %v", err)
		}
		if !bytes.Equal(finalAgain, final) {
			t.Fatalf("FinalDomain not idempotent:\n%s", diff(final, finalAgain))
		}
	})
}

// checkFuzzError checks that err is one of the documented errors.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	ok := false
	for _, s := range []error{ErrInvalidDomain, ErrInvalidInstall, ErrCmdlineTooLong, ErrNoKernel} {
		ok = ok || errors.Is(err, s)
	}
	if !ok {
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("error %q is not one line", err)
	}
}

// cmdlineMatches reports whether got is the user's line with its
// console=ttyS<k> tokens taken out and one console=ttyS<N>[,opts] last
// (or the user's line as is, when the domain has no serial port).
func cmdlineMatches(got, user string) bool {
	if got == user {
		return true
	}
	var keep []string
	for _, f := range strings.Split(user, " ") {
		if _, ok := serialConsolePort(f); !ok {
			keep = append(keep, f)
		}
	}
	rest := strings.Join(keep, " ")
	tail := got
	if rest != "" {
		var ok bool
		if tail, ok = strings.CutPrefix(got, rest+" "); !ok {
			return false
		}
	}
	if strings.Contains(tail, " ") {
		return false
	}
	_, ok := serialConsolePort(tail)
	return ok
}

func BenchmarkRewriteInstall(b *testing.B) {
	sample, err := os.ReadFile(sample342)
	if err != nil {
		b.Fatal(err)
	}
	in := ekiInstall("ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp")
	in.VNC = &VNC{Listen: "127.0.0.1", Password: "s3cr3t"}
	b.ReportAllocs()
	b.SetBytes(int64(len(sample)))
	for b.Loop() {
		if _, err := RewriteInstall(sample, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFinalDomain(b *testing.B) {
	sample, err := os.ReadFile(sample342)
	if err != nil {
		b.Fatal(err)
	}
	inst, err := RewriteInstall(sample, ekiInstall("ks=x"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FinalDomain(inst); err != nil {
			b.Fatal(err)
		}
	}
}

package libvirtxml

import (
	"bytes"
	"errors"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const sample342 = "testdata/eucalyptus-3.4.2.xml"

// ekiInstall keeps the domain's own kernel (Eucalyptus EKI/ERI).
func ekiInstall(cmdline string) Install {
	return Install{Cmdline: cmdline, Mode: ModeBake, SerialLog: testSerialLog}
}

// catalogInstall uses a catalog installer.
func catalogInstall(cmdline string) Install {
	return Install{
		Kernel:    "/srv/installers/test/vmlinuz",
		Initrd:    "/srv/installers/test/initrd.img",
		Cmdline:   cmdline,
		Mode:      ModeInPlace,
		Installer: "test",
		SerialLog: testSerialLog,
	}
}

func TestAdversarialCmdline(t *testing.T) {
	sample := readFile(t, sample342)
	cmdlines := []string{
		`</cmdline><disk type="file" device="disk"><source file="/etc/shadow"/><target dev="vdb"/></disk><cmdline>`,
		`]]>`,
		`<![CDATA[x]]><disk/>`,
		`<!ENTITY x SYSTEM "file:///etc/shadow">&x;`,
		`<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/shadow">]>`,
		`&amp; ! ' " $(reboot) ` + "`id`",
		`&lt;&#60;&#x3c; literally`,
		`<!-- --> <?xml version="1.0"?> --> ?>`,
		"inst.lang=日本語 ks=http://例え.jp/ks.cfg 🙂 \u200b\u00a0\u2028 \uFFFD end",
		"",
		" leading and trailing spaces ",
	}
	for _, cmd := range cmdlines {
		for _, mk := range []func(string) Install{ekiInstall, catalogInstall} {
			in := mk(cmd)
			out, err := RewriteInstall(sample, in)
			if err != nil {
				t.Fatalf("RewriteInstall(%q): %v", cmd, err)
			}
			if got, want := deviceSet(t, out), deviceSet(t, sample); !slices.Equal(got, want) {
				t.Errorf("cmdline %q changed the devices:\n got %q\nwant %q", cmd, got, want)
			}
			want := "console=ttyS1"
			if cmd != "" {
				want = cmd + " " + want
			}
			if got, ok := cmdlineOf(t, out); !ok || got != want {
				t.Errorf("cmdline round trip: got %q (present %v), want %q", got, ok, want)
			}
			assertOnlyOwnedChanged(t, sample, out)
			for _, bad := range []string{`<source file="/etc/shadow"/>`, "<!ENTITY", "<!DOCTYPE", "]]>", "<![CDATA[", "<!-- -->", "&x;", "$(reboot)</cmdline>"} {
				if cmd != "" && strings.Contains(cmd, bad) && bytes.Contains(out, []byte(bad)) {
					t.Errorf("output contains %q from the cmdline unescaped:\n%s", bad, out)
				}
			}
			if n := bytes.Count(out, []byte("<cmdline>")); n != 1 {
				t.Errorf("%d <cmdline> start tags in output", n)
			}
			if in.Kernel != "" && osText(t, out, "kernel") != in.Kernel {
				t.Errorf("kernel = %q", osText(t, out, "kernel"))
			}
		}
	}
	// The outputs are domains libvirt accepts (one per cmdline is enough).
	for _, cmd := range cmdlines[:4] {
		out, err := RewriteInstall(sample, ekiInstall(cmd))
		if err != nil {
			t.Fatal(err)
		}
		validateBytes(t, out)
	}
}

// TestAdversarialInstaller checks that the installer name, recorded in an
// attribute of the metadata, cannot add anything either.
func TestAdversarialInstaller(t *testing.T) {
	sample := readFile(t, sample342)
	for _, name := range []string{
		`"/><disk type="file" device="disk"><source file="/etc/shadow"/><target dev="vdb"/></disk><x a="`,
		`' onload='x`,
		`&shadow; < > &amp;`,
	} {
		in := catalogInstall("ks=x")
		in.Installer = name
		out, err := RewriteInstall(sample, in)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(deviceSet(t, out), deviceSet(t, sample)) {
			t.Errorf("installer %q changed the devices", name)
		}
		m, ok, err := ReadMeta(out)
		if err != nil || !ok || m.Installer != name {
			t.Errorf("ReadMeta: installer %q, ok %v, err %v; want %q", m.Installer, ok, err, name)
		}
		assertOnlyOwnedChanged(t, sample, out)
	}
}

func TestCmdlineLimit(t *testing.T) {
	sample := readFile(t, sample342)
	const suffix = " console=ttyS1"
	tests := []struct {
		name    string
		cmdline string
		wantLen int // 0: rejected
	}{
		{"exactly 2047", strings.Repeat("a", MaxCmdline-len(suffix)), MaxCmdline},
		{"2048", strings.Repeat("a", MaxCmdline-len(suffix)+1), 0},
		{"console already there, 2047", strings.Repeat("a", MaxCmdline-len(suffix)) + suffix, MaxCmdline},
		{"console already there, 2048", strings.Repeat("a", MaxCmdline-len(suffix)+1) + suffix, 0},
		{"bytes not characters", strings.Repeat("é", (MaxCmdline-len(suffix)+1)/2), 0},
		{"way over", strings.Repeat("x ", 4096), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := RewriteInstall(sample, ekiInstall(tt.cmdline))
			if tt.wantLen == 0 {
				if !errors.Is(err, ErrCmdlineTooLong) || out != nil {
					t.Fatalf("got %d bytes, err %v; want nil, ErrCmdlineTooLong", len(out), err)
				}
				n := len(tt.cmdline)
				if !strings.Contains(tt.cmdline, suffix) {
					n += len(suffix)
				}
				if !strings.Contains(err.Error(), strconv.Itoa(n)+" bytes") {
					t.Errorf("error %q does not name the length %d", err, n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := cmdlineOf(t, out)
			if len(got) != tt.wantLen || !strings.HasSuffix(got, suffix) {
				t.Errorf("cmdline is %d bytes, want %d ending in %q", len(got), tt.wantLen, suffix)
			}
		})
	}
}

// Invalid input documents: every entry point refuses them with ErrInvalidDomain.
var invalidDomains = []struct {
	name, xml, want string
}{
	{"empty", "", "empty document"},
	{"blank", " \n\t", "empty document"},
	{"not xml", "not xml at all", "text outside the root element"},
	{"truncated", `<domain type="kvm"><os><type>hvm</type>`, "not well-formed"},
	{"mismatched tags", `<domain><os></domain></os>`, "not well-formed"},
	{"root not domain", `<network><name>n</name><os/></network>`, "root element is <network>"},
	{"namespaced root", `<x:domain xmlns:x="urn:x"><os/></x:domain>`, "root element is <x:domain>"},
	{"no os", `<domain type="kvm"><name>a</name></domain>`, "no <os> element"},
	{"two os", `<domain type="kvm"><name>a</name><os><type>hvm</type></os><os><type>hvm</type></os></domain>`, "2 <os> elements"},
	{"doctype", `<!DOCTYPE domain><domain><name>a</name><os/></domain>`, "DOCTYPE"},
	{"entity declaration", `<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/shadow">]><domain><name>&x;</name><os/></domain>`, "not well-formed"},
	{"entity declaration unused", `<!DOCTYPE domain [<!ENTITY x "y">]><domain><name>a</name><os/></domain>`, "DOCTYPE"},
	{"undeclared entity", `<domain><name>&x;</name><os/></domain>`, "not well-formed"},
	{"declaration inside", `<domain><!ELEMENT x ANY><name>a</name><os/></domain>`, "<!...> declaration"},
	{"duplicate attribute", `<domain type="kvm" type="qemu"><name>a</name><os/></domain>`, `attribute "type" twice`},
	{"two roots", `<domain><name>a</name><os/></domain><domain><name>b</name><os/></domain>`, "more than one root element"},
	{"text after root", `<domain><name>a</name><os/></domain>trailing`, "text outside the root element"},
	{"invalid utf-8", "<domain><name>\xff</name><os/></domain>", "not well-formed"},
	{"only a comment", `<!-- nothing -->`, "no root element"},
	{"byte order mark not first", " \ufeff<domain><name>a</name><os/></domain>", "text outside the root element"},
	{"CDATA outside the root", `<![CDATA[ ]]><domain><name>a</name><os/></domain>`, "text outside the root element"},
}

func TestInvalidDomain(t *testing.T) {
	entryPoints := []struct {
		name string
		call func([]byte) ([]byte, error)
	}{
		{"RewriteInstall", func(b []byte) ([]byte, error) { return RewriteInstall(b, ekiInstall("ks=x")) }},
		{"FinalDomain", FinalDomain},
		{"ReadMeta", func(b []byte) ([]byte, error) { _, _, err := ReadMeta(b); return nil, err }},
		{"DomainName", func(b []byte) ([]byte, error) { _, err := DomainName(b); return nil, err }},
		{"VNCGraphics", func(b []byte) ([]byte, error) { _, _, err := VNCGraphics(b); return nil, err }},
		{"DirectBoot", func(b []byte) ([]byte, error) { _, _, err := DirectBoot(b); return nil, err }},
		{"SerialLog", func(b []byte) ([]byte, error) { _, err := SerialLog(b); return nil, err }},
	}
	for _, tt := range invalidDomains {
		for _, ep := range entryPoints {
			out, err := ep.call([]byte(tt.xml))
			if !errors.Is(err, ErrInvalidDomain) {
				t.Errorf("%s: %s: err = %v, want ErrInvalidDomain", tt.name, ep.name, err)
				continue
			}
			if out != nil {
				t.Errorf("%s: %s: returned %d bytes with an error", tt.name, ep.name, len(out))
			}
			assertOneLine(t, err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %s: error %q does not mention %q", tt.name, ep.name, err, tt.want)
			}
		}
	}
}

// assertOneLine checks the error message style: one line, lowercase start.
func assertOneLine(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") || msg == "" || strings.ToLower(msg[:1]) != msg[:1] {
		t.Errorf("error %q is not one lowercase line", msg)
	}
}

// Domains that parse but that RewriteInstall must refuse.
func TestRewriteRefusesAmbiguousDomain(t *testing.T) {
	base := string(readFile(t, sample342))
	tests := []struct {
		name, old, new, want string
	}{
		{"two on_reboot", "<on_reboot>restart</on_reboot>", "<on_reboot>restart</on_reboot><on_reboot>destroy</on_reboot>", "2 <on_reboot> elements"},
		{"bad on_reboot", "<on_reboot>restart</on_reboot>", "<on_reboot>explode</on_reboot>", `<on_reboot> "explode"`},
		{"two kernels", "<cmdline>", "<kernel>/k2</kernel><cmdline>", "2 <kernel> elements"},
		{"two devices", "</devices>", "</devices><devices/>", "2 <devices> elements"},
		{"bad serial port", `<target port="1"/>`, `<target port="one"/>`, `port "one"`},
		{"two metadata", "<os>", "<metadata/><metadata/><os>", "2 <metadata> elements"},
		{"two kscloud metas", "<os>", `<metadata><kscloud:install xmlns:kscloud="https://kscloud.dev/xmlns/install/1" mode="bake" phase="install" vnc-added="no" serial-added="no"/><k:install xmlns:k="https://kscloud.dev/xmlns/install/1" mode="bake" phase="install" vnc-added="no" serial-added="no"/></metadata><os>`, "more than one kscloud metadata element"},
		{"bad meta phase", "<os>", `<metadata><kscloud:install xmlns:kscloud="https://kscloud.dev/xmlns/install/1" mode="bake" phase="baking" vnc-added="no" serial-added="no"/></metadata><os>`, `phase "baking"`},
		{"bad meta flag", "<os>", `<metadata><kscloud:install xmlns:kscloud="https://kscloud.dev/xmlns/install/1" mode="bake" phase="install" vnc-added="true" serial-added="no"/></metadata><os>`, `vnc-added "true"`},
		{"bad meta orig", "<os>", `<metadata><kscloud:install xmlns:kscloud="https://kscloud.dev/xmlns/install/1" mode="bake" phase="install" orig-on-reboot="" vnc-added="no" serial-added="no"/></metadata><os>`, `orig-on-reboot ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("sample has no %q", tt.old)
			}
			b := []byte(strings.Replace(base, tt.old, tt.new, 1))
			out, err := RewriteInstall(b, ekiInstall("ks=x"))
			if !errors.Is(err, ErrInvalidDomain) || out != nil {
				t.Fatalf("got %d bytes, err %v; want nil, ErrInvalidDomain", len(out), err)
			}
			assertOneLine(t, err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestInvalidInstall(t *testing.T) {
	sample := readFile(t, sample342)
	tests := []struct {
		name string
		edit func(*Install)
		want string
	}{
		{"newline in cmdline", func(in *Install) { in.Cmdline = "a\nb" }, "control character U+000A"},
		{"tab in cmdline", func(in *Install) { in.Cmdline = "a\tb" }, "control character U+0009"},
		{"NUL in cmdline", func(in *Install) { in.Cmdline = "a\x00b" }, "control character U+0000"},
		{"escape in cmdline", func(in *Install) { in.Cmdline = "a\x1b[2Jb" }, "control character U+001B"},
		{"DEL in cmdline", func(in *Install) { in.Cmdline = "a\x7f" }, "control character U+007F"},
		{"C1 control in cmdline", func(in *Install) { in.Cmdline = "a\u0085b" }, "control character U+0085"},
		{"invalid UTF-8 in cmdline", func(in *Install) { in.Cmdline = "a\xffb" }, "not valid UTF-8 at byte 1"},
		{"non-XML character in cmdline", func(in *Install) { in.Cmdline = "a\uFFFE" }, "U+FFFE"},
		{"relative kernel", func(in *Install) { in.Kernel, in.Initrd = "vmlinuz", "/i" }, `kernel path "vmlinuz" is not absolute`},
		{"relative initrd", func(in *Install) { in.Kernel, in.Initrd = "/k", "initrd" }, "not absolute"},
		{"initrd without kernel", func(in *Install) { in.Initrd = "/i" }, "without a kernel"},
		{"relative serial log", func(in *Install) { in.SerialLog = "console.log" }, "not absolute"},
		{"newline in serial log", func(in *Install) { in.SerialLog = "/a\n/b" }, "control character"},
		{"no mode", func(in *Install) { in.Mode = "" }, `mode ""`},
		{"unknown mode", func(in *Install) { in.Mode = "fry" }, `mode "fry"`},
		{"control in installer", func(in *Install) { in.Installer = "a\rb" }, "installer name"},
		{"empty vnc password", func(in *Install) { in.VNC = &VNC{Listen: "127.0.0.1"} }, "vnc password is empty"},
		{"long vnc password", func(in *Install) { in.VNC = &VNC{Listen: "127.0.0.1", Password: "123456789"} }, "9 characters, the limit is 8"},
		{"space in vnc password", func(in *Install) { in.VNC = &VNC{Listen: "127.0.0.1", Password: "a b"} }, "printable ASCII"},
		{"non-ASCII vnc password", func(in *Install) { in.VNC = &VNC{Listen: "127.0.0.1", Password: "pässwd"} }, "printable ASCII"},
		{"empty vnc listen", func(in *Install) { in.VNC = &VNC{Password: "pw"} }, "not an IP address"},
		{"hostname vnc listen", func(in *Install) { in.VNC = &VNC{Listen: "localhost", Password: "pw"} }, "not an IP address"},
		{"injection in vnc listen", func(in *Install) { in.VNC = &VNC{Listen: `127.0.0.1" x="`, Password: "pw"} }, "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ekiInstall("ks=x")
			tt.edit(&in)
			out, err := RewriteInstall(sample, in)
			if !errors.Is(err, ErrInvalidInstall) || out != nil {
				t.Fatalf("got %d bytes, err %v; want nil, ErrInvalidInstall", len(out), err)
			}
			assertOneLine(t, err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestNoKernel(t *testing.T) {
	b := readFile(t, "testdata/hvm-nokernel.xml")
	out, err := RewriteInstall(b, ekiInstall("ks=x"))
	if !errors.Is(err, ErrNoKernel) || out != nil {
		t.Fatalf("got %d bytes, err %v; want nil, ErrNoKernel", len(out), err)
	}
	assertOneLine(t, err)
	if !strings.HasPrefix(err.Error(), "domain has no kernel: ") || !strings.Contains(err.Error(), `"ks-demo"`) {
		t.Errorf("error %q does not name the domain", err)
	}
	// An empty <kernel> is no kernel either.
	empty := bytes.Replace(b, []byte("<type arch='x86_64' machine='pc'>hvm</type>"), []byte("<type arch='x86_64' machine='pc'>hvm</type><kernel> </kernel>"), 1)
	if _, err := RewriteInstall(empty, ekiInstall("ks=x")); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty <kernel>: err = %v, want ErrNoKernel", err)
	}
}

// TestLargeInputsScaleLinearly guards against quadratic work where the
// rewrite removes, scans or numbers many elements or attributes: the CPU time
// for 5n of them must stay within 10 times that for n (linear code gives
// about 5, the quadratic versions this replaced gave 20 and more). CPU time,
// best of five with the garbage collector off, because test machines are
// shared and the collector's time is not the rewrite's.
func TestLargeInputsScaleLinearly(t *testing.T) {
	tests := []struct {
		name string
		xml  func(n int) []byte
	}{
		{"<root> elements to remove", func(n int) []byte {
			return []byte("<domain><name>a</name><os><kernel>/k</kernel>" + strings.Repeat("\n    <root>/dev/sda1</root>", n) + "</os></domain>")
		}},
		{"attributes to check for duplicates", func(n int) []byte {
			var b strings.Builder
			for i := range n {
				b.WriteString(" a" + strconv.Itoa(i) + "='x'")
			}
			return []byte("<domain" + b.String() + "><name>a</name><os><kernel>/k</kernel></os></domain>")
		}},
		{"portless serials to number", func(n int) []byte {
			return []byte("<domain><name>a</name><os><kernel>/k</kernel></os><devices>" + strings.Repeat("<serial/>", n) + "</devices></domain>")
		}},
		{"devices to insert among and remove from", func(n int) []byte {
			return []byte("<domain><name>a</name><os><kernel>/k</kernel></os><devices>" + strings.Repeat("\n    <graphics type='vnc'/><hub type='usb'/>", n) + "</devices></domain>")
		}},
	}
	in := ekiInstall("ks=x")
	in.VNC = &VNC{Listen: "127.0.0.1", Password: "pw"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			measure := func(n int) time.Duration {
				b := tt.xml(n)
				best := time.Duration(1<<63 - 1)
				// The collector's CPU time (other goroutines' garbage
				// included) is not the rewrite's: off while measuring.
				defer debug.SetGCPercent(debug.SetGCPercent(-1))
				for range 5 {
					runtime.GC()
					start := cpuTime(t)
					out, err := RewriteInstall(b, in)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := FinalDomain(out); err != nil {
						t.Fatal(err)
					}
					best = min(best, cpuTime(t)-start)
				}
				return best
			}
			const n = 8000
			small, large := measure(n), measure(5*n)
			if large > 10*small+20*time.Millisecond {
				t.Errorf("CPU time grows faster than linearly: %v for %d, %v for %d", small, n, large, 5*n)
			}
			t.Logf("%v for %d, %v for %d", small, n, large, 5*n)
		})
	}
}

// cpuTime returns the CPU time the test process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestNewVNCPassword(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		pw, err := NewVNCPassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != MaxVNCPassword || strings.Trim(pw, pwAlphabet) != "" {
			t.Fatalf("password %q", pw)
		}
		seen[pw] = true
	}
	if len(seen) < 99 {
		t.Errorf("%d distinct passwords out of 100", len(seen))
	}
}

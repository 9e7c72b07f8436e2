package libvirtxml

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// dom builds a small indented domain: extra goes after <clock>, osExtra into
// <os> after <type>, devices into <devices>.
func dom(extra, osExtra, devices string) []byte {
	return []byte(`<domain type="kvm">
  <name>t1</name>
  <os>
    <type>hvm</type>
    <kernel>/boot/vmlinuz</kernel>` + osExtra + `
  </os>
  <clock offset="utc"/>` + extra + `
  <devices>
    <disk type="file" device="disk">
      <source file="/img/t1.img"/>
      <target dev="vda" bus="virtio"/>
    </disk>` + devices + `
  </devices>
</domain>
`)
}

const fileSerial1 = `
    <serial type="file">
      <source path="/var/log/t1.log"/>
      <target port="1"/>
    </serial>`

// find returns the elements at an absolute path of names in no namespace.
func find(t *testing.T, b []byte, path string) []*etree.Element {
	t.Helper()
	return strictFind(mustParse(t, b), path)
}

func meta(t *testing.T, b []byte) Meta {
	t.Helper()
	m, ok, err := ReadMeta(b)
	if err != nil || !ok {
		t.Fatalf("ReadMeta: ok %v, err %v", ok, err)
	}
	return m
}

func TestRewriteBehaviour(t *testing.T) {
	vnc := &VNC{Listen: "127.0.0.1", Password: "pw"}
	tests := []struct {
		name  string
		xml   []byte
		in    Install
		check func(t *testing.T, in, out []byte)
	}{
		{
			name: "unknown elements, comments, processing instructions and CDATA survive",
			xml: []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!-- before the root -->
<domain type="kvm" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0" data-x="1">
  <name>t1</name>
  <description><![CDATA[a <b> & c]]></description>
  <frobnicate level="3" zeta="z" alpha="a"><knob/>text</frobnicate>
  <!-- keep: comment -->
  <?kscloud-test keep this?>
  <os>
    <type>hvm</type>
    <!-- inside os -->
    <kernel>/boot/vmlinuz</kernel>
    <loader readonly="yes" type="rom">/usr/share/seabios/bios.bin</loader>
  </os>
  <devices>
    <serial type="pty"><target port="0"/></serial>
    <unknown-device x="y"/>
  </devices>
  <qemu:commandline>
    <qemu:arg value="-S"/>
  </qemu:commandline>
</domain>
<!-- after the root -->
`),
			in: ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				for _, s := range []string{
					`<?xml version="1.0" encoding="UTF-8"?>` + "\n<!-- before the root -->\n",
					`<domain type="kvm" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0" data-x="1">`,
					`<description><![CDATA[a <b> & c]]></description>`,
					`<frobnicate level="3" zeta="z" alpha="a"><knob/>text</frobnicate>`,
					`<!-- keep: comment -->`,
					`<?kscloud-test keep this?>`,
					`<!-- inside os -->`,
					`<loader readonly="yes" type="rom">/usr/share/seabios/bios.bin</loader>`,
					`<unknown-device x="y"/>`,
					"<qemu:commandline>\n    <qemu:arg value=\"-S\"/>\n  </qemu:commandline>",
					"</domain>\n<!-- after the root -->\n",
				} {
					if !bytes.Contains(out, []byte(s)) {
						t.Errorf("output lost %q:\n%s", s, out)
					}
				}
				assertOnlyOwnedChanged(t, in, out)
			},
		},
		{
			name: "a byte order mark is accepted and kept",
			xml:  append([]byte("\ufeff"), dom("", "", fileSerial1)...),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if !bytes.HasPrefix(out, []byte("\ufeff<domain type=\"kvm\">")) {
					t.Errorf("output starts %q", out[:min(len(out), 20)])
				}
			},
		},
		{
			name: "foreign metadata child kept, kscloud element appended after it",
			xml:  dom("", "", fileSerial1),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				in2 := bytes.Replace(in, []byte("<os>"), []byte("<metadata>\n    <app:info xmlns:app=\"urn:app\" app:k=\"v\">keep</app:info>\n  </metadata>\n  <os>"), 1)
				out2, err := RewriteInstall(in2, ekiInstall("ks=x"))
				if err != nil {
					t.Fatal(err)
				}
				want := "<metadata>\n    <app:info xmlns:app=\"urn:app\" app:k=\"v\">keep</app:info>\n    <kscloud:install "
				if !bytes.Contains(out2, []byte(want)) {
					t.Errorf("output does not contain %q:\n%s", want, out2)
				}
				assertOnlyOwnedChanged(t, in2, out2)
			},
		},
		{
			name: "existing vnc graphics is not duplicated and stays in the final domain",
			xml:  dom("", "", fileSerial1+"\n    <graphics type=\"vnc\" port=\"5900\" listen=\"0.0.0.0\"/>"),
			in:   Install{Cmdline: "ks=x", Mode: ModeBake, VNC: vnc},
			check: func(t *testing.T, in, out []byte) {
				gs := find(t, out, "/domain/devices/graphics")
				if len(gs) != 1 || gs[0].SelectAttrValue("port", "") != "5900" || gs[0].SelectAttr("passwd") != nil {
					t.Errorf("graphics changed: %d elements", len(gs))
				}
				if meta(t, out).VNCAdded {
					t.Errorf("VNCAdded set for a console nchookd did not add")
				}
				final, err := FinalDomain(out)
				if err != nil {
					t.Fatal(err)
				}
				if len(find(t, final, "/domain/devices/graphics")) != 1 {
					t.Errorf("final domain lost the domain's own VNC console")
				}
				assertOnlyOwnedChanged(t, in, out)
			},
		},
		{
			name: "no serial: a file serial on port 0 is added and kept in the final domain",
			xml:  dom("", "", ""),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				ss := find(t, out, "/domain/devices/serial")
				if len(ss) != 1 || ss[0].SelectAttrValue("type", "") != "file" ||
					ss[0].FindElement("source").SelectAttrValue("path", "") != testSerialLog ||
					ss[0].FindElement("target").SelectAttrValue("port", "") != "0" {
					t.Fatalf("serial not added as specified:\n%s", out)
				}
				want := "    </disk>\n    <serial type=\"file\">\n      <source path=\"" + testSerialLog + "\" append=\"on\"/>\n      <target port=\"0\"/>\n    </serial>\n  </devices>"
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("serial not indented like its siblings:\n%s", out)
				}
				if c, _ := cmdlineOf(t, out); c != "ks=x console=ttyS0" {
					t.Errorf("cmdline = %q", c)
				}
				if !meta(t, out).SerialAdded {
					t.Errorf("SerialAdded not recorded")
				}
				final, err := FinalDomain(out)
				if err != nil {
					t.Fatal(err)
				}
				if len(find(t, final, "/domain/devices/serial")) != 1 || !meta(t, final).SerialAdded {
					t.Errorf("final domain lost the serial log")
				}
			},
		},
		{
			name: "no serial and no serial log: nothing added, no console=",
			xml:  dom("", "", ""),
			in:   Install{Cmdline: "ks=x", Mode: ModeBake},
			check: func(t *testing.T, in, out []byte) {
				if len(find(t, out, "/domain/devices/serial")) != 0 || meta(t, out).SerialAdded {
					t.Errorf("serial added without a serial log")
				}
				if c, _ := cmdlineOf(t, out); c != "ks=x" {
					t.Errorf("cmdline = %q, want the user's line only", c)
				}
			},
		},
		{
			name: "nothing to put on the command line: <cmdline> removed",
			xml:  dom("", "\n    <cmdline>root=/dev/sda1 console=ttyS0</cmdline>", ""),
			in:   Install{Mode: ModeBake},
			check: func(t *testing.T, in, out []byte) {
				if c, ok := cmdlineOf(t, out); ok {
					t.Errorf("<cmdline> kept with %q", c)
				}
				assertOnlyOwnedChanged(t, in, out)
			},
		},
		{
			name: "the console log is opened for appending, only the first file log",
			xml:  dom("", "", "\n    <serial type=\"pty\"/>\n    <serial type=\"file\"><source path=\"/l\" append=\"off\"/></serial>\n    <serial type=\"file\"><source path=\"/m\"/></serial>"),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				ss := find(t, out, "/domain/devices/serial/source")
				if len(ss) != 2 || ss[0].SelectAttrValue("append", "") != "on" || ss[1].SelectAttr("append") != nil {
					t.Fatalf("want append=on on /l only:\n%s", out)
				}
				final, err := FinalDomain(out)
				if err != nil {
					t.Fatal(err)
				}
				if s := find(t, final, "/domain/devices/serial/source"); s[0].SelectAttrValue("append", "") != "on" {
					t.Errorf("the final domain truncates the installer's log:\n%s", final)
				}
			},
		},
		{
			name: "serial without port is ttyS0",
			xml:  dom("", "", "\n    <serial type=\"file\"><source path=\"/l\"/><target/></serial>"),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "ks=x console=ttyS0" {
					t.Errorf("cmdline = %q", c)
				}
			},
		},
		{
			name: "serial without target is ttyS0",
			xml:  dom("", "", "\n    <serial type=\"file\"><source path=\"/l\"/></serial>"),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "ks=x console=ttyS0" {
					t.Errorf("cmdline = %q", c)
				}
			},
		},
		{
			name: "ports numbered as libvirt does: second portless serial is ttyS1",
			xml:  dom("", "", "\n    <serial type=\"pty\"/>\n    <serial type=\"file\"><source path=\"/l\"/></serial>"),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "ks=x console=ttyS1" {
					t.Errorf("cmdline = %q", c)
				}
			},
		},
		{
			name: "only a pty serial on port 2: ttyS2",
			xml:  dom("", "", "\n    <serial type=\"pty\"><target type=\"isa-serial\" port=\"2\"/></serial>"),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "ks=x console=ttyS2" {
					t.Errorf("cmdline = %q", c)
				}
				if len(find(t, out, "/domain/devices/serial")) != 1 {
					t.Errorf("serial added to a domain that has one")
				}
			},
		},
		{
			name: "the file serial wins over an earlier pty",
			xml:  dom("", "", "\n    <serial type=\"pty\"><target port=\"0\"/></serial>\n    <serial type=\"file\"><source path=\"/l\"/><target port=\"3\"/></serial>"),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "ks=x console=ttyS3" {
					t.Errorf("cmdline = %q", c)
				}
			},
		},
		{
			name: "a usb-serial is not a ttyS: no console=, nothing added",
			xml:  dom("", "", "\n    <serial type=\"pty\"><target type=\"usb-serial\" port=\"0\"/></serial>"),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "ks=x" {
					t.Errorf("cmdline = %q", c)
				}
				if len(find(t, out, "/domain/devices/serial")) != 1 {
					t.Errorf("serial added to a domain that has one")
				}
			},
		},
		{
			name: "the user's exact console token is not repeated, it moves last",
			xml:  dom("", "", fileSerial1),
			in:   ekiInstall("console=tty0 console=ttyS1 ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "console=tty0 ks=x console=ttyS1" {
					t.Errorf("cmdline = %q", c)
				}
			},
		},
		{
			name: "the user's options on the real port are kept; a port the domain lacks is dropped",
			xml:  dom("", "", fileSerial1),
			in:   ekiInstall("console=ttyS1,115200n8 console=ttyS0 ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if c, _ := cmdlineOf(t, out); c != "ks=x console=ttyS1,115200n8" {
					t.Errorf("cmdline = %q", c)
				}
			},
		},
		{
			name: "no on_reboot/on_poweroff: created after <clock>, removed again by FinalDomain",
			xml:  dom("", "", fileSerial1),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				want := "  <clock offset=\"utc\"/>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n  <devices>"
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("output does not contain %q:\n%s", want, out)
				}
				m := meta(t, out)
				if m.OrigOnReboot != "" || m.OrigOnPoweroff != "" || bytes.Contains(out, []byte("orig-on-")) {
					t.Errorf("originals recorded for absent elements: %+v", m)
				}
				final, err := FinalDomain(out)
				if err != nil {
					t.Fatal(err)
				}
				if len(find(t, final, "/domain/on_reboot")) != 0 || len(find(t, final, "/domain/on_poweroff")) != 0 {
					t.Errorf("final domain keeps lifecycle elements the original did not have")
				}
				assertOnlyOwnedChanged(t, in, final)
			},
		},
		{
			name: "on_reboot preserve is recorded and restored",
			xml:  dom("\n  <on_poweroff>restart</on_poweroff>\n  <on_reboot>preserve</on_reboot>", "", fileSerial1),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				m := meta(t, out)
				if m.OrigOnReboot != "preserve" || m.OrigOnPoweroff != "restart" {
					t.Errorf("meta = %+v", m)
				}
				final, err := FinalDomain(out)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(final, []byte("<on_poweroff>restart</on_poweroff>\n  <on_reboot>preserve</on_reboot>")) {
					t.Errorf("originals not restored:\n%s", final)
				}
			},
		},
		{
			name: "catalog kernel without initrd drops the domain's initrd and root",
			xml:  dom("", "\n    <initrd>/boot/initrd</initrd>\n    <root>/dev/sda1</root>\n    <dtb>/boot/x.dtb</dtb>", fileSerial1),
			in:   Install{Kernel: "/srv/k", Cmdline: "ks=x", Mode: ModeBake},
			check: func(t *testing.T, in, out []byte) {
				if osText(t, out, "kernel") != "/srv/k" || len(find(t, out, "/domain/os/initrd")) != 0 || len(find(t, out, "/domain/os/root")) != 0 {
					t.Errorf("os not rewritten:\n%s", out)
				}
				if osText(t, out, "dtb") != "/boot/x.dtb" {
					t.Errorf("dtb changed by the installer rewrite")
				}
				final, err := FinalDomain(out)
				if err != nil {
					t.Fatal(err)
				}
				if len(find(t, final, "/domain/os/dtb")) != 0 || len(find(t, final, "/domain/os/kernel")) != 0 {
					t.Errorf("final domain keeps kernel or dtb:\n%s", final)
				}
			},
		},
		{
			name: "no XML declaration stays without one",
			xml:  dom("", "", fileSerial1),
			in:   ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if !bytes.HasPrefix(out, []byte("<domain type=\"kvm\">\n  <name>t1</name>\n  <metadata>\n    <kscloud:install")) {
					t.Errorf("output starts %q", out[:min(len(out), 80)])
				}
			},
		},
		{
			name: "single-quoted (libvirt) input stays single-quoted with libvirt's escaping",
			xml:  []byte("<domain type='kvm'>\n  <name>q</name>\n  <description>it's \"x\"</description>\n  <os>\n    <type>hvm</type>\n    <kernel>/k</kernel>\n  </os>\n</domain>\n"),
			in:   Install{Cmdline: `a='b' c="d"`, Mode: ModeBake, VNC: vnc},
			check: func(t *testing.T, in, out []byte) {
				for _, s := range []string{"<domain type='kvm'>", "<description>it&apos;s &quot;x&quot;</description>", "<graphics type='vnc' port='-1'", "<cmdline>a=&apos;b&apos; c=&quot;d&quot;</cmdline>"} {
					if !bytes.Contains(out, []byte(s)) {
						t.Errorf("output lacks %q:\n%s", s, out)
					}
				}
				if bytes.Contains(out, []byte(`="`)) {
					t.Errorf("double quotes in a single-quoted document:\n%s", out)
				}
				// No devices element before: one was created with the graphics.
				if len(find(t, out, "/domain/devices/graphics")) != 1 {
					t.Errorf("no graphics")
				}
				validateBytes(t, out)
			},
		},
		{
			name: "attribute and text character references survive",
			xml: []byte("<domain type='kvm'>\n  <name>r</name>\n  <description>a&#13;b</description>\n" +
				"  <os>\n    <type>hvm</type>\n    <kernel>/k</kernel>\n  </os>\n  <frob note='x&#10;y&#9;z'/>\n</domain>\n"),
			in: ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				doc := mustParse(t, out)
				if v := doc.FindElement("/domain/frob").SelectAttrValue("note", ""); v != "x\ny\tz" {
					t.Errorf("attribute reads back as %q", v)
				}
				if v := doc.FindElement("/domain/description").Text(); v != "a\rb" {
					t.Errorf("text reads back as %q", v)
				}
				if !bytes.Contains(out, []byte(`note="x&#xA;y&#x9;z"`)) {
					t.Errorf("newline and tab not written as character references:\n%s", out)
				}
			},
		},
		{
			name: "kscloud metadata under another prefix is recognised",
			xml: bytes.Replace(dom("\n  <on_reboot>destroy</on_reboot>", "", fileSerial1), []byte("<os>"),
				[]byte("<metadata>\n    <k:install xmlns:k=\"https://kscloud.dev/xmlns/install/1\" mode=\"bake\" phase=\"install\" orig-on-reboot=\"preserve\" vnc-added=\"no\" serial-added=\"no\"/>\n  </metadata>\n  <os>"), 1),
			in: ekiInstall("ks=x"),
			check: func(t *testing.T, in, out []byte) {
				if bytes.Contains(out, []byte("kscloud:install")) || !bytes.Contains(out, []byte("<k:install xmlns:k=")) {
					t.Errorf("second metadata element or prefix changed:\n%s", out)
				}
				if m := meta(t, out); m.OrigOnReboot != "preserve" {
					t.Errorf("original on_reboot taken from the domain instead of the metadata: %+v", m)
				}
			},
		},
		{
			name: "compact document: new elements without indentation",
			xml:  []byte(`<domain type="kvm"><name>c</name><os><type>hvm</type><kernel>/k</kernel></os><devices></devices></domain>`),
			in:   Install{Cmdline: "ks=x", Mode: ModeBake, VNC: vnc, SerialLog: "/l"},
			check: func(t *testing.T, in, out []byte) {
				if bytes.Contains(out, []byte("\n")) {
					t.Errorf("indentation added to a compact document:\n%s", out)
				}
				want := `<devices><serial type="file"><source path="/l" append="on"/><target port="0"/></serial><graphics type="vnc" port="-1" autoport="yes" listen="127.0.0.1" passwd="pw"><listen type="address" address="127.0.0.1"/></graphics></devices>`
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("output lacks %s:\n%s", want, out)
				}
			},
		},
		{
			name: "tab-indented document: new elements indented with tabs",
			xml:  []byte("<domain type=\"kvm\">\n\t<name>c</name>\n\t<os>\n\t\t<type>hvm</type>\n\t\t<kernel>/k</kernel>\n\t</os>\n\t<devices>\n\t</devices>\n</domain>\n"),
			in:   Install{Cmdline: "ks=x", Mode: ModeBake, SerialLog: "/l"},
			check: func(t *testing.T, in, out []byte) {
				want := "\t<devices>\n\t\t<serial type=\"file\">\n\t\t\t<source path=\"/l\" append=\"on\"/>\n\t\t\t<target port=\"0\"/>\n\t\t</serial>\n\t</devices>"
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
				if !bytes.Contains(out, []byte("\t<metadata>\n\t\t<kscloud:install ")) {
					t.Errorf("metadata not tab-indented:\n%s", out)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := RewriteInstall(tt.xml, tt.in)
			if err != nil {
				t.Fatalf("RewriteInstall: %v", err)
			}
			tt.check(t, tt.xml, out)
			again, err := RewriteInstall(out, tt.in)
			if err != nil {
				t.Fatalf("second RewriteInstall: %v", err)
			}
			if !bytes.Equal(again, out) {
				t.Errorf("second RewriteInstall changed the output:\n%s", diff(out, again))
			}
			final, err := FinalDomain(out)
			if err != nil {
				t.Fatalf("FinalDomain: %v", err)
			}
			finalAgain, err := FinalDomain(final)
			if err != nil {
				t.Fatalf("second FinalDomain: %v", err)
			}
			if !bytes.Equal(finalAgain, final) {
				t.Errorf("second FinalDomain changed the output:\n%s", diff(final, finalAgain))
			}
		})
	}
}

// TestRewriteAgain covers a second RewriteInstall with a different request.
func TestRewriteAgain(t *testing.T) {
	orig := dom("", "", "")
	withVNC := ekiInstall("ks=x")
	withVNC.VNC = &VNC{Listen: "127.0.0.1", Password: "first"}
	first, err := RewriteInstall(orig, withVNC)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a new password does not replace the console already added", func(t *testing.T) {
		in := withVNC
		in.VNC = &VNC{Listen: "127.0.0.1", Password: "second"}
		out, err := RewriteInstall(first, in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, first) {
			t.Errorf("output changed:\n%s", diff(first, out))
		}
		if v, ok, _ := VNCGraphics(out); !ok || v.Password != "first" {
			t.Errorf("password = %q, ok %v", v.Password, ok)
		}
	})

	t.Run("a console no longer asked for is removed", func(t *testing.T) {
		out, err := RewriteInstall(first, ekiInstall("ks=x"))
		if err != nil {
			t.Fatal(err)
		}
		direct, err := RewriteInstall(orig, ekiInstall("ks=x"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, direct) {
			t.Errorf("rewrite without VNC of the VNC rewrite differs from the direct rewrite:\n%s", diff(direct, out))
		}
	})

	t.Run("a serial log no longer given is removed", func(t *testing.T) {
		in := Install{Cmdline: "ks=x", Mode: ModeBake}
		out, err := RewriteInstall(first, in)
		if err != nil {
			t.Fatal(err)
		}
		direct, err := RewriteInstall(orig, in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, direct) {
			t.Errorf("differs from the direct rewrite:\n%s", diff(direct, out))
		}
		if len(find(t, out, "/domain/devices/serial")) != 0 {
			t.Errorf("serial kept")
		}
	})

	t.Run("re-installing a final domain", func(t *testing.T) {
		sample := readFile(t, sample342)
		in := catalogInstall("ks=x")
		in.VNC = withVNC.VNC
		inst, err := RewriteInstall(sample, in)
		if err != nil {
			t.Fatal(err)
		}
		final, err := FinalDomain(inst)
		if err != nil {
			t.Fatal(err)
		}
		// The final domain has no kernel of its own any more.
		if _, err := RewriteInstall(final, withVNC); !errors.Is(err, ErrNoKernel) {
			t.Errorf("EKI re-install of a final domain: err = %v, want ErrNoKernel", err)
		}
		again, err := RewriteInstall(final, in)
		if err != nil {
			t.Fatal(err)
		}
		m := meta(t, again)
		if m.Phase != PhaseInstall || m.OrigOnReboot != "restart" || !m.VNCAdded {
			t.Errorf("meta = %+v", m)
		}
		final2, err := FinalDomain(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(final2, final) {
			t.Errorf("second final differs from the first:\n%s", diff(final, final2))
		}
	})
}

func TestFinalDomainBoot(t *testing.T) {
	tests := []struct {
		name     string
		xml      []byte
		wantBoot []string // dev attributes of <os>/<boot> in the final domain
	}{
		{"no boot anywhere: boot from hd", dom("", "", fileSerial1), []string{"hd"}},
		{"os has a boot: kept, no hd added", dom("", "\n    <boot dev=\"cdrom\"/>", fileSerial1), []string{"cdrom"}},
		{"a device has a boot order: nothing added", bytes.Replace(dom("", "", fileSerial1), []byte(`<target dev="vda" bus="virtio"/>`), []byte(`<target dev="vda" bus="virtio"/><boot order="1"/>`), 1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := RewriteInstall(tt.xml, ekiInstall("ks=x"))
			if err != nil {
				t.Fatal(err)
			}
			final, err := FinalDomain(inst)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range find(t, final, "/domain/os/boot") {
				got = append(got, b.SelectAttrValue("dev", ""))
			}
			if !slices.Equal(got, tt.wantBoot) {
				t.Errorf("boot devs = %q, want %q", got, tt.wantBoot)
			}
			for _, tag := range []string{"kernel", "initrd", "cmdline", "root", "dtb"} {
				if len(find(t, final, "/domain/os/"+tag)) != 0 {
					t.Errorf("final domain keeps <%s>", tag)
				}
			}
		})
	}
}

func TestFinalDomainNotOurs(t *testing.T) {
	out, err := FinalDomain(readFile(t, sample342))
	if !errors.Is(err, ErrNotInstaller) || out != nil {
		t.Fatalf("got %d bytes, err %v; want nil, ErrNotInstaller", len(out), err)
	}
	assertOneLine(t, err)
	if !strings.Contains(err.Error(), `"i-3A2B41C0"`) {
		t.Errorf("error %q does not name the domain", err)
	}
}

func TestReadMeta(t *testing.T) {
	sample := readFile(t, sample342)
	if m, ok, err := ReadMeta(sample); err != nil || ok || m != (Meta{}) {
		t.Errorf("ReadMeta(sample) = %+v, %v, %v; want none", m, ok, err)
	}
	in := catalogInstall("ks=x")
	in.VNC = &VNC{Listen: "::1", Password: "pw"}
	out, err := RewriteInstall(sample, in)
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{Mode: ModeInPlace, Installer: "test", Phase: PhaseInstall, OrigOnReboot: "restart", OrigOnPoweroff: "destroy", VNCAdded: true}
	if got := meta(t, out); got != want {
		t.Errorf("ReadMeta = %+v, want %+v", got, want)
	}
}

func TestDomainName(t *testing.T) {
	if n, err := DomainName(readFile(t, sample342)); err != nil || n != "i-3A2B41C0" {
		t.Errorf("DomainName = %q, %v", n, err)
	}
	_, err := DomainName([]byte(`<domain><os/></domain>`))
	if !errors.Is(err, ErrInvalidDomain) || !strings.Contains(err.Error(), "no <name>") {
		t.Errorf("DomainName without name: err = %v", err)
	}
}

func TestVNCGraphics(t *testing.T) {
	live := func(devices string) []byte {
		return []byte("<domain type='kvm' id='3'><name>i-1</name><os><type>hvm</type></os><devices>" + devices + "</devices></domain>")
	}
	tests := []struct {
		name       string
		xml        []byte
		listen     string
		port       int
		passwd     string
		ok, wantEr bool
	}{
		{"live with password", live(`<graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1' passwd='pw'><listen type='address' address='127.0.0.1'/></graphics>`), "127.0.0.1", 5901, "pw", true, false},
		{"non-secure dump", live(`<graphics type='vnc' port='5902' autoport='yes' listen='::1'><listen type='address' address='::1'/></graphics>`), "::1", 5902, "", true, false},
		{"listen element only", live(`<graphics type='vnc' port='5903'><listen type='network' network='x'/><listen type='address' address='10.0.0.1'/></graphics>`), "10.0.0.1", 5903, "", true, false},
		{"not started", live(`<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>`), "127.0.0.1", -1, "", true, false},
		{"first vnc after spice", live(`<graphics type='spice' port='5910'/><graphics type='vnc' port='5904' listen='127.0.0.2'/>`), "127.0.0.2", 5904, "", true, false},
		{"no graphics", live(``), "", 0, "", false, false},
		{"no devices", []byte(`<domain><name>x</name><os/></domain>`), "", 0, "", false, false},
		{"bad port", live(`<graphics type='vnc' port='vnc'/>`), "", 0, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok, err := VNCGraphics(tt.xml)
			listen, port, pw := v.Listen, v.Port, v.Password
			if tt.wantEr {
				if !errors.Is(err, ErrInvalidDomain) {
					t.Errorf("err = %v, want ErrInvalidDomain", err)
				}
				return
			}
			if err != nil || listen != tt.listen || port != tt.port || pw != tt.passwd || ok != tt.ok {
				t.Errorf("VNCGraphics = %q, %d, %q, %v, %v; want %q, %d, %q, %v", listen, port, pw, ok, err, tt.listen, tt.port, tt.passwd, tt.ok)
			}
		})
	}
}

// TestEtreeSelectsIgnoreNamespaces documents why the package matches element
// names itself: etree's SelectElement matches any prefix, so a foreign
// <x:os> would be taken for <os>.
func TestEtreeSelectsIgnoreNamespaces(t *testing.T) {
	b := []byte(`<domain xmlns:x="urn:x"><name>n</name><x:os><x:kernel>/evil</x:kernel></x:os><os><type>hvm</type><kernel>/k</kernel></os></domain>`)
	if got := mustParse(t, b).Root().SelectElement("os"); got == nil || got.Space != "x" {
		t.Fatalf("etree behaviour changed: SelectElement(\"os\") = %v", got)
	}
	out, err := RewriteInstall(b, Install{Kernel: "/srv/k", Mode: ModeBake})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`<x:os><x:kernel>/evil</x:kernel></x:os>`)) || osText(t, out, "kernel") != "/srv/k" {
		t.Errorf("the foreign <x:os> was rewritten or the real one was not:\n%s", out)
	}
}

func TestFirstQuote(t *testing.T) {
	tests := []struct {
		in   string
		want byte
	}{
		{`<domain type='kvm'>`, '\''},
		{`<domain type="kvm">`, '"'},
		{`<domain type = 'kvm'>`, '\''},
		{"<?xml version=\"1.0\"?>\n<!-- a='b' --><domain type='kvm'>", '\''},
		{`<domain><name>a='b'</name><os type="x"/>`, '"'},
		{`<domain><![CDATA[ <x a='1'> ]]><os type="x"/>`, '"'},
		{`<domain></domain>`, '"'},
		{`<domain><os/><x:y z='1'/>`, '\''},
	}
	for _, tt := range tests {
		if got := firstQuote([]byte(tt.in)); got != tt.want {
			t.Errorf("firstQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

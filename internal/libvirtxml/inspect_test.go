package libvirtxml

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestVNCAddr(t *testing.T) {
	for _, tt := range []struct {
		v         VNC
		addr, url string
	}{
		{VNC{Listen: "127.0.0.1", Port: 5901}, "127.0.0.1:5901", "vnc://127.0.0.1:5901"},
		{VNC{Listen: "::1", Port: 5902}, "[::1]:5902", "vnc://[::1]:5902"},
		{VNC{Listen: "fd00:1::5", Port: 5903}, "[fd00:1::5]:5903", "vnc://[fd00:1::5]:5903"},
	} {
		if a, u := tt.v.Addr(), tt.v.URL(); a != tt.addr || u != tt.url {
			t.Errorf("%+v: Addr %q URL %q, want %q %q", tt.v, a, u, tt.addr, tt.url)
		}
	}
	// Read from a live domain listening on IPv6 loopback.
	v, ok, err := VNCGraphics([]byte(`<domain type='kvm'><name>i-1</name><os><type>hvm</type></os><devices>` +
		`<graphics type='vnc' port='5907' autoport='yes' listen='::1' passwd='abcdefgh'><listen type='address' address='::1'/></graphics>` +
		`</devices></domain>`))
	if err != nil || !ok || v.Addr() != "[::1]:5907" || v.Password != "abcdefgh" {
		t.Fatalf("VNCGraphics = %+v %v %v: Addr %q", v, ok, err, v.Addr())
	}
}

// TestVNCJSON: the type is nchookd's status "vnc" object; its keys stay.
func TestVNCJSON(t *testing.T) {
	b, err := json.Marshal(VNC{Listen: "::1", Password: "pw"})
	if err != nil || string(b) != `{"listen":"::1","password":"pw"}` {
		t.Fatalf("%s %v", b, err)
	}
	b, _ = json.Marshal(VNC{Listen: "127.0.0.1", Port: 5900, Password: "pw"})
	if string(b) != `{"listen":"127.0.0.1","port":5900,"password":"pw"}` {
		t.Fatalf("%s", b)
	}
}

func TestDirectBoot(t *testing.T) {
	k, i, err := DirectBoot([]byte("<domain><name>i-1</name><os><type>hvm</type><kernel>\n /var/lib/eucalyptus/instances/kernel </kernel><initrd>/i/ramdisk</initrd><cmdline>root=/dev/sda1</cmdline></os></domain>"))
	if err != nil || k != "/var/lib/eucalyptus/instances/kernel" || i != "/i/ramdisk" {
		t.Fatalf("DirectBoot = %q %q %v", k, i, err)
	}
	k, i, err = DirectBoot([]byte("<domain><name>i-1</name><os><type>hvm</type><boot dev='hd'/></os></domain>"))
	if err != nil || k != "" || i != "" {
		t.Fatalf("disk boot: %q %q %v", k, i, err)
	}
	if _, _, err := DirectBoot([]byte("<domain><name>i-1</name></domain>")); !errors.Is(err, ErrInvalidDomain) {
		t.Fatalf("no <os>: %v", err)
	}
}

func TestSerialLog(t *testing.T) {
	dom := func(devices string) []byte {
		return []byte("<domain><name>i-1</name><os><type>hvm</type></os><devices>" + devices + "</devices></domain>")
	}
	for _, tt := range []struct {
		name, devices, want string
	}{
		{"file serial", `<serial type='file'><source path='/var/log/c.log' append='on'/><target port='0'/></serial>`, "/var/log/c.log"},
		{"pty first, then file (Eucalyptus)", `<serial type='pty'><target port='0'/></serial><serial type='file'><source path='/i/console.log'/><target port='1'/></serial>`, "/i/console.log"},
		{"file serial without a path", `<serial type='file'><source/></serial><serial type='file'><source path='/b.log'/></serial>`, "/b.log"},
		{"pty only", `<serial type='pty'><target port='0'/></serial>`, ""},
		{"no serial", ``, ""},
	} {
		got, err := SerialLog(dom(tt.devices))
		if err != nil || got != tt.want {
			t.Errorf("%s: %q %v, want %q", tt.name, got, err, tt.want)
		}
	}
	if got, err := SerialLog([]byte("<domain><name>x</name><os/></domain>")); err != nil || got != "" {
		t.Errorf("no devices: %q %v", got, err)
	}
	if _, err := SerialLog([]byte("<domain><os/><devices></domain>")); !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("not well-formed: %v", err)
	}
}

// The CONTEXT CD-ROM is the file-backed CD-ROM disk.N with the highest N
// (OpenNebula writes it after every disk), under any <devices>.
func TestContextCDROM(t *testing.T) {
	dom := func(devs string) []byte {
		return []byte(`<domain type='kvm'><name>one-42</name><os><type>hvm</type></os>` + devs + `</domain>`)
	}
	cd := func(src string) string {
		return `<disk type='file' device='cdrom'><source file='` + src + `'/><target dev='hda'/></disk>`
	}
	for _, tc := range []struct {
		devs string
		want string
		ok   bool
	}{
		{`<devices>` + cd("/ds/0/42/disk.1") + `</devices>`, "/ds/0/42/disk.1", true},
		{`<devices>` + cd("/ds/0/42/disk.3") + cd("/ds/0/42/disk.12") + `</devices><devices>` + cd("/ds/0/42/disk.2") + `</devices>`, "/ds/0/42/disk.12", true},
		{`<devices>` + cd("/ds/0/42/disk.1") + `</devices><devices>` + cd("/ds/0/42/disk.4") + `</devices>`, "/ds/0/42/disk.4", true},
		{`<devices><disk type='file' device='disk'><source file='/ds/0/42/disk.1'/><target dev='vda'/></disk></devices>`, "", false},
		{`<devices><disk type='block' device='cdrom'><source dev='/dev/sr0'/><target dev='hda'/></disk></devices>`, "", false},
		{`<devices>` + cd("/ds/0/42/installer.iso") + cd("/ds/0/42/disk.x") + cd("/ds/0/42/disk.") + cd("/ds/0/42/disk.-1") + `</devices>`, "", false},
		{`<devices/>`, "", false},
	} {
		got, ok, err := ContextCDROM(dom(tc.devs))
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("%s: %q %v %v, want %q %v", tc.devs, got, ok, err, tc.want, tc.ok)
		}
	}
	if _, _, err := ContextCDROM(dom(`<devices>` + cd("/a/disk.1") + cd("/b/disk.1") + `</devices>`)); err == nil || !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("two disk.1: %v", err)
	}
	if _, _, err := ContextCDROM([]byte("<domain")); !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("not XML: %v", err)
	}
}

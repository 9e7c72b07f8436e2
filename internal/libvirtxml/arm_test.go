package libvirtxml

import (
	"strings"
	"testing"
)

// TestRewriteInstallArmConsole: on an aarch64 domain the serial port is a
// PL011 (ttyAMA): the console token is console=ttyAMA<N>, a
// system-serial target counts, and a user's console=ttyAMA<k> for a port
// the domain lacks is dropped; x86 tokens (ttyS) are the user's business.
func TestRewriteInstallArmConsole(t *testing.T) {
	for _, c := range []struct{ serial, cmdline, want string }{
		{`<serial type="file"><source path="/l"/><target type="system-serial" port="0"><model name="pl011"/></target></serial>`, "inst.ks=file:/ks.cfg", "inst.ks=file:/ks.cfg console=ttyAMA0"},
		{`<serial type="file"><source path="/l"/><target port="0"/></serial>`, "console=ttyAMA3 console=ttyAMA0,115200 x", "x console=ttyAMA0,115200"},
		{``, "console=ttyS0", "console=ttyS0 console=ttyAMA0"}, // serial added: port 0
	} {
		dom := `<domain type="qemu"><name>a</name><os><type arch="aarch64" machine="virt">hvm</type></os><devices>` + c.serial + `</devices></domain>`
		out, err := RewriteInstall([]byte(dom), Install{Kernel: "/k", Cmdline: c.cmdline, Mode: "bake", SerialLog: "/l"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "<cmdline>"+c.want+"</cmdline>") {
			t.Errorf("%s + %q:\n%s\nwant <cmdline>%s</cmdline>", c.serial, c.cmdline, out, c.want)
		}
	}
}

package libvirtxml

import (
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// TestRewriteKeepsDomainType: the cloud chose the accelerator (kvm on a
// KVM node, qemu where it fell back to TCG; Xen and others elsewhere);
// neither the installer rewrite nor the final rewrite changes it, nor the
// firmware (<os firmware=…>, <loader>, <nvram>) nor <cpu>.
func TestRewriteKeepsDomainType(t *testing.T) {
	for _, typ := range []string{"kvm", "qemu"} {
		in := `<domain type="` + typ + `">
  <name>i-typ</name>
  <memory unit="MiB">512</memory>
  <os firmware="efi">
    <type arch="x86_64" machine="pc-q35-7.2">hvm</type>
    <loader readonly="yes" type="pflash">/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram>/var/lib/libvirt/qemu/nvram/i-typ_VARS.fd</nvram>
    <boot dev="hd"/>
  </os>
  <cpu mode="host-passthrough"/>
  <devices>
    <disk type="file" device="disk"><source file="/d.img"/><target dev="vda" bus="virtio"/></disk>
    <serial type="file"><source path="/c.log"/><target port="0"/></serial>
  </devices>
</domain>`
		inst, err := RewriteInstall([]byte(in), Install{Kernel: "/k", Initrd: "/i", Cmdline: "inst.ks=file:/ks.cfg", SerialLog: "/c.log", Mode: ModeInPlace,
			VNC: &VNC{Listen: "127.0.0.1", Password: "pw"}})
		if err != nil {
			t.Fatal(err)
		}
		final, err := FinalDomain(inst)
		if err != nil {
			t.Fatal(err)
		}
		for name, out := range map[string][]byte{"install": inst, "final": final} {
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(out); err != nil {
				t.Fatal(err)
			}
			d := doc.SelectElement("domain")
			if got := d.SelectAttrValue("type", ""); got != typ {
				t.Errorf("%s %s: domain type became %q", typ, name, got)
			}
			os := d.SelectElement("os")
			if os.SelectAttrValue("firmware", "") != "efi" || os.SelectElement("loader") == nil || os.SelectElement("nvram") == nil {
				t.Errorf("%s %s: firmware changed:\n%s", typ, name, out)
			}
			if c := d.SelectElement("cpu"); c == nil || c.SelectAttrValue("mode", "") != "host-passthrough" {
				t.Errorf("%s %s: cpu changed", typ, name)
			}
			if !strings.Contains(string(out), `machine="pc-q35-7.2"`) {
				t.Errorf("%s %s: machine changed", typ, name)
			}
		}
	}
}

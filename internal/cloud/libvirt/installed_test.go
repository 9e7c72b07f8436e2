package libvirt

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/beevik/etree"

	"github.com/kscloud/kscloud/internal/libvirtxml"
)

// canonical re-indents a domain and drops its <metadata>.
func canonical(t *testing.T, x []byte) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveCData = true
	if err := doc.ReadFromBytes(x); err != nil {
		t.Fatal(err)
	}
	if m := doc.Root().SelectElement("metadata"); m != nil {
		doc.Root().RemoveChild(m)
	}
	doc.Indent(2)
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestInstalledXML: the definition an install in place leaves behind is
// libvirtxml.FinalDomain's rewrite of the installer's domain, and it is
// the disk-boot domain the provider would have written by hand: the same
// devices, firmware and power actions, no installer kernel, no VNC, plus
// nchookd's metadata saying phase "final".
func TestInstalledXML(t *testing.T) {
	validate, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatal("virt-xml-validate not found (libxml2-utils, libvirt-clients)")
	}
	for name, m := range map[string]Resolved{
		"tcg-bios":         {Type: "qemu", Arch: "x86_64", Boot: "bios"},
		"kvm-uefi":         {Type: "kvm", Arch: "x86_64", Boot: "uefi", CPU: "host-passthrough"},
		"tcg-aarch64-uefi": {Type: "qemu", Arch: "aarch64", Machine: "virt", Boot: "uefi"},
	} {
		t.Run(name, func(t *testing.T) {
			s := domainSpec{Name: "i-0123abcd", UUID: "6b1c9a43-2c8e-4c5e-9d77-0d7a1b2c3d4e", MemoryMB: 768, CPUs: 1,
				Disks: []string{"/var/lib/kscloud/volumes/vol-1.img"}, DiskFormat: []string{"raw"},
				Console: "/var/lib/kscloud/local/console/i-0123abcd.log", Network: "user", MAC: "52:54:00:12:34:56", Machine: m}
			base, err := baseXML(s)
			if err != nil {
				t.Fatal(err)
			}
			in := libvirtxml.Install{Kernel: "/srv/f40/vmlinuz", Initrd: "/srv/f40/initrd.img", Cmdline: "inst.ks=http://10.0.2.2/ks.cfg",
				Mode: libvirtxml.ModeInPlace, SerialLog: s.Console, VNC: &libvirtxml.VNC{Listen: "127.0.0.1", Password: "abcdefgh"}}
			final, err := installedXML(base, in)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canonical(t, final), canonical(t, []byte(base)); got != want {
				t.Fatalf("installed system's domain differs from the disk-boot domain:\n%s\nwant:\n%s", got, want)
			}
			meta, ok, err := libvirtxml.ReadMeta(final)
			if err != nil || !ok || meta.Phase != libvirtxml.PhaseFinal || meta.Mode != libvirtxml.ModeInPlace {
				t.Fatalf("metadata %+v %v %v", meta, ok, err)
			}
			if k, i, _ := libvirtxml.DirectBoot(final); k != "" || i != "" {
				t.Fatalf("installer kernel left: %q %q", k, i)
			}
			if _, ok, _ := libvirtxml.VNCGraphics(final); ok {
				t.Fatal("the install's VNC console left in the installed system")
			}
			tmp := filepath.Join(t.TempDir(), "d.xml")
			os.WriteFile(tmp, final, 0o644)
			if out, err := exec.Command(validate, tmp, "domain").CombinedOutput(); err != nil {
				t.Fatalf("virt-xml-validate: %v: %s", err, out)
			}
		})
	}
}

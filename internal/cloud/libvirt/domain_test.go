package libvirt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/libvirtxml"
)

// TestInstallerConsoleGolden: the installer domain (the disk-boot domain
// after libvirtxml.RewriteInstall) has a serial console its kernel command
// line names: ttyS0 on x86_64 (isa-serial), ttyAMA0 on aarch64 (the virt
// machine's PL011, a system-serial target). Compared with testdata/golden
// and validated with libvirt's schema.
func TestInstallerConsoleGolden(t *testing.T) {
	validate, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatal("virt-xml-validate not found (libxml2-utils, libvirt-clients)")
	}
	for _, c := range []struct {
		name, console, notConsole, target string
		m                                 Resolved
	}{
		{"installer-tcg-x86_64", "console=ttyS0", "ttyAMA", `<target port="0"/>`, Resolved{Type: "qemu", Arch: "x86_64", Boot: "bios"}},
		{"installer-tcg-aarch64", "console=ttyAMA0", "ttyS", `<target type="system-serial" port="0">`, Resolved{Type: "qemu", Arch: "aarch64", Machine: "virt", Boot: "uefi"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := domainSpec{Name: "i-0123abcd", UUID: "6f1c4a52-8e0b-4c57-9b1e-2d3f4a5b6c7d", MemoryMB: 1024, CPUs: 2,
				Disks: []string{"/var/lib/kscloud/volumes/vol-1.img"}, DiskFormat: []string{"raw"},
				Console: "/var/lib/kscloud/local/console/i-0123abcd.log", Network: "user", MAC: "52:54:00:12:34:56", Machine: c.m}
			base, err := baseXML(s)
			if err != nil {
				t.Fatal(err)
			}
			out, err := libvirtxml.RewriteInstall([]byte(base), libvirtxml.Install{Kernel: "/var/lib/kscloud/cache/vmlinuz", Initrd: "/var/lib/kscloud/cache/initrd.img",
				Cmdline: "ip=dhcp inst.ks=file:/ks.cfg", Mode: "bake", SerialLog: s.Console})
			if err != nil {
				t.Fatal(err)
			}
			got := string(out)
			path := filepath.Join("testdata", "golden", c.name+".xml")
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from %s:\n%s", c.name, path, got)
			}
			if !strings.Contains(got, "<cmdline>ip=dhcp inst.ks=file:/ks.cfg "+c.console+"</cmdline>") || strings.Contains(got, "console="+c.notConsole) {
				t.Fatalf("installer command line does not end in %s:\n%s", c.console, got)
			}
			if strings.Count(got, "<serial ") != 1 || !strings.Contains(got, c.target) {
				t.Fatalf("want one serial device with %s:\n%s", c.target, got)
			}
			tmp := filepath.Join(t.TempDir(), "d.xml")
			os.WriteFile(tmp, out, 0o644)
			if o, err := exec.Command(validate, tmp, "domain").CombinedOutput(); err != nil {
				t.Fatalf("virt-xml-validate: %v: %s", err, o)
			}
		})
	}
}

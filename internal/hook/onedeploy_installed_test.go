package hook

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/preboot"
)

// The wrapper alone (daemon down): a VM directory with nchookd's marker
// boots the disk; without it the VM installs; a forged marker of another
// VM is not this VM's.
func TestOneFallbackPlanInstalled(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "preboot", "testdata", "opennebula", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg := config.Default()
	cfg.Installer["fedora-40"] = config.Installer{Kernel: "/k", Initrd: "/i"}
	dom, vm := read("deployment-7.0.xml"), read("vm-userdata.xml")
	name, err := libvirtxml.DomainName(dom)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Hook.InstancesRoot = []string{filepath.Dir(dir)}
	phase := func() string {
		t.Helper()
		p, err := oneFallbackPlan(cfg, vm, nil, dom, dir)
		if err != nil {
			t.Fatal(err)
		}
		m, _, _ := libvirtxml.ReadMeta(p.DomainXML)
		if m.Phase == libvirtxml.PhaseFinal && bytes.Contains(p.DomainXML, []byte("<kernel>")) {
			t.Fatalf("final with a kernel:\n%s", p.DomainXML)
		}
		return m.Phase
	}
	if got := phase(); got != libvirtxml.PhaseInstall {
		t.Fatalf("no marker: phase %q", got)
	}
	os.WriteFile(filepath.Join(dir, preboot.InstalledMarker), []byte(`{"instance":"one-999","mode":"in-place"}`), 0o644)
	if got := phase(); got != libvirtxml.PhaseInstall {
		t.Fatalf("another VM's marker: phase %q", got)
	}
	os.WriteFile(filepath.Join(dir, preboot.InstalledMarker), []byte(`{"instance":"`+name+`","mode":"in-place"}`), 0o644)
	if got := phase(); got != libvirtxml.PhaseFinal {
		t.Fatalf("marker: phase %q", got)
	}
}

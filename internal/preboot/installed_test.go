package preboot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/libvirtxml"
)

// The wrapper's own read of the marker (as the VM directory's owner).
func TestReadInstalledFile(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadInstalledFile(dir, "one-3"); ok || err != nil {
		t.Fatalf("no marker: ok=%v err=%v", ok, err)
	}
	p := filepath.Join(dir, InstalledMarker)
	os.WriteFile(p, []byte(`{"instance":"one-3","mode":"in-place"}`), 0o644)
	if m, ok, err := ReadInstalledFile(dir, "one-3"); !ok || err != nil || m.Mode != "in-place" {
		t.Fatalf("marker: %+v ok=%v err=%v", m, ok, err)
	}
	if _, ok, err := ReadInstalledFile(dir, "one-4"); ok || err == nil || !strings.Contains(err.Error(), InstalledMarker) {
		t.Fatalf("another VM's marker: ok=%v err=%v", ok, err)
	}
	os.Remove(p)
	os.Symlink("/etc/hostname", p)
	if _, ok, err := ReadInstalledFile(dir, "one-3"); ok || err == nil {
		t.Fatalf("symlink: ok=%v err=%v", ok, err)
	}
	os.Remove(p)
	os.WriteFile(p, []byte(strings.Repeat(" ", 8<<10)+`{"instance":"one-3","mode":"bake"}`), 0o644)
	if _, ok, err := ReadInstalledFile(dir, "one-3"); ok || err == nil {
		t.Fatalf("oversized: ok=%v err=%v", ok, err)
	}
}

func TestInstalledPlan(t *testing.T) {
	dom := []byte(`<domain type="qemu"><name>one-3</name><memory>65536</memory><os><type>hvm</type><kernel>/k</kernel><cmdline>x</cmdline></os><devices><disk type="file" device="disk"><source file="/v/3/disk.0"/><target dev="vda"/></disk></devices><devices><channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel></devices></domain>`)
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{"/v"}
	if _, err := InstalledPlan(config.Default(), dom, "/v/3", "one-3", "bake"); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("outside the roots: %v", err)
	}
	p, err := InstalledPlan(cfg, dom, "/v/3", "one-3", "bake")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Changed || strings.Contains(string(p.DomainXML), "<kernel>") || p.Mode != "bake" {
		t.Fatalf("%+v\n%s", p.Outcome, p.DomainXML)
	}
	if strings.Count(string(p.DomainXML), "<devices>") != 1 || !strings.Contains(string(p.DomainXML), "guest_agent") {
		t.Fatalf("OpenNebula's two <devices> not merged:\n%s", p.DomainXML)
	}
	if m, ok, _ := libvirtxml.ReadMeta(p.DomainXML); !ok || m.Phase != libvirtxml.PhaseFinal {
		t.Fatalf("meta %+v", m)
	}
	if _, err := InstalledPlan(cfg, []byte("<domain>"), "/v/3", "one-3", "bake"); err == nil || !strings.Contains(err.Error(), "one-3") {
		t.Fatalf("bad XML: %v", err)
	}
}

package libvirt

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/internal/virt"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// realQemuCaps is libvirt 9.0's answer for type qemu on x86_64 (Debian 12,
// ovmf installed); kvmCaps is the same host as a KVM host answers: the
// domain type kvm and host-passthrough usable.
func realQemuCaps(t *testing.T) string {
	b, err := os.ReadFile("testdata/domcaps-qemu-x86_64.xml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func kvmCaps(t *testing.T) string {
	s := strings.Replace(realQemuCaps(t), "<domain>qemu</domain>", "<domain>kvm</domain>", 1)
	return strings.Replace(s, "<mode name='host-passthrough' supported='no'/>", "<mode name='host-passthrough' supported='yes'/>", 1)
}

// probeOf answers as a host would: kvm usable or not (libvirt's own error
// text when not), or a probe that never answers (a hanging /dev/kvm).
func probeOf(t *testing.T, kvm string) capsProbe {
	return func(ctx context.Context, virtType, arch string) (string, error) {
		if arch != "x86_64" {
			return "", errors.New("invalid argument: KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host")
		}
		switch {
		case virtType == "qemu":
			return realQemuCaps(t), nil
		case kvm == "yes":
			return kvmCaps(t), nil
		case kvm == "hang":
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "", errors.New("invalid argument: the accel 'kvm' is not supported by '/usr/bin/qemu-system-x86_64' on this host")
	}
}

func TestResolveMachine(t *testing.T) {
	for _, c := range []struct {
		name    string
		m       Machine
		kvm     string
		want    string // domain type
		note    bool
		wantErr string
	}{
		{"auto with kvm", Machine{}, "yes", "kvm", false, ""},
		{"auto without kvm", Machine{Accel: "auto"}, "no", "qemu", true, ""},
		{"tcg with kvm", Machine{Accel: "tcg"}, "yes", "qemu", false, ""},
		{"kvm asked, none", Machine{Accel: "kvm"}, "no", "", false, "--accel kvm: not offered by this host: invalid argument: the accel 'kvm' is not supported"},
		{"passthrough with kvm", Machine{CPU: "host-passthrough"}, "yes", "kvm", false, ""},
		{"passthrough with tcg", Machine{Accel: "tcg", CPU: "host-passthrough"}, "yes", "", false, "--cpu host-passthrough: needs KVM, and this launch uses tcg"},
		{"passthrough auto fell back", Machine{CPU: "host-passthrough"}, "no", "", false, "--cpu host-passthrough: needs KVM"},
		{"uefi", Machine{Boot: "uefi"}, "no", "qemu", true, ""},
		{"bad accel", Machine{Accel: "hvf"}, "no", "", false, `--accel "hvf": want auto, kvm or tcg`},
		{"bad boot", Machine{Boot: "coreboot"}, "no", "", false, `--boot "coreboot": want bios or uefi`},
		{"bad cpu", Machine{CPU: "host-model"}, "no", "", false, `--cpu "host-model": want host-passthrough`},
		{"bad arch", Machine{Arch: "ppc64le"}, "no", "", false, `--arch "ppc64le": want x86_64 or aarch64`},
		{"aarch64 not offered", Machine{Arch: "arm64", Accel: "tcg"}, "no", "", false, "--accel tcg --arch aarch64: not offered by this host"},
		{"aarch64 bios", Machine{Arch: "aarch64", Boot: "bios"}, "no", "", false, "--boot bios: aarch64 guests boot UEFI only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := resolveMachine(context.Background(), c.m, probeOf(t, c.kvm))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != c.want || (r.Note != "") != c.note {
				t.Fatalf("got type %q note %q, want %q (note %v)", r.Type, r.Note, c.want, c.note)
			}
			if c.note && !strings.Contains(r.Note, "using tcg") {
				t.Fatalf("note %q does not say tcg", r.Note)
			}
		})
	}
}

// A KVM probe that never answers (a hanging /dev/kvm behind libvirtd)
// costs ProbeTimeout, then auto falls back to TCG saying so.
func TestResolveMachineHangingProbe(t *testing.T) {
	defer func(d time.Duration) { ProbeTimeout = d }(ProbeTimeout)
	ProbeTimeout = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), ProbeTimeout+10*time.Second)
	defer cancel()
	start := time.Now()
	r, err := resolveMachine(ctx, Machine{}, probeOf(t, "hang"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "qemu" || !strings.Contains(r.Note, "deadline exceeded") {
		t.Fatalf("got %+v, want tcg with a note naming the timeout", r)
	}
	if d := time.Since(start); d > ProbeTimeout+5*time.Second {
		t.Fatalf("probe took %v", d)
	}
}

func TestParseDomCaps(t *testing.T) {
	c, err := parseDomCaps(realQemuCaps(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "qemu" || c.Arch != "x86_64" || !c.EFI || c.HostPassthrough || len(c.Loaders) == 0 {
		t.Fatalf("parsed %+v", c)
	}
	if _, err := parseDomCaps("<domainCapabilities"); err == nil {
		t.Fatal("truncated XML accepted")
	}
}

// TestDomainGolden renders the disk-boot domain for each machine and
// network choice, compares it with testdata/golden and validates it with
// libvirt's own schema (virt-xml-validate).
func TestDomainGolden(t *testing.T) {
	base := domainSpec{Name: "i-0123abcd", UUID: "6f1c4a52-8e0b-4c57-9b1e-2d3f4a5b6c7d", MemoryMB: 1024, CPUs: 2,
		Disks: []string{"/var/lib/kscloud/volumes/vol-1.img"}, DiskFormat: []string{"raw"},
		Console: "/var/lib/kscloud/local/console/i-0123abcd.log", Network: "user", MAC: "52:54:00:12:34:56"}
	cases := []struct {
		name string
		mod  func(*domainSpec)
	}{
		{"kvm", func(s *domainSpec) { s.Machine = Resolved{Type: "kvm", Arch: "x86_64", Boot: "bios"} }},
		{"tcg", func(s *domainSpec) { s.Machine = Resolved{Type: "qemu", Arch: "x86_64", Boot: "bios"} }},
		{"kvm-uefi-passthrough", func(s *domainSpec) {
			s.Machine = Resolved{Type: "kvm", Arch: "x86_64", Boot: "uefi", CPU: "host-passthrough"}
		}},
		{"tcg-aarch64", func(s *domainSpec) {
			s.Machine = Resolved{Type: "qemu", Arch: "aarch64", Machine: "virt", Boot: "uefi"}
		}},
		{"network-default", func(s *domainSpec) { s.Machine = Resolved{Type: "kvm", Arch: "x86_64"}; s.Network = "default" }},
		{"bridge-iso", func(s *domainSpec) {
			s.Machine = Resolved{Type: "qemu", Arch: "x86_64"}
			s.Network = "bridge=br0"
			s.CDROM = "/var/lib/kscloud/cache/sha256-0a1b.iso"
		}},
	}
	validate, _ := exec.LookPath("virt-xml-validate")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base
			c.mod(&s)
			got, err := baseXML(s)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", c.name+".xml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
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
			if !strings.Contains(got, "<domain type=\""+s.Machine.Type+"\">") {
				t.Fatalf("domain type is not %s", s.Machine.Type)
			}
			if validate == "" {
				t.Fatal("virt-xml-validate not found (libxml2-utils, libvirt-clients)")
			}
			tmp := filepath.Join(t.TempDir(), "d.xml")
			os.WriteFile(tmp, []byte(got), 0o644)
			if out, err := exec.Command(validate, tmp, "domain").CombinedOutput(); err != nil {
				t.Fatalf("virt-xml-validate: %v: %s", err, out)
			}
		})
	}
}

// TestResolveMachineRealLibvirt asks the real libvirtd: auto picks kvm
// exactly when libvirt's domain capabilities for kvm answer, else tcg with
// a note; tcg is always offered on x86_64.
func TestResolveMachineRealLibvirt(t *testing.T) {
	uri := testenv.Libvirt(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*ProbeTimeout)
	defer cancel()
	c, err := virt.Open(ctx, uri, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := resolveMachine(ctx, Machine{}, c.DomainCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	_, kvmErr := c.DomainCapabilities(ctx, "kvm", "x86_64")
	if (kvmErr == nil) != (r.Type == "kvm") {
		t.Fatalf("auto chose %q, kvm probe error %v", r.Type, kvmErr)
	}
	if r.Type == "qemu" && r.Note == "" {
		t.Fatal("fell back to tcg without a note")
	}
	t.Logf("auto chose %s on this host; note: %s", r.Type, r.Note)
	if r, err := resolveMachine(ctx, Machine{Accel: "tcg"}, c.DomainCapabilities); err != nil || r.Type != "qemu" {
		t.Fatalf("tcg: %+v %v", r, err)
	}
}

// An image baked under UEFI boots UEFI unless --boot says otherwise.
func TestImageFirmware(t *testing.T) {
	dir := t.TempDir()
	uefi, bios := filepath.Join(dir, "u.qcow2"), filepath.Join(dir, "b.qcow2")
	os.WriteFile(provenancePath(uefi), []byte(`{"firmware":"uefi"}`), 0o644)
	os.WriteFile(provenancePath(bios), []byte(`{"kickstart_sha256":"x"}`), 0o644)
	def := Resolved{Boot: "bios", EFI: true}
	for _, c := range []struct {
		img  string
		m    Resolved
		want string
	}{
		{uefi, def, "uefi"},
		{bios, def, "bios"},
		{uefi, Resolved{Boot: "bios", BootChosen: true, EFI: true}, "bios"},
		{uefi, Resolved{Boot: "bios"}, "bios"}, // no OVMF on the host
		{filepath.Join(dir, "none.qcow2"), def, "bios"},
	} {
		if got := imageFirmware(c.img, c.m); got != c.want {
			t.Errorf("%s %+v: %s, want %s", filepath.Base(c.img), c.m, got, c.want)
		}
	}
}

package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// ProbeTimeout bounds each capability question to libvirt: a host whose
// /dev/kvm hangs must not hang a launch.
var ProbeTimeout = 15 * time.Second

// ErrHost means the host cannot give what the flags ask for.
var ErrHost = errors.New("not offered by this host")

// Machine is what a launch asks of the host (the flags) and, after
// ResolveMachine, what it got.
type Machine struct {
	Accel string // auto (default) | kvm | tcg
	Arch  string // x86_64 (default) | aarch64
	Boot  string // bios | uefi ("" = bios on x86_64, uefi on aarch64)
	CPU   string // "" (libvirt's default model) | host-passthrough (KVM only)
}

// Resolved is the machine a domain gets: the libvirt domain type (kvm or
// qemu, i.e. TCG) and the rest checked against the host's capabilities.
type Resolved struct {
	Type    string // kvm | qemu
	Arch    string
	Machine string // "" = libvirt's default for the arch (aarch64: virt)
	Boot    string // bios | uefi
	CPU     string
	Note    string // one line for the user when auto fell back to TCG
	// BootChosen: --boot was given; else an image's recorded firmware
	// wins over the default (an image baked under UEFI boots UEFI).
	BootChosen bool
	EFI        bool // libvirt offers UEFI firmware for the arch
}

// domCaps is the part of libvirt's domain capabilities kscloud reads.
type domCaps struct {
	Domain          string // kvm | qemu
	Arch            string
	EFI             bool // <os><enum name='firmware'><value>efi
	Loaders         []string
	HostPassthrough bool
}

func parseDomCaps(x string) (domCaps, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(x); err != nil {
		return domCaps{}, fmt.Errorf("domain capabilities: %w", err)
	}
	root := doc.SelectElement("domainCapabilities")
	if root == nil {
		return domCaps{}, errors.New("domain capabilities: no <domainCapabilities>")
	}
	var c domCaps
	if e := root.SelectElement("domain"); e != nil {
		c.Domain = strings.TrimSpace(e.Text())
	}
	if e := root.SelectElement("arch"); e != nil {
		c.Arch = strings.TrimSpace(e.Text())
	}
	if os := root.SelectElement("os"); os != nil && os.SelectAttrValue("supported", "") == "yes" {
		for _, en := range os.SelectElements("enum") {
			if en.SelectAttrValue("name", "") != "firmware" {
				continue
			}
			for _, v := range en.SelectElements("value") {
				if strings.TrimSpace(v.Text()) == "efi" {
					c.EFI = true
				}
			}
		}
		if l := os.SelectElement("loader"); l != nil && l.SelectAttrValue("supported", "") == "yes" {
			for _, v := range l.SelectElements("value") {
				c.Loaders = append(c.Loaders, strings.TrimSpace(v.Text()))
			}
		}
	}
	if cpu := root.SelectElement("cpu"); cpu != nil {
		for _, m := range cpu.SelectElements("mode") {
			if m.SelectAttrValue("name", "") == "host-passthrough" && m.SelectAttrValue("supported", "") == "yes" {
				c.HostPassthrough = true
			}
		}
	}
	return c, nil
}

// capsProbe asks libvirt for the domain capabilities of a domain type
// ("kvm" or "qemu") on an architecture.
type capsProbe func(ctx context.Context, virtType, arch string) (string, error)

// resolveMachine checks m against the host and picks the accelerator:
// kvm when asked and usable (else an error), tcg (libvirt's type qemu)
// when asked, and for auto KVM when libvirt reports it usable for the
// arch, else TCG with a Note saying why. Each probe is bounded by
// ProbeTimeout.
func resolveMachine(ctx context.Context, m Machine, probe capsProbe) (Resolved, error) {
	r := Resolved{Arch: m.Arch, Boot: m.Boot, CPU: m.CPU, BootChosen: m.Boot != ""}
	switch r.Arch {
	case "", "x86_64", "amd64":
		r.Arch = "x86_64"
	case "aarch64", "arm64":
		r.Arch = "aarch64"
		r.Machine = "virt"
	default:
		return Resolved{}, fmt.Errorf("--arch %q: want x86_64 or aarch64", m.Arch)
	}
	switch r.Boot {
	case "":
		r.Boot = "bios"
		if r.Arch == "aarch64" {
			r.Boot = "uefi"
		}
	case "bios", "uefi":
	default:
		return Resolved{}, fmt.Errorf("--boot %q: want bios or uefi", m.Boot)
	}
	if r.Arch == "aarch64" && r.Boot == "bios" {
		return Resolved{}, errors.New("--boot bios: aarch64 guests boot UEFI only")
	}
	switch r.CPU {
	case "", "host-passthrough":
	default:
		return Resolved{}, fmt.Errorf("--cpu %q: want host-passthrough (or nothing: libvirt's default model)", m.CPU)
	}
	ask := func(virtType string) (domCaps, error) {
		pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
		defer cancel()
		x, err := probe(pctx, virtType, r.Arch)
		if err != nil {
			return domCaps{}, err
		}
		c, err := parseDomCaps(x)
		if err != nil {
			return domCaps{}, err
		}
		if c.Domain != virtType {
			return domCaps{}, fmt.Errorf("libvirt answered for domain type %q", c.Domain)
		}
		return c, nil
	}
	var caps domCaps
	switch m.Accel {
	case "", "auto":
		c, err := ask("kvm")
		if err == nil {
			r.Type, caps = "kvm", c
			break
		}
		r.Note = fmt.Sprintf("kvm is not usable on this host (%s): using tcg, software emulation (10-50x slower)", oneLine(err))
		if caps, err = ask("qemu"); err != nil {
			return Resolved{}, fmt.Errorf("--arch %s: %w: %s", r.Arch, ErrHost, oneLine(err))
		}
		r.Type = "qemu"
	case "kvm":
		c, err := ask("kvm")
		if err != nil {
			return Resolved{}, fmt.Errorf("--accel kvm: %w: %s", ErrHost, oneLine(err))
		}
		r.Type, caps = "kvm", c
	case "tcg":
		c, err := ask("qemu")
		if err != nil {
			return Resolved{}, fmt.Errorf("--accel tcg --arch %s: %w: %s", r.Arch, ErrHost, oneLine(err))
		}
		r.Type, caps = "qemu", c
	default:
		return Resolved{}, fmt.Errorf("--accel %q: want auto, kvm or tcg", m.Accel)
	}
	r.EFI = caps.EFI
	if r.CPU == "host-passthrough" && (r.Type != "kvm" || !caps.HostPassthrough) {
		return Resolved{}, errors.New("--cpu host-passthrough: needs KVM, and this launch uses tcg (software emulation has no host CPU to pass through)")
	}
	if r.Boot == "uefi" && !caps.EFI {
		return Resolved{}, fmt.Errorf("--boot uefi: %w: libvirt offers no UEFI firmware for %s (install Debian's ovmf, or qemu-efi-aarch64)", ErrHost, r.Arch)
	}
	return r, nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// ResolveMachine checks the provider's machine options against the host
// (once; later calls return the first answer) and returns the choice.
// Launches call it before they create anything, so a refusal costs
// nothing; RunInstance calls it too.
func (p *Provider) ResolveMachine(ctx context.Context) (Resolved, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.machine != nil {
		return *p.machine, nil
	}
	r, err := resolveMachine(ctx, p.opt.Machine, p.c.DomainCapabilities)
	if err != nil {
		return Resolved{}, err
	}
	p.machine = &r
	return r, nil
}

// imageFirmware is the firmware an image boots with: --boot when given,
// else what the image's provenance recorded (bake --boot uefi writes
// "firmware": "uefi"), else the default.
func imageFirmware(imagePath string, m Resolved) string {
	if m.BootChosen || !m.EFI {
		return m.Boot
	}
	b, err := os.ReadFile(provenancePath(imagePath))
	if err != nil {
		return m.Boot
	}
	var prov struct {
		Firmware string `json:"firmware"`
	}
	if json.Unmarshal(b, &prov) == nil && prov.Firmware == "uefi" {
		return "uefi"
	}
	return m.Boot
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/install"
)

// hostFlags choose the local machine a libvirt launch gets: accelerator,
// firmware, CPU mode and network (memory, vCPUs, disk and --arch are
// launchFlags').
type hostFlags struct {
	accel, boot, cpu, network string
	arch                      string // launchFlags' --arch, once record ran
}

func (h *hostFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.accel, "accel", "auto", "libvirt accelerator: auto (kvm when libvirt reports it usable, else tcg), kvm or tcg")
	fs.StringVar(&h.boot, "boot", "", "libvirt firmware: bios or uefi (OVMF; default bios on x86_64, uefi on aarch64)")
	fs.StringVar(&h.cpu, "cpu", "", "libvirt CPU `mode`: host-passthrough (kvm only); default libvirt's model")
	fs.StringVar(&h.network, "network", "user", "libvirt network: user (QEMU user-mode, no setup), a libvirt network `NAME` (e.g. default), or bridge=BR")
}

// record remembers the machine flags in a new build's spec, or takes
// them from a resumed build's where the command line does not give them.
func (h *hostFlags) record(fs *flag.FlagSet, f *launchFlags, b *install.Build, resumed bool) {
	if !resumed {
		b.Spec.Machine = &install.Machine{Accel: h.accel, Boot: h.boot, CPU: h.cpu, Network: h.network}
		h.arch = f.architecture
		return
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	take := func(name string, dst *string, v string) {
		if v != "" && !set[name] {
			*dst = v
		}
	}
	if m := b.Spec.Machine; m != nil {
		take("accel", &h.accel, m.Accel)
		take("boot", &h.boot, m.Boot)
		take("cpu", &h.cpu, m.CPU)
		take("network", &h.network, m.Network)
	}
	take("arch", &f.architecture, b.Spec.Architecture)
	h.arch = f.architecture
}

// libvirtOptions are the provider options the machine flags give.
func (h *hostFlags) libvirtOptions(arch string) (network string, m cloudlibvirt.Machine) {
	return h.network, cloudlibvirt.Machine{Accel: h.accel, Arch: arch, Boot: h.boot, CPU: h.cpu}
}

// checkHost asks the host for the machine before anything is created:
// a refusal is one line, and auto's fall-back to tcg is one line on
// stderr.
func checkHost(ctx context.Context, p cloud.Provider, kind string, stderr io.Writer) error {
	lp, ok := p.(*cloudlibvirt.Provider)
	if !ok {
		return nil
	}
	r, err := lp.ResolveMachine(ctx)
	if err != nil {
		return err
	}
	if r.Note != "" {
		fmt.Fprintf(stderr, "kscloud %s: %s\n", kind, r.Note)
	}
	return lp.CheckNetwork(ctx)
}

// validateHost checks the machine flags' spelling (the host is asked
// later, in checkHost).
func (h *hostFlags) validate(provider string) string {
	if provider != "libvirt" {
		if h.accel != "auto" || h.boot != "" || h.cpu != "" || h.network != "user" {
			return "--accel, --boot, --cpu and --network are for the libvirt provider (a cloud chooses its own)"
		}
		return ""
	}
	switch h.accel {
	case "auto", "kvm", "tcg":
	default:
		return fmt.Sprintf("--accel %q: want auto, kvm or tcg", h.accel)
	}
	switch h.boot {
	case "", "bios", "uefi":
	default:
		return fmt.Sprintf("--boot %q: want bios or uefi", h.boot)
	}
	if h.cpu != "" && h.cpu != "host-passthrough" {
		return fmt.Sprintf("--cpu %q: want host-passthrough", h.cpu)
	}
	if h.cpu == "host-passthrough" && h.accel == "tcg" {
		return "--cpu host-passthrough: needs KVM, and --accel tcg is software emulation"
	}
	if br, ok := strings.CutPrefix(h.network, "bridge="); ok && br == "" {
		return "--network bridge=: name the bridge (bridge=br0)"
	}
	if h.network == "" {
		return "--network \"\": want user, a libvirt network name or bridge=BR"
	}
	return ""
}

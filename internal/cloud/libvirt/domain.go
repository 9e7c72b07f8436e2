package libvirt

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/kscloud/kscloud/internal/libvirtxml"
)

// domainSpec is a local instance's domain before any installer rewrite.
type domainSpec struct {
	Name, UUID string
	MemoryMB   int
	CPUs       int
	Disks      []string // file paths, attached vda, vdb, … (virtio)
	DiskFormat []string // raw | qcow2
	Console    string   // serial log file (append on)
	Network    string   // "user" (SLIRP), "bridge=BR" or a libvirt network name
	MAC        string
	Machine    Resolved // domain type, arch, firmware, CPU mode
	CDROM      string   // an install ISO attached as a SATA CD-ROM ("" = none)
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newMAC() string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

// baseXML renders the disk-boot definition. The domain type is the
// accelerator ResolveMachine chose (kvm, or qemu: TCG software emulation);
// UEFI is libvirt's firmware auto-selection (firmware='efi': OVMF and a
// per-domain NVRAM copy, the same for the installer's transient start and
// the installed system's boots of the same name).
func baseXML(s domainSpec) (string, error) {
	m := s.Machine
	if m.Type == "" {
		m.Type = "qemu"
	}
	if m.Arch == "" {
		m.Arch = "x86_64"
	}
	doc := etree.NewDocument()
	d := doc.CreateElement("domain")
	d.CreateAttr("type", m.Type)
	d.CreateElement("name").SetText(s.Name)
	d.CreateElement("uuid").SetText(s.UUID)
	mem := d.CreateElement("memory")
	mem.CreateAttr("unit", "MiB")
	mem.SetText(strconv.Itoa(s.MemoryMB))
	d.CreateElement("vcpu").SetText(strconv.Itoa(s.CPUs))
	os := d.CreateElement("os")
	if m.Boot == "uefi" {
		os.CreateAttr("firmware", "efi")
	}
	t := os.CreateElement("type")
	t.CreateAttr("arch", m.Arch)
	if m.Machine != "" {
		t.CreateAttr("machine", m.Machine)
	}
	t.SetText("hvm")
	os.CreateElement("boot").CreateAttr("dev", "hd")
	if s.CDROM != "" {
		os.CreateElement("boot").CreateAttr("dev", "cdrom")
	}
	f := d.CreateElement("features")
	f.CreateElement("acpi")
	if m.Arch == "x86_64" {
		f.CreateElement("apic")
	} else {
		f.CreateElement("gic").CreateAttr("version", "3")
	}
	switch {
	case m.CPU == "host-passthrough":
		d.CreateElement("cpu").CreateAttr("mode", "host-passthrough")
	case m.Arch == "aarch64" && m.Type == "qemu":
		// TCG has no default aarch64 CPU for the virt machine.
		d.CreateElement("cpu").CreateAttr("mode", "maximum")
	}
	d.CreateElement("on_poweroff").SetText("destroy")
	d.CreateElement("on_reboot").SetText("restart")
	d.CreateElement("on_crash").SetText("destroy")
	dev := d.CreateElement("devices")
	for i, p := range s.Disks {
		disk := dev.CreateElement("disk")
		disk.CreateAttr("type", "file")
		disk.CreateAttr("device", "disk")
		drv := disk.CreateElement("driver")
		drv.CreateAttr("name", "qemu")
		format := "raw"
		if i < len(s.DiskFormat) && s.DiskFormat[i] != "" {
			format = s.DiskFormat[i]
		}
		drv.CreateAttr("type", format)
		disk.CreateElement("source").CreateAttr("file", p)
		tg := disk.CreateElement("target")
		tg.CreateAttr("dev", "vd"+string(rune('a'+i)))
		tg.CreateAttr("bus", "virtio")
	}
	if s.CDROM != "" {
		cd := dev.CreateElement("disk")
		cd.CreateAttr("type", "file")
		cd.CreateAttr("device", "cdrom")
		drv := cd.CreateElement("driver")
		drv.CreateAttr("name", "qemu")
		drv.CreateAttr("type", "raw")
		cd.CreateElement("source").CreateAttr("file", s.CDROM)
		tg := cd.CreateElement("target")
		if m.Arch == "x86_64" {
			tg.CreateAttr("dev", "sda")
			tg.CreateAttr("bus", "sata")
		} else {
			tg.CreateAttr("dev", "sda")
			tg.CreateAttr("bus", "scsi")
		}
		cd.CreateElement("readonly")
	}
	if s.Network != "" {
		nic := dev.CreateElement("interface")
		switch br, isBridge := strings.CutPrefix(s.Network, "bridge="); {
		case s.Network == "user":
			nic.CreateAttr("type", "user")
		case isBridge:
			nic.CreateAttr("type", "bridge")
			nic.CreateElement("source").CreateAttr("bridge", br)
		default:
			nic.CreateAttr("type", "network")
			nic.CreateElement("source").CreateAttr("network", s.Network)
		}
		nic.CreateElement("mac").CreateAttr("address", s.MAC)
		nic.CreateElement("model").CreateAttr("type", "virtio")
	}
	ser := dev.CreateElement("serial")
	ser.CreateAttr("type", "file")
	src := ser.CreateElement("source")
	src.CreateAttr("path", s.Console)
	src.CreateAttr("append", "on")
	tg := ser.CreateElement("target")
	if m.Arch != "x86_64" {
		// Arm's virt machine: the PL011 UART, ttyAMA0 in the guest (the
		// installer's console= says so: libvirtxml.RewriteInstall).
		tg.CreateAttr("type", "system-serial")
		tg.CreateAttr("port", "0")
		tg.CreateElement("model").CreateAttr("name", "pl011")
	} else {
		tg.CreateAttr("port", "0")
	}
	doc.Indent(2)
	return doc.WriteToString()
}

// installedXML is the definition an install in place leaves behind, which
// boots the installed system from its disk: the installer's domain (made
// from base, without install media) rewritten by libvirtxml.FinalDomain,
// the same rewrite nchookd makes on a node. It carries the kscloud
// metadata (phase "final") as nchookd's final domain does.
func installedXML(base string, in libvirtxml.Install) ([]byte, error) {
	inst, err := libvirtxml.RewriteInstall([]byte(base), in)
	if err != nil {
		return nil, err
	}
	return libvirtxml.FinalDomain(inst)
}

// hotplugTarget is the domain disk a hot-plugged volume becomes: SCSI
// sdX for /dev/sdX, /dev/xvdX and /dev/vdX alike (the same letter), as a
// Eucalyptus NC does. SCSI, because unplugging a SCSI disk needs no guest
// cooperation (a virtio-blk unplug waits for the guest's ACPI eject).
func hotplugTarget(device string) (string, error) {
	name := filepath.Base(device)
	for _, prefix := range []string{"xvd", "sd", "vd"} {
		if rest, ok := strings.CutPrefix(name, prefix); ok && len(rest) == 1 && rest[0] >= 'b' && rest[0] <= 'z' {
			return "sd" + rest, nil
		}
	}
	return "", fmt.Errorf("device %q: want /dev/sdX, /dev/xvdX or /dev/vdX (X in b–z)", device)
}

// diskXML is the <disk> element for hot-plugging a volume (target sdX:
// SCSI, vdX: virtio).
func diskXML(path, format, dev string) (string, error) {
	doc := etree.NewDocument()
	disk := doc.CreateElement("disk")
	disk.CreateAttr("type", "file")
	disk.CreateAttr("device", "disk")
	drv := disk.CreateElement("driver")
	drv.CreateAttr("name", "qemu")
	drv.CreateAttr("type", format)
	disk.CreateElement("source").CreateAttr("file", path)
	tg := disk.CreateElement("target")
	tg.CreateAttr("dev", dev)
	if strings.HasPrefix(dev, "sd") {
		tg.CreateAttr("bus", "scsi")
	} else {
		tg.CreateAttr("bus", "virtio")
	}
	return doc.WriteToString()
}

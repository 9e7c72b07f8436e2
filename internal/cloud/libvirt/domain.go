package libvirt

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// domainSpec is a local instance's domain before any installer rewrite.
type domainSpec struct {
	Name, UUID string
	MemoryMB   int
	CPUs       int
	Disks      []string // file paths, attached vda, vdb, … (virtio)
	DiskFormat []string // raw | qcow2
	Console    string   // serial log file (append on)
	Network    string   // "user" (SLIRP) or a libvirt network name
	MAC        string
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

// baseXML renders the disk-boot definition (type qemu: software emulation
// works everywhere; KVM is used when the host offers it and the domain is
// switched to it by the operator).
func baseXML(s domainSpec, kvm bool) (string, error) {
	doc := etree.NewDocument()
	d := doc.CreateElement("domain")
	if kvm {
		d.CreateAttr("type", "kvm")
	} else {
		d.CreateAttr("type", "qemu")
	}
	d.CreateElement("name").SetText(s.Name)
	d.CreateElement("uuid").SetText(s.UUID)
	mem := d.CreateElement("memory")
	mem.CreateAttr("unit", "MiB")
	mem.SetText(strconv.Itoa(s.MemoryMB))
	d.CreateElement("vcpu").SetText(strconv.Itoa(s.CPUs))
	os := d.CreateElement("os")
	t := os.CreateElement("type")
	t.CreateAttr("arch", "x86_64")
	t.SetText("hvm")
	os.CreateElement("boot").CreateAttr("dev", "hd")
	f := d.CreateElement("features")
	f.CreateElement("acpi")
	f.CreateElement("apic")
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
	if s.Network != "" {
		nic := dev.CreateElement("interface")
		if s.Network == "user" {
			nic.CreateAttr("type", "user")
		} else {
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
	ser.CreateElement("target").CreateAttr("port", "0")
	doc.Indent(2)
	return doc.WriteToString()
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

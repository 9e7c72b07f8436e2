package libvirtxml

import (
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// DomainName returns the text of the domain's <name>.
func DomainName(domainXML []byte) (string, error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return "", err
	}
	name := text(first(d.root, "name"))
	if name == "" {
		return "", invalid("no <name> element")
	}
	return name, nil
}

// VNCGraphics returns the first VNC console of a domain, typically the live
// XML libvirt reports for a running domain: the listen address (the listen
// attribute, else the first <listen type="address">), the port libvirt
// assigned (-1 when it has not assigned one yet) and the password (absent from
// XML dumped without the secure flag, then ""). ok is false when the domain
// has no VNC graphics.
func VNCGraphics(domainXML []byte) (v VNC, ok bool, err error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return VNC{}, false, err
	}
	devices := first(d.root, "devices")
	if devices == nil {
		return VNC{}, false, nil
	}
	gs := vncGraphics(devices)
	if len(gs) == 0 {
		return VNC{}, false, nil
	}
	g := gs[0]
	v.Listen = attrValue(g, "listen")
	if v.Listen == "" {
		for _, l := range children(g, "listen") {
			if attrValue(l, "type") == "address" {
				v.Listen = attrValue(l, "address")
				break
			}
		}
	}
	v.Port = -1
	if s, ok := attr(g, "port"); ok {
		p, perr := strconv.Atoi(strings.TrimSpace(s))
		if perr != nil || p < -1 {
			return VNC{}, false, invalid("vnc graphics port %q is not a port number", s)
		}
		v.Port = p
	}
	v.Password = attrValue(g, "passwd")
	return v, true, nil
}

// DirectBoot returns the kernel and initrd paths of the domain's <os>
// (text trimmed; "" for an element that is absent).
func DirectBoot(domainXML []byte) (kernel, initrd string, err error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(text(first(d.os, "kernel"))), strings.TrimSpace(text(first(d.os, "initrd"))), nil
}

// KernelCmdline returns the domain's <os><cmdline> ("" when it has
// none): the arguments of a kernel the domain boots directly.
func KernelCmdline(domainXML []byte) (string, error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(text(first(d.os, "cmdline"))), nil
}

// SerialLog returns the path of the domain's console log: the first
// <serial type="file"> under <devices> with a <source path=…>; "" when
// there is none.
func SerialLog(domainXML []byte) (string, error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return "", err
	}
	if src := fileSerialSource(first(d.root, "devices")); src != nil {
		return attrValue(src, "path"), nil
	}
	return "", nil
}

// fileSerialSource returns the <source> of the first file-backed serial
// device with a path, nil when there is none.
func fileSerialSource(devices *etree.Element) *etree.Element {
	if devices == nil {
		return nil
	}
	for _, s := range children(devices, "serial") {
		if attrValue(s, "type") != "file" {
			continue
		}
		if src := first(s, "source"); src != nil && attrValue(src, "path") != "" {
			return src
		}
	}
	return nil
}

// ContextCDROM returns the source file of OpenNebula's CONTEXT CD-ROM in
// a deployment file: OpenNebula's KVM driver writes it after every other
// disk as <disk type='file' device='cdrom'> with <source
// file='SYSTEM_DIR/disk.DISK_ID'/>, DISK_ID being the highest disk number
// (one@release-5.12.0:src/vmm/LibVirtDriverKVM.cc:1222-1260, the same in
// 6.x and 7.0). Of the file-backed CD-ROMs named disk.N (under any
// <devices>: OpenNebula writes several) it returns the one with the
// highest N; ok is false when there is none. The path is as written
// (OpenNebula's "//" included): the caller cleans and checks it.
func ContextCDROM(domainXML []byte) (path string, ok bool, err error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return "", false, err
	}
	best := -1
	for _, devices := range children(d.root, "devices") {
		for _, disk := range children(devices, "disk") {
			if attrValue(disk, "device") != "cdrom" || attrValue(disk, "type") != "file" {
				continue
			}
			src := first(disk, "source")
			if src == nil {
				continue
			}
			file := attrValue(src, "file")
			i := strings.LastIndexByte(file, '/')
			num, found := strings.CutPrefix(file[i+1:], "disk.")
			if !found || num == "" || strings.TrimLeft(num, "0123456789") != "" || len(num) > 9 {
				continue
			}
			n, _ := strconv.Atoi(num)
			switch {
			case n == best:
				return "", false, invalid("two CD-ROMs named disk.%d", n)
			case n > best:
				best, path = n, file
			}
		}
	}
	return path, best >= 0, nil
}

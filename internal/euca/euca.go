// Package euca knows the Eucalyptus node controller's side of a launch: the
// hook events it fires, the instance.xml it writes and where it leaves the
// libvirt domain XML that a pre-boot hook may rewrite (DESIGN.md §2).
//
// It only reads; nothing here edits instance.xml (the NC rewrites it every
// few seconds from 3.4 on).
package euca

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/kscloud/kscloud/internal/atomicfile"
)

// Hook events, as the NC passes them in argv[1].
const (
	EventPreInit     = "euca-nc-pre-init"
	EventPostInit    = "euca-nc-post-init"
	EventPreHypCheck = "euca-nc-pre-hyp-check"
	EventPreBoot     = "euca-nc-pre-boot"
	EventPreAdopt    = "euca-nc-pre-adopt"
	EventPreClean    = "euca-nc-pre-clean"
	EventPreAttach   = "euca-nc-pre-attach"
	EventPostDetach  = "euca-nc-post-detach"
)

// Handled reports whether nchookd acts on event; every other event must
// return at once (pre-hyp-check runs under the NC's lock on every access).
func Handled(event string) bool {
	return event == EventPreBoot || event == EventPreClean
}

// Domain XML file names, newest first.
const (
	DomainFile32 = "instance-libvirt.xml" // 3.2 and later
	DomainFile30 = "libvirt.xml"          // 3.0, 3.1
	InstanceFile = "instance.xml"
)

// ErrNotFound means an instance file is missing.
var ErrNotFound = errors.New("not found")

// maxInstanceXML bounds what is read of instance.xml (user-data is at most
// 16 KiB of base64 there; the rest is small).
const maxInstanceXML = 1 << 20

// Instance is the part of instance.xml nchookd reads.
type Instance struct {
	Name            string `xml:"name"`
	UUID            string `xml:"uuid"`
	ImageID         string `xml:"imageId"`
	KernelID        string `xml:"kernelId"`
	RamdiskID       string `xml:"ramdiskId"`
	InstancePath    string `xml:"instancePath"`
	Kernel          string `xml:"kernel"`
	Ramdisk         string `xml:"ramdisk"`
	LibvirtFilePath string `xml:"libvirtFilePath"`
	ConsoleLogPath  string `xml:"consoleLogPath"`
	UserData        string `xml:"userData"`
}

// ReadInstance reads and parses dir/instance.xml.
func ReadInstance(dir string) (*Instance, error) {
	p := filepath.Join(dir, InstanceFile)
	data, err := atomicfile.ReadRegular(p, maxInstanceXML)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return ParseInstance(data)
}

// ParseInstance parses instance.xml bytes.
func ParseInstance(data []byte) (*Instance, error) {
	var in struct {
		XMLName xml.Name
		Instance
	}
	d := xml.NewDecoder(strings.NewReader(string(data)))
	d.Strict = true
	if err := d.Decode(&in); err != nil {
		return nil, fmt.Errorf("instance.xml: %w", err)
	}
	if in.XMLName.Local != "instance" {
		return nil, fmt.Errorf("instance.xml: root element is <%s>, want <instance>", in.XMLName.Local)
	}
	inst := in.Instance
	inst.Name = strings.TrimSpace(inst.Name)
	if inst.Name == "" {
		return nil, fmt.Errorf("instance.xml: no <name>")
	}
	for _, p := range []*string{&inst.Kernel, &inst.Ramdisk, &inst.LibvirtFilePath, &inst.ConsoleLogPath, &inst.InstancePath} {
		*p = strings.TrimSpace(*p)
	}
	return &inst, nil
}

// DomainFileName returns the name, inside the instance directory dir, of
// the domain XML the NC generated: what <libvirtFilePath> names (3.4+),
// else instance-libvirt.xml (3.2+), else libvirt.xml (3.0/3.1). exists
// reports whether a name is present in the directory (the caller holds it
// open). A <libvirtFilePath> outside dir, or naming instance.xml or a file
// nchookd keeps there, is refused: the hook only ever rewrites the
// instance's own domain XML.
func DomainFileName(dir string, inst *Instance, exists func(name string) bool) (string, error) {
	if inst != nil && inst.LibvirtFilePath != "" {
		p := inst.LibvirtFilePath
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if !sameDir(filepath.Dir(filepath.Clean(p)), dir) {
			return "", fmt.Errorf("libvirtFilePath %q is outside the instance directory %s", inst.LibvirtFilePath, dir)
		}
		name := filepath.Base(filepath.Clean(p))
		if reservedName(name) {
			return "", fmt.Errorf("libvirtFilePath %q names no domain XML the NC writes", inst.LibvirtFilePath)
		}
		if !exists(name) {
			return "", fmt.Errorf("domain XML %s: %w", filepath.Join(dir, name), ErrNotFound)
		}
		return name, nil
	}
	for _, name := range []string{DomainFile32, DomainFile30} {
		if exists(name) {
			return name, nil
		}
	}
	return "", fmt.Errorf("domain XML (%s or %s) in %s: %w", DomainFile32, DomainFile30, dir, ErrNotFound)
}

// reservedName reports names that are never the domain XML: instance.xml,
// hidden files (nchookd's lock and temporaries), kept originals.
func reservedName(name string) bool {
	return name == InstanceFile || name == "." || name == ".." || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".orig")
}

// sameDir reports whether a and b name the same directory: equal paths, or
// equal once symlinks are resolved (the NC may name the instances root by
// another path than the hook's argument). It only compares; nothing is
// opened by the resolved path.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// Package isomedia reads an installer ISO 9660 image without mounting it
// (github.com/kdomanski/iso9660 for the primary tree and its Rock Ridge
// names; joliet.go for a Joliet tree's names; else plain ISO 9660 names
// matched case-insensitively, without the ";1" version): the kernel and
// initrd from its .treeinfo, or from the paths distributions put them at.
package isomedia

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kdomanski/iso9660"

	"github.com/kscloud/kscloud/internal/treeinfo"
)

// ErrNotFound means the image has no such file.
var ErrNotFound = errors.New("not on the medium")

// Medium is an open ISO image.
type Medium struct {
	path   string
	f      *os.File
	img    *iso9660.Image
	joliet *jolietFile // the Joliet tree's root, nil without one
}

// malformed turns a panic of the iso9660 package on a hostile image (it
// slices by the image's own lengths) into an error naming the image.
func malformed(p string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("iso %s: not a well-formed ISO 9660 image: %v", p, r)
	}
}

// Open opens an ISO 9660 image file.
func Open(p string) (m *Medium, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return OpenFile(f)
}

// OpenFile reads the ISO 9660 image of an open file (one the caller opened
// with its own checks: no symlink followed, a regular file); the Medium
// owns f from then on, and on error f is closed.
func OpenFile(f *os.File) (m *Medium, err error) {
	p := f.Name()
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	defer malformed(p, &err)
	// The descriptors first: the iso9660 package keeps reading them
	// until one ends the set (a hostile image: never).
	j, err := jolietRoot(f)
	if err != nil {
		return nil, fmt.Errorf("iso %s: not an ISO 9660 image: %w", p, err)
	}
	img, err := iso9660.OpenImage(f)
	if err != nil {
		return nil, fmt.Errorf("iso %s: not an ISO 9660 image: %w", p, err)
	}
	return &Medium{path: p, f: f, img: img, joliet: j}, nil
}

// Close closes the image file.
func (m *Medium) Close() error { return m.f.Close() }

// Label is the volume identifier (what inst.stage2=hd:LABEL= names).
func (m *Medium) Label() (l string, err error) {
	defer malformed(m.path, &err)
	l, err = m.img.Label()
	return strings.TrimSpace(l), err
}

// isoName is how a name looks on a medium without Rock Ridge: upper
// case, '.' of a leading dot and '-' as '_' (mkisofs/xorriso's mapping).
func isoName(n string) string {
	n = strings.ToUpper(n)
	if strings.HasPrefix(n, ".") {
		n = "_" + n[1:]
	}
	return strings.ReplaceAll(n, "-", "_")
}

// find looks name up: by the primary tree's exact (Rock Ridge) names, then
// by the Joliet tree's names (exact, then in any case), then by the
// primary tree's names in any case or as mkisofs maps them.
func (m *Medium) find(name string) (entry, error) {
	name = strings.Trim(path.Clean("/"+name), "/")
	var parts []string
	if name != "" {
		parts = strings.Split(name, "/")
	}
	if f, err := m.findPrimary(parts, false); err == nil || !errors.Is(err, ErrNotFound) {
		return f, err
	}
	if m.joliet != nil {
		if f, err := m.findJoliet(parts); err == nil || !errors.Is(err, ErrNotFound) {
			return f, err
		}
	}
	return m.findPrimary(parts, true)
}

func (m *Medium) findPrimary(parts []string, fuzzy bool) (_ entry, err error) {
	defer malformed(m.path, &err)
	name := strings.Join(parts, "/")
	f, err := m.img.RootDir()
	if err != nil {
		return nil, fmt.Errorf("iso %s: %w", m.path, err)
	}
	for _, part := range parts {
		if !f.IsDir() {
			return nil, fmt.Errorf("iso %s: %s: %w", m.path, name, ErrNotFound)
		}
		if f.Size() > maxDir {
			// The iso9660 package reads (and keeps) every record of
			// the extent the image claims.
			return nil, fmt.Errorf("iso %s: %s: directory of %d bytes, over %d", m.path, name, f.Size(), maxDir)
		}
		kids, err := f.GetChildren()
		if err != nil {
			return nil, fmt.Errorf("iso %s: %s: %w", m.path, name, err)
		}
		var hit *iso9660.File
		for _, k := range kids {
			if k.Name() == part {
				hit = k
				break
			}
		}
		if hit == nil && fuzzy {
			for _, k := range kids {
				if strings.EqualFold(k.Name(), part) || k.Name() == isoName(part) {
					hit = k
					break
				}
			}
		}
		if hit == nil {
			return nil, fmt.Errorf("iso %s: %s: %w", m.path, name, ErrNotFound)
		}
		f = hit
	}
	return f, nil
}

func (m *Medium) findJoliet(parts []string) (entry, error) {
	name := strings.Join(parts, "/")
	f := m.joliet
	for _, part := range parts {
		if !f.IsDir() {
			return nil, fmt.Errorf("iso %s: %s: %w", m.path, name, ErrNotFound)
		}
		kids, err := f.children()
		if err != nil {
			return nil, fmt.Errorf("iso %s: %s: joliet: %w", m.path, name, err)
		}
		var hit *jolietFile
		for _, k := range kids {
			if k.name == part {
				hit = k
				break
			}
		}
		for _, k := range kids {
			if hit == nil && strings.EqualFold(k.name, part) {
				hit = k
			}
		}
		if hit == nil {
			return nil, fmt.Errorf("iso %s: %s: %w", m.path, name, ErrNotFound)
		}
		f = hit
	}
	return f, nil
}

// ReadFile returns a file's content, at most max bytes.
func (m *Medium) ReadFile(name string, max int64) (_ []byte, err error) {
	defer malformed(m.path, &err)
	f, err := m.find(name)
	if err != nil {
		return nil, err
	}
	if f.IsDir() || f.Size() > max {
		return nil, fmt.Errorf("iso %s: %s: a directory or larger than %d bytes", m.path, name, max)
	}
	return io.ReadAll(f.Reader())
}

// Extract copies a file into dir, named by its sha256, and returns the
// path and the sum (a file already there is kept: same content).
func (m *Medium) Extract(name, dir string) (_, _ string, err error) {
	defer malformed(m.path, &err)
	f, err := m.find(name)
	if err != nil {
		return "", "", err
	}
	if f.IsDir() {
		return "", "", fmt.Errorf("iso %s: %s: a directory", m.path, name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.CreateTemp(dir, ".iso-extract-*")
	if err != nil {
		return "", "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), f.Reader()); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("iso %s: %s: %w", m.path, name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", "", err
	}
	if err := tmp.Close(); err != nil {
		return "", "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dst := filepath.Join(dir, sum)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", "", err
	}
	return dst, sum, nil
}

// Installer is where a medium's installer kernel and initrd are.
type Installer struct {
	Kernel, Initrd             string
	KernelSHA256, InitrdSHA256 string // from .treeinfo, if it has them
	FromTreeInfo               bool
}

// knownPaths are where distributions put the installer on their ISOs
// when there is no .treeinfo (Fedora/RHEL, older isolinux layouts,
// Debian, Ubuntu, openSUSE).
var knownPaths = map[string][][2]string{
	"x86_64": {
		{"images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"},
		{"isolinux/vmlinuz", "isolinux/initrd.img"},
		{"install.amd/vmlinuz", "install.amd/initrd.gz"},
		{"casper/vmlinuz", "casper/initrd"},
		{"boot/x86_64/loader/linux", "boot/x86_64/loader/initrd"},
	},
	"aarch64": {
		{"images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"},
		{"install.a64/vmlinuz", "install.a64/initrd.gz"},
		{"casper/vmlinuz", "casper/initrd"},
		{"boot/aarch64/linux", "boot/aarch64/initrd"},
	},
}

// FindInstaller reads the medium's .treeinfo for arch, else looks at the
// usual paths.
func (m *Medium) FindInstaller(arch string) (Installer, error) {
	if b, err := m.ReadFile(".treeinfo", 1<<20); err == nil {
		ti, err := treeinfo.Parse(b, m.path, arch)
		if err != nil {
			return Installer{}, err
		}
		return Installer{Kernel: ti.Kernel, Initrd: ti.Initrd, KernelSHA256: ti.KernelSHA256, InitrdSHA256: ti.InitrdSHA256, FromTreeInfo: true}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Installer{}, err
	}
	for _, kp := range knownPaths[arch] {
		if _, err := m.find(kp[0]); err != nil {
			continue
		}
		if _, err := m.find(kp[1]); err != nil {
			continue
		}
		return Installer{Kernel: kp[0], Initrd: kp[1]}, nil
	}
	return Installer{}, fmt.Errorf("iso %s: no .treeinfo and no installer kernel at the usual paths for %s: %w", m.path, arch, ErrNotFound)
}

// IsISO reports whether a --location names an ISO image (by its name: a
// URL or path ending in .iso, any case).
func IsISO(location string) bool {
	l := strings.ToLower(location)
	if i := strings.IndexAny(l, "?#"); i >= 0 && isURL(l) {
		l = l[:i]
	}
	return strings.HasSuffix(l, ".iso")
}

// isURL: an http(s) or file URL, as a --location names one.
func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "file") && (u.Host != "" || u.Scheme == "file")
}

package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kscloud/kscloud/internal/isomedia"
	"github.com/kscloud/kscloud/internal/treeinfo"
)

// Located is the installer a --location gives.
type Located struct {
	Kernel, Initrd string
	Args           []string // installer arguments the medium needs
	ISO            string   // an ISO to attach as a CD-ROM ("" for a tree)
}

// Locate resolves a location: an install tree (URL or directory, its
// .treeinfo) or an ISO image (URL or file: read without mounting, kernel
// and initrd extracted into cacheDir by sha256, the image to be attached
// as a CD-ROM so that the installer finds its stage 2 and packages there).
func Locate(ctx context.Context, cacheDir, location, arch string) (Located, error) {
	arch = treeinfo.Arch(arch)
	isISO := isomedia.IsISO(location)
	if !IsURL(location) {
		if st, err := os.Stat(location); err == nil && st.Mode().IsRegular() {
			isISO = true
		}
	}
	if !isISO {
		return LocateTree(ctx, cacheDir, location, arch)
	}
	// A URL is downloaded into the cache, named by its sha256.
	iso, err := Cache{Dir: cacheDir}.Fetch(ctx, location, "")
	if err != nil {
		return Located{}, fmt.Errorf("install ISO %s: %w", location, err)
	}
	if iso, err = filepath.Abs(iso); err != nil {
		return Located{}, err
	}
	m, err := isomedia.Open(iso)
	if err != nil {
		return Located{}, err
	}
	defer m.Close()
	in, err := m.FindInstaller(arch)
	if err != nil {
		return Located{}, err
	}
	l := Located{ISO: iso}
	var ksum, isum string
	if l.Kernel, ksum, err = m.Extract(in.Kernel, cacheDir); err != nil {
		return Located{}, err
	}
	if l.Initrd, isum, err = m.Extract(in.Initrd, cacheDir); err != nil {
		return Located{}, err
	}
	for _, c := range [][3]string{{in.Kernel, in.KernelSHA256, ksum}, {in.Initrd, in.InitrdSHA256, isum}} {
		if c[1] != "" && !strings.EqualFold(c[1], c[2]) {
			return Located{}, fmt.Errorf("install ISO %s: %s has sha256 %s, its .treeinfo says %s", location, c[0], c[2], c[1])
		}
	}
	// Anaconda finds its stage 2 (and the packages) on the CD-ROM by the
	// volume label, as the ISO's own boot menu tells it.
	if label, err := m.Label(); err == nil && label != "" {
		l.Args = append(l.Args, "inst.stage2=hd:LABEL="+strings.ReplaceAll(label, " ", `\x20`))
	}
	return l, nil
}

// LocateTree resolves an install tree (URL or directory): its .treeinfo
// names the kernel and initrd of arch, fetched into cacheDir (checked
// against the .treeinfo's sha256); a tree at a URL is the installer's
// repository too (inst.repo=).
func LocateTree(ctx context.Context, cacheDir, location, arch string) (Located, error) {
	ti, err := ReadTreeInfo(ctx, location, arch)
	if err != nil {
		return Located{}, err
	}
	cache := Cache{Dir: cacheDir}
	loc := strings.TrimRight(location, "/")
	var l Located
	if l.Kernel, err = cache.Fetch(ctx, loc+"/"+ti.Kernel, ti.KernelSHA256); err != nil {
		return Located{}, fmt.Errorf("install tree kernel: %w", err)
	}
	if l.Initrd, err = cache.Fetch(ctx, loc+"/"+ti.Initrd, ti.InitrdSHA256); err != nil {
		return Located{}, fmt.Errorf("install tree initrd: %w", err)
	}
	if IsURL(location) {
		l.Args = append(l.Args, "inst.repo="+location)
	}
	return l, nil
}

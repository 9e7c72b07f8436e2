package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/isomedia"
)

// located is the installer a --location gives.
type located struct {
	kernel, initrd string
	args           []string // installer arguments the medium needs
	iso            string   // an ISO to attach as a CD-ROM ("" for a tree)
}

// treeArch is the .treeinfo section name of --arch.
func treeArch(arch string) string {
	if arch == "arm64" {
		return "aarch64"
	}
	if arch == "" || arch == "amd64" {
		return "x86_64"
	}
	return arch
}

// locate resolves --location: an install tree (URL or directory, its
// .treeinfo) or an ISO image (URL or file: read without mounting, kernel
// and initrd extracted into the cache by sha256, the image attached as a
// CD-ROM so that the installer finds its stage 2 and packages there).
func locate(ctx context.Context, stateDir, location, arch string) (located, error) {
	cache := install.Cache{Dir: filepath.Join(stateDir, "cache")}
	arch = treeArch(arch)
	isISO := isomedia.IsISO(location)
	if !install.IsURL(location) {
		if st, err := os.Stat(location); err == nil && st.Mode().IsRegular() {
			isISO = true
		}
	}
	if !isISO {
		ti, err := install.ReadTreeInfo(ctx, location, arch)
		if err != nil {
			return located{}, err
		}
		loc := strings.TrimRight(location, "/")
		var l located
		if l.kernel, err = cache.Fetch(ctx, loc+"/"+ti.Kernel, ti.KernelSHA256); err != nil {
			return located{}, fmt.Errorf("install tree kernel: %w", err)
		}
		if l.initrd, err = cache.Fetch(ctx, loc+"/"+ti.Initrd, ti.InitrdSHA256); err != nil {
			return located{}, fmt.Errorf("install tree initrd: %w", err)
		}
		if install.IsURL(location) {
			l.args = append(l.args, "inst.repo="+location)
		}
		return l, nil
	}
	// A URL is downloaded into the cache, named by its sha256.
	iso, err := cache.Fetch(ctx, location, "")
	if err != nil {
		return located{}, fmt.Errorf("install ISO %s: %w", location, err)
	}
	if iso, err = filepath.Abs(iso); err != nil {
		return located{}, err
	}
	m, err := isomedia.Open(iso)
	if err != nil {
		return located{}, err
	}
	defer m.Close()
	in, err := m.FindInstaller(arch)
	if err != nil {
		return located{}, err
	}
	dir := filepath.Join(stateDir, "cache")
	l := located{iso: iso}
	var ksum, isum string
	if l.kernel, ksum, err = m.Extract(in.Kernel, dir); err != nil {
		return located{}, err
	}
	if l.initrd, isum, err = m.Extract(in.Initrd, dir); err != nil {
		return located{}, err
	}
	for _, c := range [][3]string{{in.Kernel, in.KernelSHA256, ksum}, {in.Initrd, in.InitrdSHA256, isum}} {
		if c[1] != "" && !strings.EqualFold(c[1], c[2]) {
			return located{}, fmt.Errorf("install ISO %s: %s has sha256 %s, its .treeinfo says %s", location, c[0], c[2], c[1])
		}
	}
	// Anaconda finds its stage 2 (and the packages) on the CD-ROM by the
	// volume label, as the ISO's own boot menu tells it.
	if label, err := m.Label(); err == nil && label != "" {
		l.args = append(l.args, "inst.stage2=hd:LABEL="+strings.ReplaceAll(label, " ", `\x20`))
	}
	return l, nil
}

// useInstallMedia tells a local provider to attach the ISO to installer
// instances.
func useInstallMedia(p cloud.Provider, iso string) {
	if lp, ok := p.(*cloudlibvirt.Provider); ok && iso != "" {
		lp.SetInstallMedia(iso)
	}
}

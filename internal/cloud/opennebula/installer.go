package opennebula

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/userdata"
)

// The operator's installer catalog in OpenNebula itself: a KERNEL and a
// RAMDISK image (file datastore, READY) whose templates both carry
// KSCLOUD_INSTALLER="NAME" (set with oneimage update). KSCLOUD_CMDLINE on
// the kernel image is a command-line prefix, as the cmdline of nchookd's
// catalog; KSCLOUD_SHA256 on either image is its file's checksum (kscloud
// writes it on the images it registers) and goes into the provenance.
const (
	installerAttr = "KSCLOUD_INSTALLER"
	cmdlineAttr   = "KSCLOUD_CMDLINE"
	sha256Attr    = "KSCLOUD_SHA256"
)

// ErrCatalog marks a catalog entry kscloud cannot use as it is (two
// images of a type, an image of another type, a bad attribute).
var ErrCatalog = errors.New("installer catalog entry not usable")

// InstallerError is an installer name the catalog does not resolve into
// one READY kernel and one READY initrd. It wraps cloud.ErrNotFound (no
// such images), cloud.ErrIncorrectState (not READY) or ErrCatalog.
type InstallerError struct {
	Name, Reason string
	Err          error
	// Known are the installer names the catalog has (for the remedy).
	Known []string
}

func (e *InstallerError) Error() string { return fmt.Sprintf("installer %q: %s", e.Name, e.Reason) }

func (e *InstallerError) Unwrap() error { return e.Err }

// Installer is a catalog installer resolved into image ids.
type Installer struct {
	Name string
	// Kernel and Initrd are the images' ids (img-N).
	Kernel, Initrd string
	// Cmdline is KSCLOUD_CMDLINE of the kernel image: it goes first on
	// the installer's command line.
	Cmdline string
	// KernelSHA256 and InitrdSHA256 are the images' KSCLOUD_SHA256, ""
	// when an image does not carry it.
	KernelSHA256, InitrdSHA256 string
}

// Installer resolves an installer name of the operator's catalog: the
// images the user may use (one.imagepool.info, filter -2; oned's SQLite
// backend refuses KEY=VALUE filters, so the match is made here) carrying
// KSCLOUD_INSTALLER=name. Exactly one KERNEL and one RAMDISK image, both
// READY, or an *InstallerError naming the cause.
func (p *Provider) Installer(ctx context.Context, name string) (Installer, error) {
	s, err := p.c.callString(ctx, "one.imagepool.info", -2, -1, -1)
	if err != nil {
		return Installer{}, fmt.Errorf("installer %q: %w", name, err)
	}
	var pool imagePool
	if err := decode("image pool", s, &pool); err != nil {
		return Installer{}, fmt.Errorf("installer %q: %w", name, err)
	}
	var kernels, initrds []*imageInfo
	known := map[string]bool{}
	bad := func(reason string, err error) (Installer, error) {
		return Installer{}, &InstallerError{Name: name, Reason: reason, Err: err}
	}
	for i := range pool.Images {
		im := &pool.Images[i]
		v := im.Template.get(installerAttr)
		if v == "" || im.State == imgDelete {
			continue
		}
		if v != name {
			known[v] = true
			continue
		}
		switch im.Type {
		case typeKernel:
			kernels = append(kernels, im)
		case typeRamdisk:
			initrds = append(initrds, im)
		default:
			return bad(fmt.Sprintf("image %d (%s) is a %s image; %s belongs on one KERNEL and one RAMDISK image", im.ID, im.Name, imageTypeName(im.Type), installerAttr), ErrCatalog)
		}
	}
	if len(kernels) == 0 || len(initrds) == 0 {
		missing := "KERNEL nor RAMDISK image"
		switch {
		case len(kernels) > 0:
			missing = "RAMDISK image"
		case len(initrds) > 0:
			missing = "KERNEL image"
		}
		e := &InstallerError{Name: name, Reason: fmt.Sprintf("no %s carries %s=%q among the images this user may use", missing, installerAttr, name), Err: cloud.ErrNotFound}
		for k := range known {
			e.Known = append(e.Known, k)
		}
		sort.Strings(e.Known)
		return Installer{}, e
	}
	out := Installer{Name: name}
	for _, c := range []struct {
		typ      string
		ims      []*imageInfo
		id, hash *string
	}{{"KERNEL", kernels, &out.Kernel, &out.KernelSHA256}, {"RAMDISK", initrds, &out.Initrd, &out.InitrdSHA256}} {
		if len(c.ims) > 1 {
			var list []string
			for _, im := range c.ims {
				list = append(list, fmt.Sprintf("%d (%s, owner %s)", im.ID, im.Name, im.Owner))
			}
			return bad(fmt.Sprintf("%d %s images carry %s=%q: %s; keep it on one", len(c.ims), c.typ, installerAttr, name, strings.Join(list, ", ")), ErrCatalog)
		}
		im := c.ims[0]
		if im.State != imgReady {
			why := ""
			if e := im.Template.get("ERROR"); e != "" && im.State == imgError {
				why = ": " + e
			}
			return bad(fmt.Sprintf("%s image %d (%s) is %s, not READY%s", c.typ, im.ID, im.Name, imageStateName(im.State), why), cloud.ErrIncorrectState)
		}
		if h := im.Template.get(sha256Attr); h != "" {
			if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
				return bad(fmt.Sprintf("%s image %d (%s): %s %q is not a sha256 (64 hex digits)", c.typ, im.ID, im.Name, sha256Attr, clip(h)), ErrCatalog)
			}
			*c.hash = strings.ToLower(h)
		}
		*c.id = fmt.Sprintf("%s%d", preImage, im.ID)
	}
	k := kernels[0]
	out.Cmdline = k.Template.get(cmdlineAttr)
	if err := userdata.CheckCmdline(out.Cmdline); out.Cmdline != "" && err != nil {
		return bad(fmt.Sprintf("KERNEL image %d (%s): %s: %v", k.ID, k.Name, cmdlineAttr, err), ErrCatalog)
	}
	if i := initrds[0]; i.Template.get(cmdlineAttr) != "" {
		return bad(fmt.Sprintf("RAMDISK image %d (%s) carries %s: the command line belongs on the KERNEL image (%d)", i.ID, i.Name, cmdlineAttr, k.ID), ErrCatalog)
	}
	return out, nil
}

func imageTypeName(t int) string {
	names := []string{"OS", "CDROM", "DATABLOCK", "KERNEL", "RAMDISK", "CONTEXT", "BACKUP"}
	if t >= 0 && t < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type-%d", t)
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

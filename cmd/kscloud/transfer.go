package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/install"
)

// cmdImageTransfer is kscloud images export|import (local libvirt
// images; an EC2 cloud imports through its own API).
func cmdImageTransfer(sub string, args []string, stdout, stderr io.Writer) int {
	usage := "export NAME|ID --format qcow2|raw|vmdk|vdi [--compress zstd|xz] FILE"
	if sub == "import" {
		usage = "import FILE --provenance FILE [--name NAME]"
	}
	fs := newFlagSet("images", usage, stderr)
	var g global
	g.register(fs)
	format := fs.String("format", "qcow2", "export `format`: qcow2, raw, vmdk or vdi")
	compress := fs.String("compress", "", "compress the export: zstd or xz")
	provFile := fs.String("provenance", "", "import: the image's provenance JSON `file`")
	name := fs.String("name", "", "import: the image `name` (default the file's base name)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(stderr, "kscloud images: %v\n", err)
		return 2
	}
	if g.provider != "libvirt" {
		fmt.Fprintf(stderr, "kscloud images %s: local libvirt images only (an EC2 cloud imports images through its own API)\n", sub)
		return 2
	}
	want := 2
	if sub == "import" {
		want = 1
	}
	if len(pos) != want {
		fs.Usage()
		return 2
	}
	if sub == "export" {
		if msg := checkExport(*format, *compress); msg != "" {
			fmt.Fprintf(stderr, "kscloud images export: %s\n", msg)
			return 2
		}
	} else if *provFile == "" {
		fmt.Fprintln(stderr, "kscloud images import: --provenance FILE is required (what the image is and where it came from)")
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	p, closeP, err := g.openProvider(ctx, stderr)
	if err != nil {
		return fail(stderr, "images "+sub, err)
	}
	defer closeP()
	lp := p.(*cloudlibvirt.Provider)
	if sub == "export" {
		im, err := p.Image(ctx, pos[0])
		if err != nil {
			return fail(stderr, "images export", err)
		}
		start := time.Now()
		e, err := cloudlibvirt.Export(ctx, im.Path, pos[1], *format, *compress)
		if err != nil {
			return fail(stderr, "images export", fmt.Errorf("image %s: %w", im.Name, err))
		}
		printExport(stdout, g.output, im.Name, e, time.Since(start))
		return 0
	}
	prov, err := install.ReadSource(ctx, *provFile, 1<<20)
	if err != nil {
		return fail(stderr, "images import", fmt.Errorf("provenance %s: %w", *provFile, err))
	}
	n := *name
	if n == "" {
		base := filepath.Base(pos[0])
		n = base[:len(base)-len(filepath.Ext(base))]
	}
	im, err := lp.ImportImage(ctx, pos[0], n, prov, cloud.Tags{cloud.TagCreator: "kscloud"})
	if err != nil {
		return fail(stderr, "images import", err)
	}
	sum, _ := install.SHA256File(im.Path)
	if g.output == "json" {
		printJSON(stdout, map[string]any{"image": viewImage(im), "image_sha256": sum})
		return 0
	}
	fmt.Fprintf(stdout, "image\t%s\nname\t%s\npath\t%s\nimage_sha256\t%s\n", im.ID, im.Name, im.Path, sum)
	return 0
}

func checkExport(format, compress string) string {
	ok := false
	for _, f := range cloudlibvirt.ExportFormats {
		ok = ok || f == format
	}
	if !ok {
		return fmt.Sprintf("--format %q: want qcow2, raw, vmdk or vdi", format)
	}
	if compress != "" && compress != "zstd" && compress != "xz" {
		return fmt.Sprintf("--compress %q: want zstd or xz", compress)
	}
	return ""
}

func printExport(w io.Writer, output, image string, e cloudlibvirt.Exported, took time.Duration) {
	if output == "json" {
		printJSON(w, map[string]any{"image": image, "path": e.Path, "format": e.Format, "compress": e.Compress,
			"size": e.Size, "disk_bytes": e.Disk, "sha256": e.SHA256, "seconds": took.Seconds()})
		return
	}
	fmt.Fprintf(w, "image\t%s\npath\t%s\nformat\t%s\n", image, e.Path, e.Format)
	if e.Compress != "" {
		fmt.Fprintf(w, "compress\t%s\n", e.Compress)
	}
	fmt.Fprintf(w, "size\t%d\ndisk_bytes\t%d\nsha256\t%s\nseconds\t%.1f\n", e.Size, e.Disk, e.SHA256, took.Seconds())
}

// bakeExport writes the baked image in another format beside it (bake
// --format raw|vmdk|vdi) and returns the export.
func bakeExport(b *install.Build, format string, st *status) (*cloudlibvirt.Exported, error) {
	if format == "" || format == "qcow2" || b.Result == nil || b.Result.ImagePath == "" {
		return nil, nil
	}
	src := b.Result.ImagePath
	dst := src[:len(src)-len(filepath.Ext(src))] + "." + format
	st.line("exporting the image as " + format)
	ctx, cancel := signalContext()
	defer cancel()
	e, err := cloudlibvirt.Export(ctx, src, dst, format, "")
	if err != nil {
		os.Remove(dst)
		return nil, err
	}
	return &e, nil
}

// recordImageDigest puts the baked image file's own sha256 into its
// provenance, and the machine it boots on (local images; a cloud's image
// has no file here).
func recordImageDigest(ctx context.Context, p cloud.Provider, b *install.Build) error {
	r := b.Result
	if r.ImagePath == "" || r.Provenance == nil {
		return nil
	}
	var merr error
	if lp, ok := p.(*cloudlibvirt.Provider); ok {
		m, err := lp.ResolveMachine(ctx)
		r.Provenance.Firmware, r.Provenance.Arch, merr = m.Boot, m.Arch, err
	}
	sum, err := install.SHA256File(r.ImagePath)
	r.Provenance.ImageSHA256 = sum
	return errors.Join(merr, err)
}

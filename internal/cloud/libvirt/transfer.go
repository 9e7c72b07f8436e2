package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/install"
)

// ExportFormats are the disk formats an image is exported to (qemu-img's
// names); vmdk is a monolithic sparse VMDK, vdi a dynamic VDI, raw a
// sparse file.
var ExportFormats = []string{"qcow2", "raw", "vmdk", "vdi"}

// Exported is a written export.
type Exported struct {
	Path   string
	Format string
	// Compress is "", zstd or xz.
	Compress string
	Size     int64  // bytes the file holds (apparent size)
	Disk     int64  // bytes it occupies on disk (sparse files less)
	SHA256   string // of the file as written
}

// Export writes the image file src as format (qemu-img convert; holes
// stay holes in raw, unallocated clusters in the others) at dst,
// compressed with zstd or xz when asked, through a temporary file beside
// dst (nothing half-written is left under dst's name).
func Export(ctx context.Context, src, dst, format, compress string) (Exported, error) {
	if !validFormat(format) {
		return Exported{}, fmt.Errorf("format %q: want qcow2, raw, vmdk or vdi", format)
	}
	switch compress {
	case "", "zstd", "xz":
	default:
		return Exported{}, fmt.Errorf("compression %q: want zstd or xz", compress)
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*")
	if err != nil {
		return Exported{}, fmt.Errorf("export %s: %w", dst, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)
	conv := tmpName
	if compress != "" {
		conv = tmpName + ".disk"
		defer os.Remove(conv)
	}
	srcFmt, err := imageFormat(ctx, src)
	if err != nil {
		return Exported{}, err
	}
	args := []string{"convert", "-f", srcFmt, "-O", format}
	if format == "raw" {
		args = append(args, "-S", "4k") // sparse: zero runs become holes
	}
	if out, err := exec.CommandContext(ctx, "qemu-img", append(args, src, conv)...).CombinedOutput(); err != nil {
		return Exported{}, fmt.Errorf("export %s: qemu-img convert: %v: %s", filepath.Base(src), err, strings.TrimSpace(string(out)))
	}
	if compress != "" {
		if err := compressFile(ctx, conv, tmpName, compress); err != nil {
			return Exported{}, fmt.Errorf("export %s: %s: %w", dst, compress, err)
		}
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return Exported{}, err
	}
	sum, err := install.SHA256File(tmpName)
	if err != nil {
		return Exported{}, err
	}
	if err := os.Rename(tmpName, dst); err != nil {
		return Exported{}, fmt.Errorf("export %s: %w", dst, err)
	}
	e := Exported{Path: dst, Format: format, Compress: compress, SHA256: sum}
	e.Size, e.Disk = fileSizes(dst)
	return e, nil
}

func validFormat(f string) bool {
	for _, v := range ExportFormats {
		if f == v {
			return true
		}
	}
	return false
}

// compressFile streams src into dst: zstd (klauspost/compress, all
// cores) or xz (ulikunitz/xz). A sparse source's holes read as zeros and
// compress to almost nothing.
func compressFile(ctx context.Context, src, dst, how string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	var w io.WriteCloser
	switch how {
	case "zstd":
		w, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault))
	case "xz":
		w, err = xz.NewWriter(out)
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, ctxReader{ctx, in}); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return out.Close()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// imageInfo is what qemu-img says about a file.
type imageInfo struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	FormatSpecific  struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

func qemuImgInfo(ctx context.Context, p string, format string) (imageInfo, error) {
	args := []string{"info", "--output=json"}
	if format != "" {
		args = append(args, "-f", format)
	}
	out, err := exec.CommandContext(ctx, "qemu-img", append(args, p)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return imageInfo{}, fmt.Errorf("qemu-img info %s: %s", filepath.Base(p), strings.TrimSpace(string(ee.Stderr)))
		}
		return imageInfo{}, fmt.Errorf("qemu-img info %s: %w", filepath.Base(p), err)
	}
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return imageInfo{}, fmt.Errorf("qemu-img info %s: %w", filepath.Base(p), err)
	}
	return info, nil
}

func imageFormat(ctx context.Context, p string) (string, error) {
	info, err := qemuImgInfo(ctx, p, "")
	if err != nil {
		return "", err
	}
	return info.Format, nil
}

// ImportImage registers a qcow2 or raw file as an image named name, with
// provenance (a JSON document) beside it. The file is converted into a
// fresh sparse qcow2 in the image pool (never used in place); a qcow2
// with a backing file or an external data file is refused: it would make
// the image read files of the host's choosing.
func (p *Provider) ImportImage(ctx context.Context, file, name string, provenance []byte, tags cloud.Tags) (cloud.Image, error) {
	if !validImageName(name) {
		return cloud.Image{}, fmt.Errorf("image %q: name must be 1–128 of [A-Za-z0-9._-]", name)
	}
	if _, err := p.imageByName(name); err == nil {
		return cloud.Image{}, fmt.Errorf("image %q: a registered image has that name: %w", name, cloud.ErrIncorrectState)
	}
	var prov map[string]any
	if err := json.Unmarshal(provenance, &prov); err != nil {
		return cloud.Image{}, fmt.Errorf("image %q: provenance: not a JSON object: %w", name, err)
	}
	info, err := qemuImgInfo(ctx, file, "")
	if err != nil {
		return cloud.Image{}, fmt.Errorf("image %q: %w", name, err)
	}
	switch {
	case info.Format != "qcow2" && info.Format != "raw":
		return cloud.Image{}, fmt.Errorf("image %q: %s is %s: want qcow2 or raw", name, file, info.Format)
	case info.BackingFilename != "":
		return cloud.Image{}, fmt.Errorf("image %q: %s has a backing file (%s): import a standalone image (qemu-img convert)", name, file, info.BackingFilename)
	case info.FormatSpecific.Data.DataFile != "":
		return cloud.Image{}, fmt.Errorf("image %q: %s has an external data file: import a standalone image", name, file)
	}
	id := newID("snap-")
	rec := &record{Kind: "snapshot", ID: id, Tags: tags, Created: time.Now().UTC(), Description: "imported from " + file,
		State: cloud.SnapshotPending, Path: filepath.Join(p.opt.ImageDir, id+".qcow2")}
	if err := p.reg.put(rec); err != nil {
		return cloud.Image{}, err
	}
	tmp := rec.Path + ".tmp"
	out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-f", info.Format, "-O", "qcow2", file, tmp).CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		p.reg.remove(id)
		return cloud.Image{}, fmt.Errorf("image %q: qemu-img convert %s: %v: %s", name, file, err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, rec.Path); err != nil {
		p.reg.remove(id)
		return cloud.Image{}, err
	}
	p.reg.update("snapshot", id, func(r *record) { r.State, r.Progress = cloud.SnapshotCompleted, 100 })
	img, err := p.RegisterImage(ctx, cloud.ImageSpec{Name: name, SnapshotID: id, Description: "imported from " + filepath.Base(file)})
	if err != nil {
		p.DeleteSnapshot(context.WithoutCancel(ctx), id)
		return cloud.Image{}, err
	}
	if sum, err := install.SHA256File(img.Path); err == nil {
		prov["image_sha256"] = sum
	}
	prov["imported_from"] = file
	b, _ := json.MarshalIndent(prov, "", "  ")
	if err := atomicfile.Write(provenancePath(img.Path), append(b, '\n'), 0o644); err != nil {
		return cloud.Image{}, err
	}
	return img, nil
}

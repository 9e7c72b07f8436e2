package libvirt

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/install"
)

// TestExport converts a sparse qcow2 image to every format, plain and
// compressed: qemu-img compare finds the same disk, raw stays sparse, and
// Debian's zstd and xz (not the Go encoders that wrote them) accept the
// compressed files, whose content is again the same disk.
func TestExport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.img")
	sparseVolume(t, raw, 256<<20, 8<<20)
	img := filepath.Join(dir, "img.qcow2")
	if err := Convert(ctx, raw, img, nil); err != nil {
		t.Fatal(err)
	}
	for _, format := range ExportFormats {
		for _, comp := range []string{"", "zstd", "xz"} {
			if comp == "xz" && format != "raw" {
				continue // xz is slow; once is enough
			}
			name := format + "-" + comp
			t.Run(name, func(t *testing.T) {
				dst := filepath.Join(dir, "out."+name)
				e, err := Export(ctx, img, dst, format, comp)
				if err != nil {
					t.Fatal(err)
				}
				sum, _ := install.SHA256File(dst)
				if e.SHA256 != sum || len(sum) != 64 {
					t.Fatalf("sha256 %s, file has %s", e.SHA256, sum)
				}
				disk := dst
				if comp != "" {
					disk = dst + ".disk"
					tool := map[string]string{"zstd": "zstd", "xz": "xz"}[comp]
					if out, err := exec.Command(tool, "-t", dst).CombinedOutput(); err != nil {
						t.Fatalf("%s -t: %v: %s", tool, err, out)
					}
					if out, err := exec.Command("sh", "-c", tool+" -dc "+dst+" > "+disk).CombinedOutput(); err != nil {
						t.Fatalf("%s -d: %v: %s", tool, err, out)
					}
					if e.Size >= 50<<20 {
						t.Fatalf("compressed export is %d bytes", e.Size)
					}
				}
				if out, err := exec.Command("qemu-img", "compare", "-f", "qcow2", "-F", format, img, disk).CombinedOutput(); err != nil {
					t.Fatalf("qemu-img compare: %v: %s", err, out)
				}
				if format == "raw" && comp == "" && (e.Size != 256<<20 || e.Disk > 32<<20) {
					t.Fatalf("raw export not sparse: size %d, on disk %d", e.Size, e.Disk)
				}
				if comp == "" && format != "raw" && e.Disk > 32<<20 {
					t.Fatalf("%s export takes %d bytes on disk", format, e.Disk)
				}
			})
		}
	}
	// Bad requests leave nothing behind.
	for _, c := range [][2]string{{"ova", ""}, {"raw", "gzip"}} {
		dst := filepath.Join(dir, "bad")
		if _, err := Export(ctx, img, dst, c[0], c[1]); err == nil || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%v: err %v", c, err)
		}
		if _, err := os.Stat(dst); err == nil {
			t.Fatalf("%v: %s written", c, dst)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporaries left: %v", left)
	}
}

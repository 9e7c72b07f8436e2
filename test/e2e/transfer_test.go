package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2EKscloudImageFormats: bake the demo kickstart with --format vmdk
// (the qcow2 image plus a VMDK beside it, the image's sha256 in its
// provenance), export the image in every format (and compressed), import
// the raw export back under a new name with the provenance, and boot the
// imported image: its installed system prints the kickstart's marker.
func TestE2EKscloudImageFormats(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	ksb, err := os.ReadFile("../installer/examples/minimal.ks")
	if err != nil {
		t.Fatal(err)
	}
	ks := writeKS(t, string(ksb))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	r := e.kscloud(t, ctx, "bake", "--accel", "tcg", "--format", "vmdk", "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--name", "fmt", "--output", "json")
	if r.code != 0 {
		t.Fatalf("bake: exit %d\n%s", r.code, r.stderr)
	}
	var out struct {
		Result struct {
			ImageName, ImagePath string `json:"-"`
		}
		Export struct{ Path, SHA256 string }
	}
	json.Unmarshal([]byte(r.stdout), &out)
	res := bakeResult(t, r.stdout)
	if res.Provenance == nil || len(res.Provenance.ImageSHA256) != 64 || res.Provenance.ImageSHA256 != fileSHA(t, res.ImagePath) {
		t.Fatalf("image sha256 not recorded: %+v", res.Provenance)
	}
	prov := strings.TrimSuffix(res.ImagePath, ".qcow2") + ".provenance.json"
	if b, _ := os.ReadFile(prov); !strings.Contains(string(b), res.Provenance.ImageSHA256) {
		t.Fatalf("provenance file lacks the image sha256:\n%s", b)
	}
	if out.Export.Path != strings.TrimSuffix(res.ImagePath, ".qcow2")+".vmdk" || out.Export.SHA256 != fileSHA(t, out.Export.Path) {
		t.Fatalf("bake --format vmdk: export %+v", out.Export)
	}
	dir := t.TempDir()
	var lines []string
	for _, c := range [][2]string{{"qcow2", ""}, {"raw", ""}, {"vmdk", ""}, {"vdi", ""}, {"raw", "zstd"}, {"raw", "xz"}, {"qcow2", "zstd"}} {
		dst := filepath.Join(dir, "demo."+c[0]+map[string]string{"": "", "zstd": ".zst", "xz": ".xz"}[c[1]])
		args := []string{"images", "export", res.ImageName, "--format", c[0], dst, "--output", "json"}
		if c[1] != "" {
			args = append(args, "--compress", c[1])
		}
		r := e.kscloud(t, ctx, args...)
		if r.code != 0 {
			t.Fatalf("export %v: exit %d\n%s", c, r.code, r.stderr)
		}
		var ex struct {
			Size, DiskBytes int64 `json:"-"`
			Sha256          string
			Seconds         float64
		}
		var raw map[string]any
		json.Unmarshal([]byte(r.stdout), &ex)
		json.Unmarshal([]byte(r.stdout), &raw)
		if ex.Sha256 != fileSHA(t, dst) {
			t.Fatalf("export %v: printed sha256 %s is not the file's", c, ex.Sha256)
		}
		lines = append(lines, fmt.Sprintf("%-6s %-4s size %9.0f B  on disk %9.0f B  %5.1f s", c[0], c[1], raw["size"], raw["disk_bytes"], ex.Seconds))
	}
	t.Logf("exports of the demo image (%s):\n%s", res.ImageName, strings.Join(lines, "\n"))
	// Import the raw export under a new name, boot it.
	r = e.kscloud(t, ctx, "images", "import", filepath.Join(dir, "demo.raw"), "--provenance", prov, "--name", "imported-demo")
	if r.code != 0 || !strings.Contains(r.stdout, "image_sha256\t") {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.kscloud(t, ctx, "run", "--accel", "tcg", "--image", "imported-demo")
	if r.code != 0 || !strings.Contains(r.stdout, "kscloud-installed sha256="+sha(string(ksb))) {
		t.Fatalf("run --image imported-demo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A vdi is not importable; nothing is registered.
	r = e.kscloud(t, ctx, "images", "import", filepath.Join(dir, "demo.vdi"), "--provenance", prov, "--name", "nope")
	if r.code == 0 || !strings.Contains(r.stderr, "is vdi: want qcow2 or raw") {
		t.Fatalf("import vdi: exit %d\n%s", r.code, r.stderr)
	}
}

func fileSHA(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha(string(b))
}

// TestE2EKscloudConcurrentBakes: three bakes at once with one state
// directory on one libvirt host (the smallest guest: 1 GiB disk, 384 MiB,
// the test installer, HTTP kickstart delivery so each runs its own
// server) all finish with distinct images, instances and servers, and
// leave nothing behind. The total against one bake is logged.
func TestE2EKscloudConcurrentBakes(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	ks := writeKS(t, baseKS+"poweroff\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bake := func(n int) (result, time.Duration) {
		start := time.Now()
		r := e.kscloud(t, ctx, "bake", "--accel", "tcg", "--memory", "384", "--ks", ks, "--ks-delivery", "http", "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--name", fmt.Sprintf("conc%d", n), "--output", "json")
		return r, time.Since(start)
	}
	r, one := bake(0)
	if r.code != 0 {
		t.Fatalf("single bake: exit %d\n%s", r.code, r.stderr)
	}
	var wg sync.WaitGroup
	results := make([]result, 3)
	start := time.Now()
	for n := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[n], _ = bake(n + 1)
		}()
	}
	wg.Wait()
	three := time.Since(start)
	images := map[string]bool{}
	for n, r := range results {
		if r.code != 0 {
			t.Fatalf("concurrent bake %d: exit %d\n%s", n+1, r.code, r.stderr)
		}
		res := bakeResult(t, r.stdout)
		images[res.ImageID] = true
	}
	if len(images) != 3 {
		t.Fatalf("concurrent bakes made %d distinct images", len(images))
	}
	if left := e.leftovers(t); len(left) != 0 {
		t.Fatalf("concurrent bakes left %v", left)
	}
	t.Logf("one bake %v; three concurrent bakes %v in total", one.Round(time.Second), three.Round(time.Second))
}

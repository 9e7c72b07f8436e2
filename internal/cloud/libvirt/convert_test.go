package libvirt

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// sparseVolume writes a raw file of size bytes holding data bytes in 1 MiB
// extents spread evenly; the rest is holes.
func sparseVolume(tb testing.TB, path string, size, data int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1)
	}
	n := data / int64(len(chunk))
	if n == 0 {
		return
	}
	stride := size / n
	for i := int64(0); i < n; i++ {
		if _, err := f.WriteAt(chunk, i*stride); err != nil {
			tb.Fatal(err)
		}
	}
}

func allocated(tb testing.TB, path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		tb.Fatal(err)
	}
	return st.Blocks * 512
}

func TestConvertIsSparseAndFaithful(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img is not installed: run scripts/deps.sh (package qemu-utils)")
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "vol.img"), filepath.Join(dir, "snap.qcow2")
	sparseVolume(t, src, 256<<20, 8<<20)
	var seen []int
	if err := Convert(context.Background(), src, dst, func(p int) { seen = append(seen, p) }); err != nil {
		t.Fatal(err)
	}
	if a := allocated(t, dst); a > 16<<20 {
		t.Fatalf("qcow2 allocates %d bytes for 8 MiB of data: not sparse", a)
	}
	out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("converted image differs: %v %s", err, out)
	}
	if len(seen) == 0 || seen[len(seen)-1] != 100 {
		t.Fatalf("progress %v does not reach 100", seen)
	}
	if _, err := os.Stat(dst + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("temporary file left")
	}
	if err := Convert(context.Background(), filepath.Join(dir, "absent"), filepath.Join(dir, "x.qcow2"), nil); err == nil {
		t.Fatal("converting a missing file succeeded")
	}
}

// BenchmarkConvert10G: a 10 GiB volume holding 1 GiB of data, converted by
// kscloud's snapshot conversion, by plain qemu-img convert, and copied by
// dd bs=8M (what seed 000 does). Reports seconds and bytes allocated by
// the output.
func BenchmarkConvert10G(b *testing.B) {
	dir, err := os.MkdirTemp("/var/tmp", "kscloud-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "vol.img")
	sparseVolume(b, src, 10<<30, 1<<30)
	exec.Command("sync").Run()
	run := func(b *testing.B, name string, fn func(dst string) error) {
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			var alloc int64
			for i := 0; i < b.N; i++ {
				dst := filepath.Join(dir, name+".out")
				os.Remove(dst)
				start := time.Now()
				if err := fn(dst); err != nil {
					b.Fatal(err)
				}
				exec.Command("sync").Run()
				total += time.Since(start)
				alloc = allocated(b, dst)
				os.Remove(dst)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/convert")
			b.ReportMetric(float64(alloc)/(1<<20), "MiB-allocated")
		})
	}
	run(b, "kscloud", func(dst string) error { return Convert(context.Background(), src, dst, nil) })
	run(b, "qemu-img", func(dst string) error {
		return exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, dst).Run()
	})
	run(b, "dd", func(dst string) error {
		return exec.Command("dd", "if="+src, "of="+dst, "bs=8M", "status=none").Run()
	})
}

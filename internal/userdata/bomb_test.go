package userdata

import (
	"bytes"
	"compress/gzip"
	"runtime"
	"testing"
	"time"
)

// zeroBomb returns gzip-compressed zeros: n MiB of them.
func zeroBomb(t *testing.T, mib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range mib {
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGzipBomb checks that compressed user-data that expands far beyond
// MaxExpanded fails quickly with ErrTooLarge and that Parse allocates a bounded
// amount of memory doing so: about the 1 MiB budget, not the 100 MB the data
// expands to.
func TestGzipBomb(t *testing.T) {
	bomb100 := zeroBomb(t, 100) // about 127 KB
	bomb48 := zeroBomb(t, 48)   // under the default 64 KiB input limit
	if len(bomb48) > DefaultLimits().MaxInput {
		t.Fatalf("48 MiB bomb is %d bytes, over the input limit; the test needs a smaller one", len(bomb48))
	}
	for _, tc := range []struct {
		name string
		in   []byte
		lim  Limits
		msg  string
	}{
		{"100 MB top level", bomb100, Limits{MaxInput: 1 << 20}, "user-data: gzip: expanded size exceeds 1048576 bytes"},
		{"48 MiB default limits", bomb48, DefaultLimits(), "user-data: gzip: expanded size exceeds 1048576 bytes"},
		{"100 MB in a MIME part", []byte(multipart("b",
			part{"Content-Type: text/plain", seed},
			part{"Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64", b64(string(bomb100))})),
			Limits{MaxInput: 1 << 20}, "user-data: MIME part 2: gzip: expanded size exceeds 1048576 bytes"},
		{"100 MB as a kickstart", []byte(multipart("b",
			part{"Content-Type: text/x-kickstart\nContent-Transfer-Encoding: base64", b64(string(bomb100))})),
			Limits{MaxInput: 1 << 20}, "user-data: MIME part 1: gzip: expanded size exceeds 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := Parse(tc.in, tc.lim)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			checkErr(t, err, ErrTooLarge, tc.msg)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes in, %v, %d bytes allocated", len(tc.in), elapsed, allocated)
			if allocated > 8<<20 {
				t.Errorf("Parse allocated %d bytes, want < 8 MiB", allocated)
			}
			// Inflating 1 MiB takes milliseconds; inflating 100 MB takes far
			// longer than this bound even on a fast machine.
			if elapsed > 2*time.Second {
				t.Errorf("Parse took %v", elapsed)
			}
		})
	}
}

// TestGunzipBoundedBuffer checks the buffer bound directly: the output buffer
// never grows past budget+1 bytes, and output of exactly budget bytes is fine.
func TestGunzipBoundedBuffer(t *testing.T) {
	data := gz(t, bytes.Repeat([]byte("x"), 5000))
	for _, tc := range []struct {
		budget int
		ok     bool
	}{{5000, true}, {4999, false}, {0, false}, {1 << 20, true}} {
		out, err := gunzipBounded(data, tc.budget)
		if tc.ok != (err == nil) {
			t.Errorf("budget %d: err = %v", tc.budget, err)
			continue
		}
		if err == nil && (len(out) != 5000 || cap(out) > tc.budget+1) {
			t.Errorf("budget %d: len %d cap %d", tc.budget, len(out), cap(out))
		}
		if err != nil && err != errOverBudget {
			t.Errorf("budget %d: err = %v, want errOverBudget", tc.budget, err)
		}
	}
}

package install

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLocateISOURLCached: a --location ISO URL is downloaded by the first
// launch only; the next launches revalidate it (304) and read the kernel
// and initrd from the cached copy, by sha256.
func TestLocateISOURLCached(t *testing.T) {
	x, err := exec.LookPath("xorriso")
	if err != nil {
		t.Fatal("xorriso not found (Debian's xorriso; scripts/deps.sh installs it)")
	}
	tree := t.TempDir()
	kernel, initrd := bytes.Repeat([]byte("K"), 9000), bytes.Repeat([]byte("I"), 7000)
	os.MkdirAll(filepath.Join(tree, "images", "pxeboot"), 0o755)
	os.WriteFile(filepath.Join(tree, "images", "pxeboot", "vmlinuz"), kernel, 0o644)
	os.WriteFile(filepath.Join(tree, "images", "pxeboot", "initrd.img"), initrd, 0o644)
	iso := filepath.Join(t.TempDir(), "media.iso")
	if out, err := exec.Command(x, "-as", "mkisofs", "-V", "TEST_MEDIA", "-R", "-J", "-o", iso, tree).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(iso)
	var downloads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == "" {
			downloads.Add(1)
		}
		w.Header().Set("ETag", `"media-1"`)
		http.ServeContent(w, r, "media.iso", time.Unix(1700000000, 0), bytes.NewReader(data))
	}))
	defer srv.Close()
	state := t.TempDir()
	var first Located
	for i := 0; i < 3; i++ {
		l, err := Locate(context.Background(), filepath.Join(state, "cache"), srv.URL+"/media.iso", "x86_64")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(l.Kernel); !bytes.Equal(got, kernel) || !strings.Contains(strings.Join(l.Args, " "), "inst.stage2=hd:LABEL=TEST_MEDIA") {
			t.Fatalf("launch %d: kernel %s, args %v", i, l.Kernel, l.Args)
		}
		if i == 0 {
			first = l
		} else if l.ISO != first.ISO || l.Kernel != first.Kernel {
			t.Fatalf("launch %d: %+v, first %+v", i, l, first)
		}
	}
	if n := downloads.Load(); n != 1 {
		t.Fatalf("the ISO was downloaded %d times in 3 launches, want 1", n)
	}
}

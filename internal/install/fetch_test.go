package install

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTreeInfoAndCache(t *testing.T) {
	kernel, initrd := []byte("kernel-bytes"), []byte("initrd-bytes")
	treeinfo := "[general]\nfamily = Fedora\nversion = 40\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n" +
		"[checksums]\nimages/pxeboot/vmlinuz = sha256:" + SHA256(kernel) + "\nimages/pxeboot/initrd.img = sha256:" + SHA256(initrd) + "\n"
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/os/.treeinfo":
			w.Write([]byte(treeinfo))
		case "/os/images/pxeboot/vmlinuz":
			w.Write(kernel)
		case "/os/images/pxeboot/initrd.img":
			w.Write(initrd)
		case "/bad/.treeinfo":
			w.Write([]byte("[general]\nname=x\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	ti, err := ReadTreeInfo(ctx, srv.URL+"/os/", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if ti.Kernel != "images/pxeboot/vmlinuz" || ti.KernelSHA256 != SHA256(kernel) || ti.Family != "Fedora" || ti.Version != "40" {
		t.Fatalf("%+v", ti)
	}
	c := Cache{Dir: t.TempDir()}
	p, err := c.Fetch(ctx, srv.URL+"/os/"+ti.Kernel, ti.KernelSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(kernel) || filepath.Base(p) != SHA256(kernel) {
		t.Fatalf("cached %s", p)
	}
	before := hits.Load()
	if p2, err := c.Fetch(ctx, srv.URL+"/os/"+ti.Kernel, ti.KernelSHA256); err != nil || p2 != p || hits.Load() != before {
		t.Fatalf("second fetch was not served from the cache: %v %d→%d", err, before, hits.Load())
	}
	if _, err := c.Fetch(ctx, srv.URL+"/os/"+ti.Initrd, SHA256([]byte("other"))); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("checksum mismatch accepted: %v", err)
	}
	if _, err := ReadTreeInfo(ctx, srv.URL+"/bad", "x86_64"); err == nil || !strings.Contains(err.Error(), "no kernel/initrd") {
		t.Fatalf("bad treeinfo: %v", err)
	}
	if _, err := ReadTreeInfo(ctx, srv.URL+"/none", "x86_64"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing treeinfo: %v", err)
	}
}

func TestReadSourceBounds(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ks.cfg")
	os.WriteFile(p, []byte(strings.Repeat("x", 100)), 0o644)
	if _, err := ReadSource(context.Background(), p, 10); err == nil {
		t.Fatal("size limit ignored")
	}
	if b, err := ReadSource(context.Background(), "file://"+p, 1000); err != nil || len(b) != 100 {
		t.Fatalf("%v", err)
	}
	if _, err := ReadSource(context.Background(), dir, 1000); err == nil {
		t.Fatal("a directory was read")
	}
}

// TestCacheURLRevalidates: a URL without a known checksum (an install
// ISO's) is downloaded once while its server says it has not changed
// (ETag/If-None-Match, Last-Modified/If-Modified-Since: 304), downloaded
// again when it changed, and every time from a server without validators.
func TestCacheURLRevalidates(t *testing.T) {
	content := []byte("iso-v1")
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var full, conditional atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
			conditional.Add(1)
		}
		switch r.URL.Path {
		case "/etag.iso":
			w.Header().Set("ETag", `"`+SHA256(content)[:16]+`"`)
		case "/lastmod.iso":
		case "/plain.iso":
			if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
				t.Errorf("conditional request for a URL that gave no validators")
			}
			full.Add(1)
			w.Write(content)
			return
		}
		http.ServeContent(&countingWriter{ResponseWriter: w, n: &full}, r, "x.iso", mod, strings.NewReader(string(content)))
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, path := range []string{"/etag.iso", "/lastmod.iso"} {
		content, mod = []byte("iso-v1"), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		full.Store(0)
		conditional.Store(0)
		c := Cache{Dir: t.TempDir()}
		p1, err := c.Fetch(ctx, srv.URL+path, "")
		if err != nil {
			t.Fatal(err)
		}
		p2, err := c.Fetch(ctx, srv.URL+path, "")
		if err != nil || p2 != p1 || full.Load() != 1 || conditional.Load() != 1 {
			t.Fatalf("%s: second launch: %v, %s vs %s, %d downloads, %d conditional requests; want one download, one 304", path, err, p2, p1, full.Load(), conditional.Load())
		}
		content, mod = []byte("iso-v2"), mod.Add(time.Hour)
		p3, err := c.Fetch(ctx, srv.URL+path, "")
		if b, _ := os.ReadFile(p3); err != nil || string(b) != "iso-v2" || filepath.Base(p3) != SHA256(content) || full.Load() != 2 {
			t.Fatalf("%s: changed ISO: %v, %s holds %q, %d downloads", path, err, p3, b, full.Load())
		}
	}
	full.Store(0)
	c := Cache{Dir: t.TempDir()}
	for range 2 {
		if _, err := c.Fetch(ctx, srv.URL+"/plain.iso", ""); err != nil {
			t.Fatal(err)
		}
	}
	if full.Load() != 2 {
		t.Fatalf("a server without validators: %d downloads, want 2", full.Load())
	}
}

// countingWriter counts the answers that carry a body (200).
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int32
}

func (w *countingWriter) WriteHeader(code int) {
	if code == http.StatusOK {
		w.n.Add(1)
	}
	w.ResponseWriter.WriteHeader(code)
}

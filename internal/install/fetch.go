package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/treeinfo"
)

// MaxKickstart bounds a kickstart read from a file or URL.
const MaxKickstart = 1 << 20

// IsURL reports whether s is an http(s), ftp or file URL.
func IsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "file") && (u.Host != "" || u.Scheme == "file")
}

// ReadSource reads a local file or an http(s)/file URL, at most max bytes.
func ReadSource(ctx context.Context, src string, max int64) ([]byte, error) {
	if IsURL(src) {
		u, _ := url.Parse(src)
		if u.Scheme == "file" {
			return readFile(u.Path, max)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %s", src, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if int64(len(b)) > max {
			return nil, fmt.Errorf("%s: over %d bytes", src, max)
		}
		return b, nil
	}
	return readFile(src, max)
}

func readFile(p string, max int64) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, over %d", p, st.Size(), max)
	}
	return os.ReadFile(p)
}

// Cache keeps downloaded installer files by checksum.
type Cache struct{ Dir string }

// urlEntry remembers what a URL without a known checksum gave: its
// validators and the sha256 its content is cached under.
type urlEntry struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	SHA256       string `json:"sha256"`
}

// urlIndex is where the entry of src is kept.
func (c Cache) urlIndex(src string) string {
	h := sha256.Sum256([]byte(src))
	return filepath.Join(c.Dir, "url-"+hex.EncodeToString(h[:])+".json")
}

// Fetch returns a local path for src (a local path is returned as is);
// URLs are downloaded once into the cache, named by their sha256. When
// wantSHA256 is given the content must match it. Without one (an ISO's
// URL), a URL whose server gave an ETag or Last-Modified is asked again
// with If-None-Match/If-Modified-Since: "304 Not Modified" reuses the
// cached copy, anything else downloads it anew; a server that gives
// neither is downloaded every time.
func (c Cache) Fetch(ctx context.Context, src, wantSHA256 string) (string, error) {
	if !IsURL(src) {
		if _, err := os.Stat(src); err != nil {
			return "", err
		}
		return src, nil
	}
	u, _ := url.Parse(src)
	if u.Scheme == "file" {
		return u.Path, nil
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", err
	}
	if wantSHA256 != "" {
		p := filepath.Join(c.Dir, wantSHA256)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return "", err
	}
	var cached *urlEntry
	if wantSHA256 == "" {
		if b, err := atomicfile.ReadRegular(c.urlIndex(src), 64<<10); err == nil {
			var e urlEntry
			if json.Unmarshal(b, &e) == nil && e.URL == src && isHex64(e.SHA256) && (e.ETag != "" || e.LastModified != "") {
				if st, err := os.Stat(filepath.Join(c.Dir, e.SHA256)); err == nil && st.Mode().IsRegular() {
					cached = &e
					if e.ETag != "" {
						req.Header.Set("If-None-Match", e.ETag)
					}
					if e.LastModified != "" {
						req.Header.Set("If-Modified-Since", e.LastModified)
					}
				}
			}
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && cached != nil {
		return filepath.Join(c.Dir, cached.SHA256), nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %s", src, resp.Status)
	}
	tmp, err := os.CreateTemp(c.Dir, ".download-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		tmp.Close()
		return "", fmt.Errorf("%s: %w", src, err)
	}
	tmp.Close()
	sum := hex.EncodeToString(h.Sum(nil))
	if wantSHA256 != "" && !strings.EqualFold(sum, wantSHA256) {
		return "", fmt.Errorf("%s: sha256 %s, .treeinfo says %s", src, sum, wantSHA256)
	}
	p := filepath.Join(c.Dir, sum)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", err
	}
	if wantSHA256 == "" {
		e := urlEntry{URL: src, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), SHA256: sum}
		if e.ETag != "" || e.LastModified != "" {
			if b, err := json.Marshal(e); err == nil {
				atomicfile.Write(c.urlIndex(src), b, 0o644) // a cache: without it, the next launch downloads again
			}
		} else {
			os.Remove(c.urlIndex(src))
		}
	}
	return p, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// TreeInfo is what an install tree's .treeinfo says about its installer.
type TreeInfo = treeinfo.Info

// ReadTreeInfo reads LOCATION/.treeinfo (an INI file, as virt-install
// reads it) and returns the kernel and initrd of arch.
func ReadTreeInfo(ctx context.Context, location, arch string) (*TreeInfo, error) {
	b, err := ReadSource(ctx, strings.TrimRight(location, "/")+"/.treeinfo", 1<<20)
	if err != nil {
		return nil, fmt.Errorf("install tree %s: %w", location, err)
	}
	return treeinfo.Parse(b, location, arch)
}

// WriteFile writes a build artifact atomically.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

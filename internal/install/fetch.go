package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Fetch returns a local path for src (a local path is returned as is);
// URLs are downloaded once into the cache, named by their sha256. When
// wantSHA256 is given the content must match it.
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	defer resp.Body.Close()
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
	return p, nil
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

package kickstart

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Fetcher gets the body of an http or https URL. The caller decides about
// timeouts, proxies and TLS; a nil Fetcher means URLs are not fetched.
type Fetcher func(url string) ([]byte, error)

// ErrNoFetcher is returned for URLs when the Loader has no Fetcher.
var ErrNoFetcher = errors.New("fetching URLs is not enabled")

// Loader is the Resolver used by the linter: relative names resolve against
// the including source (a directory or a URL), local files are read
// directly, http(s) URLs only through Fetch. Every source is limited to
// MaxBytes (default 1 MiB).
type Loader struct {
	Fetch    Fetcher
	MaxBytes int64
}

// IsURL reports whether a kickstart location is a URL, with pykickstart's
// rule (it contains "://").
func IsURL(s string) bool { return strings.Contains(s, "://") }

func (l *Loader) max() int64 {
	if l.MaxBytes > 0 {
		return l.MaxBytes
	}
	return 1 << 20
}

// Locate turns an include target into an absolute location: a URL, or a
// path relative to the including file's directory.
func Locate(from, target string) (string, error) {
	if IsURL(target) {
		return target, nil
	}
	if IsURL(from) {
		base, err := url.Parse(from)
		if err != nil {
			return "", fmt.Errorf("base URL %q: %w", from, err)
		}
		ref, err := url.Parse(target)
		if err != nil {
			return "", fmt.Errorf("URL %q: %w", target, err)
		}
		return base.ResolveReference(ref).String(), nil
	}
	if filepath.IsAbs(target) {
		return target, nil
	}
	return filepath.Join(filepath.Dir(from), target), nil
}

// Resolve implements Resolver.
func (l *Loader) Resolve(from, target string) (Source, error) {
	loc, err := Locate(from, target)
	if err != nil {
		return Source{}, err
	}
	data, err := l.Load(loc)
	if err != nil {
		return Source{}, err
	}
	return Source{Name: loc, Data: data}, nil
}

// Load reads a local file or fetches an http(s) URL, within MaxBytes.
func (l *Loader) Load(loc string) ([]byte, error) {
	if IsURL(loc) {
		u, err := url.Parse(loc)
		if err != nil {
			return nil, err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("%s: only http and https URLs can be fetched", loc)
		}
		if l.Fetch == nil {
			return nil, fmt.Errorf("%s: %w", loc, ErrNoFetcher)
		}
		data, err := l.Fetch(loc)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > l.max() {
			return nil, fmt.Errorf("%s: larger than %d bytes", loc, l.max())
		}
		return data, nil
	}
	fh, err := os.Open(loc)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, l.max()+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > l.max() {
		return nil, fmt.Errorf("%s: larger than %d bytes", loc, l.max())
	}
	return data, nil
}

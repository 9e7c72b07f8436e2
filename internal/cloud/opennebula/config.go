package opennebula

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultEndpoint is oned's XML-RPC endpoint on the local host.
const DefaultEndpoint = "http://localhost:2633/RPC2"

// Config says how to reach oned. Empty fields are resolved as
// OpenNebula's own clients resolve them (goca NewConfig, the Ruby OCA):
// the endpoint from $ONE_XMLRPC, ~/.one/one_endpoint, then
// http://localhost:2633/RPC2; the session from the file $ONE_AUTH,
// ~/.one/one_auth, then /var/lib/one/.one/one_auth ("user:password" on
// its first line).
type Config struct {
	Endpoint string
	AuthFile string
	// Session is "user:password" given directly (tests); it wins over files.
	Session string
	// ImageDS and FileDS are datastore ids; <0 or unset: the first IMAGE_DS
	// and FILE_DS in the pool.
	ImageDS, FileDS *int
	// Network is the virtual network id for NICs; nil: the first in the
	// pool (none if the pool is empty); -1: no NIC.
	Network *int
	// Calls, when set, hears every XML-RPC method called.
	Calls func(method string)
}

// Effective is the configuration in effect and where it came from.
type Effective struct {
	Endpoint, EndpointFrom string
	User, AuthFrom         string
	Version                string
}

func (e Effective) String() string {
	return fmt.Sprintf("endpoint %s (%s), user %s (%s), OpenNebula %s", e.Endpoint, e.EndpointFrom, e.User, e.AuthFrom, e.Version)
}

func resolve(cfg Config) (endpoint, endpointFrom, session, authFrom string, err error) {
	home, _ := os.UserHomeDir()
	switch {
	case cfg.Endpoint != "":
		endpoint, endpointFrom = cfg.Endpoint, "--one-endpoint"
	case os.Getenv("ONE_XMLRPC") != "":
		endpoint, endpointFrom = os.Getenv("ONE_XMLRPC"), "ONE_XMLRPC"
	default:
		endpoint, endpointFrom = DefaultEndpoint, "default"
		if home != "" {
			p := filepath.Join(home, ".one", "one_endpoint")
			if line, err := firstLine(p); err == nil && line != "" {
				endpoint, endpointFrom = line, p
			} else if err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", "", "", "", fmt.Errorf("opennebula endpoint file %s: %w", p, err)
			}
		}
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return "", "", "", "", fmt.Errorf("opennebula endpoint %q (from %s): want an http:// or https:// URL", endpoint, endpointFrom)
	}
	if cfg.Session != "" {
		session, authFrom = cfg.Session, "session"
	} else {
		var files []string
		switch {
		case cfg.AuthFile != "":
			files, authFrom = []string{cfg.AuthFile}, "--one-auth"
		case os.Getenv("ONE_AUTH") != "":
			files, authFrom = []string{os.Getenv("ONE_AUTH")}, "ONE_AUTH"
		default:
			if home != "" {
				files = append(files, filepath.Join(home, ".one", "one_auth"))
			}
			files = append(files, "/var/lib/one/.one/one_auth")
		}
		for _, f := range files {
			line, err := firstLine(f)
			if errors.Is(err, os.ErrNotExist) && authFrom == "" {
				continue
			}
			if err != nil {
				return "", "", "", "", fmt.Errorf("opennebula auth file %s: %w", f, err)
			}
			session = line
			authFrom = f + map[bool]string{true: " (" + authFrom + ")", false: ""}[authFrom != ""]
			break
		}
		if session == "" && authFrom == "" {
			return "", "", "", "", fmt.Errorf("opennebula: no credentials: set --one-auth or ONE_AUTH to a file holding user:password, or write ~/.one/one_auth")
		}
	}
	if u, p, ok := strings.Cut(session, ":"); !ok || u == "" || p == "" {
		return "", "", "", "", fmt.Errorf("opennebula credentials from %s: want user:password on the first line", authFrom)
	}
	return endpoint, endpointFrom, session, authFrom, nil
}

func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		return strings.TrimSpace(sc.Text()), nil
	}
	return "", sc.Err()
}

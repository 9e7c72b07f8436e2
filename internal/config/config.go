// Package config is nchookd's operator configuration: one TOML file
// (default /etc/nchookd/nchookd.toml) holding the hook socket, the policy
// and the installer catalog. Defaults apply first, then the file; unknown
// keys are errors so a typo never silently changes policy.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kscloud/kscloud/internal/atomicfile"
)

// DefaultPath is where nchookd and the hook look for the file.
const DefaultPath = "/etc/nchookd/nchookd.toml"

// DefaultSocket is the daemon's hook socket.
const DefaultSocket = "/run/nchookd/nchookd.sock"

// VNC policies.
const (
	VNCOff      = "off"      // never add a VNC console
	VNCLoopback = "loopback" // listen on 127.0.0.1 only (default when allowed)
	VNCAddress  = "address"  // listen on VNCListen
)

// What to do when a pre-boot rewrite fails.
const (
	OnErrorRefuse = "refuse" // the hook exits non-zero: the NC cancels the launch
	OnErrorBoot   = "boot"   // the hook logs and exits 0: the instance boots as the NC wrote it
)

// Config is the effective configuration.
type Config struct {
	Hook      Hook                 `toml:"hook"`
	Policy    Policy               `toml:"policy"`
	State     State                `toml:"state"`
	Libvirt   Libvirt              `toml:"libvirt"`
	Metrics   Metrics              `toml:"metrics"`
	Installer map[string]Installer `toml:"installer"`

	// Path is the file this was loaded from ("" for defaults only).
	Path string `toml:"-"`
}

// Hook configures the socket the Eucalyptus hook talks to.
type Hook struct {
	Socket        string   `toml:"socket"`
	SocketGroup   string   `toml:"socket_group"`   // group owning the socket (mode 0660); "" = root only
	AllowedUsers  []string `toml:"allowed_users"`  // peers allowed besides root (checked with SO_PEERCRED)
	InstancesRoot []string `toml:"instances_root"` // instance directories must lie below one of these
	// ImageRoots are where else an instance's kernel and ramdisk may lie
	// (besides its instances root) when nchookd reads them.
	ImageRoots []string `toml:"image_roots"`
	OnError    string   `toml:"on_error"`
	Timeout    Duration `toml:"timeout"` // hook → daemon round trip before the hook rewrites itself
}

// Policy is what users may ask for in user-data.
type Policy struct {
	Modes              []string `toml:"modes"`
	VNC                string   `toml:"vnc"`
	VNCListen          string   `toml:"vnc_listen"`
	AllowEKI           bool     `toml:"allow_instance_kernel"` // an instance's own EKI/ERI may be the installer
	MaxInlineKickstart int      `toml:"max_inline_kickstart"`
}

// State configures where nchookd keeps what survives a restart.
type State struct {
	Dir               string   `toml:"dir"`
	InactivityTimeout Duration `toml:"inactivity_timeout"` // no console output and no disk writes for this long: the install is declared stuck
}

// Libvirt selects the hypervisor connection nchookd follows.
type Libvirt struct {
	URI string `toml:"uri"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string `toml:"listen"` // loopback host:port serving /metrics; "" = off
}

// Installer is one catalog entry: an installer kernel and initrd on the
// node, chosen by name with kscloud.installer=NAME.
type Installer struct {
	Kernel      string `toml:"kernel"`
	Initrd      string `toml:"initrd"`
	Description string `toml:"description"`
	// Cmdline is prepended to the user's bootparams (e.g. "inst.stage2=…").
	Cmdline string `toml:"cmdline"`
}

// Duration is a time.Duration written as "5s", "2m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the built-in configuration.
func Default() *Config {
	return &Config{
		Hook: Hook{
			Socket:        DefaultSocket,
			SocketGroup:   "nchookd", // created by the packages (packaging/nchookd.sysusers)
			AllowedUsers:  []string{"eucalyptus"},
			InstancesRoot: []string{"/var/lib/eucalyptus/instances"},
			ImageRoots:    []string{},
			OnError:       OnErrorRefuse,
			Timeout:       Duration{5 * time.Second},
		},
		Policy: Policy{
			Modes:              []string{"bake", "in-place"},
			VNC:                VNCLoopback,
			AllowEKI:           true,
			MaxInlineKickstart: 256 << 10,
		},
		State: State{
			Dir:               "/var/lib/nchookd",
			InactivityTimeout: Duration{30 * time.Minute},
		},
		Libvirt:   Libvirt{URI: "qemu:///system"},
		Installer: map[string]Installer{},
	}
}

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Load reads path over the defaults and validates the result. A missing
// file at the default path is not an error (defaults apply); a missing file
// named explicitly is.
func Load(path string, explicit bool) (*Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return c, c.Validate()
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.decode(data); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.Path = path
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) decode(data []byte) error {
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return fmt.Errorf("line %d: key %s: %s", pe.Position.Line, pe.LastKey, pe.Message)
			}
			return fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
		}
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%w: unknown key %s", ErrInvalid, strings.Join(keys, ", "))
	}
	return nil
}

// validInstallerName is ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, checked by hand:
// this package is linked into the hook binary, whose start-up (package
// initialisation included) the NC pays on every hypervisor access.
func validInstallerName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Validate checks values and cross-references; it does not touch the disk
// (see Check for that).
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	if !filepath.IsAbs(c.Hook.Socket) {
		return bad("hook.socket %q is not an absolute path", c.Hook.Socket)
	}
	if c.Hook.OnError != OnErrorRefuse && c.Hook.OnError != OnErrorBoot {
		return bad("hook.on_error %q: want %q or %q", c.Hook.OnError, OnErrorRefuse, OnErrorBoot)
	}
	if c.Hook.Timeout.Duration <= 0 {
		return bad("hook.timeout must be positive")
	}
	if len(c.Hook.InstancesRoot) == 0 {
		return bad("hook.instances_root is empty: name the NC's instances directory")
	}
	for _, r := range c.Hook.InstancesRoot {
		if !filepath.IsAbs(r) {
			return bad("hook.instances_root %q is not an absolute path", r)
		}
	}
	for _, r := range c.Hook.ImageRoots {
		if !filepath.IsAbs(r) {
			return bad("hook.image_roots %q is not an absolute path", r)
		}
	}
	if len(c.Policy.Modes) == 0 {
		return bad("policy.modes is empty: allow \"bake\", \"in-place\" or both")
	}
	for _, m := range c.Policy.Modes {
		if m != "bake" && m != "in-place" {
			return bad("policy.modes: unknown mode %q (want bake, in-place)", m)
		}
	}
	switch c.Policy.VNC {
	case VNCOff, VNCLoopback:
		if c.Policy.VNCListen != "" {
			return bad("policy.vnc_listen %q is only read with policy.vnc = \"address\" (policy.vnc is %q)", c.Policy.VNCListen, c.Policy.VNC)
		}
	case VNCAddress:
		if c.Policy.VNCListen == "" {
			return bad("policy.vnc = \"address\" needs policy.vnc_listen")
		}
		if ip, err := netip.ParseAddr(c.Policy.VNCListen); err != nil || ip.Zone() != "" {
			return bad("policy.vnc_listen %q is not an IP address (libvirt's VNC listen address; no host name, port or zone)", c.Policy.VNCListen)
		}
	default:
		return bad("policy.vnc %q: want off, loopback or address", c.Policy.VNC)
	}
	if c.Policy.MaxInlineKickstart < 0 {
		return bad("policy.max_inline_kickstart is negative")
	}
	if !filepath.IsAbs(c.State.Dir) {
		return bad("state.dir %q is not an absolute path", c.State.Dir)
	}
	if c.State.InactivityTimeout.Duration < 0 {
		return bad("state.inactivity_timeout is negative")
	}
	if l := c.Metrics.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		ip := net.ParseIP(host)
		if err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return bad("metrics.listen %q: want a loopback host:port such as 127.0.0.1:9639", l)
		}
		// A number, never a service name or 0 (a port the kernel picks,
		// which no scraper could be told).
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || port[0] == '0' {
			return bad("metrics.listen %q: port %q is not a number from 1 to 65535", l, port)
		}
	}
	for name, in := range c.Installer {
		if !validInstallerName(name) {
			return bad("installer %q: name must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit", name)
		}
		if !filepath.IsAbs(in.Kernel) || !filepath.IsAbs(in.Initrd) {
			return bad("installer %q: kernel and initrd must be absolute paths", name)
		}
		if strings.ContainsAny(in.Cmdline, "\x00\n\r") {
			return bad("installer %q: cmdline has a control character", name)
		}
	}
	return nil
}

// RestartKeys lists the keys whose value differs between old and new that
// a running daemon reads only when it starts (its socket, state
// directory, libvirt connection and metrics listener): a reload keeps the
// old value of each until nchookd restarts.
func RestartKeys(old, new *Config) []string {
	var keys []string
	for _, k := range []struct {
		key      string
		old, new string
	}{
		{"hook.socket", old.Hook.Socket, new.Hook.Socket},
		{"hook.socket_group", old.Hook.SocketGroup, new.Hook.SocketGroup},
		{"state.dir", old.State.Dir, new.State.Dir},
		{"libvirt.uri", old.Libvirt.URI, new.Libvirt.URI},
		{"metrics.listen", old.Metrics.Listen, new.Metrics.Listen},
	} {
		if k.old != k.new {
			keys = append(keys, k.key)
		}
	}
	return keys
}

// AllowsMode reports whether policy allows mode.
func (c *Config) AllowsMode(mode string) bool {
	for _, m := range c.Policy.Modes {
		if m == mode {
			return true
		}
	}
	return false
}

// VNCListenAddr returns the address a VNC console listens on, "" when
// policy forbids VNC.
func (c *Config) VNCListenAddr() string {
	switch c.Policy.VNC {
	case VNCLoopback:
		return "127.0.0.1"
	case VNCAddress:
		return c.Policy.VNCListen
	}
	return ""
}

// InstallerNames lists the catalog, sorted.
func (c *Config) InstallerNames() []string {
	names := make([]string, 0, len(c.Installer))
	for n := range c.Installer {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Check validates the installer catalog against the machine: every
// catalog kernel and initrd exists as a non-empty regular file. It returns
// every problem found, one per line. CheckNode checks the rest.
func (c *Config) Check() []error {
	var errs []error
	for _, name := range c.InstallerNames() {
		in := c.Installer[name]
		for _, f := range []struct{ what, path string }{{"kernel", in.Kernel}, {"initrd", in.Initrd}} {
			st, err := os.Stat(f.path)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("installer %q: %s %s: %w", name, f.what, f.path, err))
			case !st.Mode().IsRegular():
				errs = append(errs, fmt.Errorf("installer %q: %s %s is not a regular file", name, f.what, f.path))
			case st.Size() == 0:
				errs = append(errs, fmt.Errorf("installer %q: %s %s is empty", name, f.what, f.path))
			}
		}
	}
	return errs
}

// CheckNode validates the configuration against the node: everything
// that would stop launches. The daemon refuses to start (and a reload is
// refused) on any problem it returns, and `nchookd check` reports the same
// problems, so the two always agree. It checks that every instances root
// exists as a directory, that hook.socket_group and every allowed user
// exist, the catalog (Check), and that the hook's fallback, which runs as
// the NC's user (the owner of the instances root), can read every catalog
// file.
func (c *Config) CheckNode() []error {
	var errs []error
	ncUID, ncGID := -1, -1
	for _, r := range c.Hook.InstancesRoot {
		st, err := os.Stat(r)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("hook.instances_root %s: %w (the NC's instances directory; every launch below another path is refused)", r, err))
		case !st.IsDir():
			errs = append(errs, fmt.Errorf("hook.instances_root %s: not a directory", r))
		case st.Mode().Perm()&0o002 != 0:
			// launch refuses every instance directory below such a root
			errs = append(errs, fmt.Errorf("hook.instances_root %s: writable by every user (not the NC's instances directory; every launch below it is refused)", r))
		default:
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && ncUID == -1 {
				ncUID, ncGID = int(sys.Uid), int(sys.Gid)
			}
		}
	}
	if g := c.Hook.SocketGroup; g != "" {
		if _, err := user.LookupGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("hook.socket_group %q: no such group (the hook's user could not reach the socket)", g))
		}
	}
	for _, u := range c.Hook.AllowedUsers {
		if _, err := user.Lookup(u); err != nil {
			errs = append(errs, fmt.Errorf("hook.allowed_users: %q: no such user", u))
		}
	}
	// The daemon creates what is missing of these; what exists must be
	// what it would create.
	if st, err := os.Stat(c.State.Dir); err == nil && !st.IsDir() {
		errs = append(errs, fmt.Errorf("state.dir %s: not a directory", c.State.Dir))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("state.dir %s: %w", c.State.Dir, err))
	} else if st, err := os.Lstat(filepath.Join(c.State.Dir, "instances")); err == nil && !st.IsDir() {
		errs = append(errs, fmt.Errorf("state.dir %s: instances: not a directory", c.State.Dir))
	}
	if st, err := os.Lstat(c.Hook.Socket); err == nil && st.Mode()&fs.ModeSocket == 0 {
		errs = append(errs, fmt.Errorf("hook.socket %s: exists and is not a socket", c.Hook.Socket))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("hook.socket %s: %w", c.Hook.Socket, err))
	} else if err != nil {
		if st, err := os.Stat(filepath.Dir(c.Hook.Socket)); err == nil && !st.IsDir() {
			errs = append(errs, fmt.Errorf("hook.socket %s: %s is not a directory", c.Hook.Socket, filepath.Dir(c.Hook.Socket)))
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("hook.socket %s: %w", c.Hook.Socket, err))
		}
	}
	for _, r := range c.Hook.ImageRoots {
		if st, err := os.Stat(r); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("hook.image_roots %s: not a directory", r))
		}
	}
	catalog := c.Check()
	errs = append(errs, catalog...)
	if len(catalog) == 0 && ncUID > 0 {
		for _, name := range c.InstallerNames() {
			in := c.Installer[name]
			for _, p := range []string{in.Kernel, in.Initrd} {
				f, err := atomicfile.OpenAs(p, ncUID, ncGID)
				if err != nil {
					errs = append(errs, fmt.Errorf("installer %q: %s: not readable by uid %d, who owns the instances root and runs the hook's fallback", name, p, ncUID))
					continue
				}
				f.Close()
			}
		}
	}
	return errs
}

// Encode writes the effective configuration as TOML (nchookd check --print).
func (c *Config) Encode() ([]byte, error) {
	var b bytes.Buffer
	err := toml.NewEncoder(&b).Encode(c)
	return b.Bytes(), err
}

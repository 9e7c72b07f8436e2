package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/beevik/etree"
)

// KickstartAddr is where a kickstart server on this host must listen so
// that a guest on the launch's network reaches it, and the host name the
// guest uses in its URL.
type KickstartAddr struct {
	Bind  string // IP to listen on (never a wildcard)
	Guest string // IP the guest connects to
}

// KickstartBindAddr returns the listening and guest-side address of a
// kickstart HTTP server for the provider's network: user-mode networking
// reaches the host's loopback as 10.0.2.2 (SLIRP's gateway), a libvirt
// network reaches the host at its <ip address=…> (the NAT gateway), a
// bridge at the bridge interface's first IPv4 address. The server binds
// there only, so it is not offered to any other network.
func (p *Provider) KickstartBindAddr(ctx context.Context) (KickstartAddr, error) {
	return kickstartAddr(ctx, p.opt.Network, p.networkXML, net.InterfaceByName)
}

func (p *Provider) networkXML(ctx context.Context, name string) (string, bool, error) {
	return p.c.NetworkXML(ctx, name)
}

func kickstartAddr(ctx context.Context, network string, netXML func(context.Context, string) (string, bool, error), iface func(string) (*net.Interface, error)) (KickstartAddr, error) {
	if network == "" || network == "user" {
		return KickstartAddr{Bind: "127.0.0.1", Guest: "10.0.2.2"}, nil
	}
	if br, ok := strings.CutPrefix(network, "bridge="); ok {
		ip, err := ifaceIPv4(br, iface)
		if err != nil {
			return KickstartAddr{}, err
		}
		return KickstartAddr{Bind: ip, Guest: ip}, nil
	}
	x, active, err := netXML(ctx, network)
	if err != nil {
		return KickstartAddr{}, err
	}
	if !active {
		return KickstartAddr{}, fmt.Errorf("network %q: not active (virsh net-start %s)", network, network)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(x); err != nil {
		return KickstartAddr{}, fmt.Errorf("network %q: %w", network, err)
	}
	for _, ip := range doc.FindElements("/network/ip") {
		fam := ip.SelectAttrValue("family", "ipv4")
		a := net.ParseIP(ip.SelectAttrValue("address", ""))
		if fam == "ipv4" && a != nil && a.To4() != nil {
			return KickstartAddr{Bind: a.String(), Guest: a.String()}, nil
		}
	}
	// A network without an address of its own (a bridge or macvtap
	// forward): the host is reached through the bridge, if it has one.
	if br := doc.FindElement("/network/bridge"); br != nil {
		if name := br.SelectAttrValue("name", ""); name != "" {
			if ip, err := ifaceIPv4(name, iface); err == nil {
				return KickstartAddr{Bind: ip, Guest: ip}, nil
			}
		}
	}
	return KickstartAddr{}, fmt.Errorf("network %q: the host has no IPv4 address on it: a guest there cannot reach a kickstart server on this host (use --ks-delivery inject or url)", network)
}

func ifaceIPv4(name string, iface func(string) (*net.Interface, error)) (string, error) {
	i, err := iface(name)
	if err != nil {
		return "", fmt.Errorf("bridge %q: %w", name, err)
	}
	addrs, err := i.Addrs()
	if err != nil {
		return "", fmt.Errorf("bridge %q: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String(), nil
		}
	}
	return "", fmt.Errorf("bridge %q: no IPv4 address on this host: a guest there cannot reach a kickstart server on this host (use --ks-delivery inject or url)", name)
}

// CheckNetwork refuses a network the launch cannot use, before anything
// is created: a libvirt network that does not exist or is not active, a
// bridge that is not a bridge on this host.
func (p *Provider) CheckNetwork(ctx context.Context) error {
	n := p.opt.Network
	switch br, ok := strings.CutPrefix(n, "bridge="); {
	case n == "" || n == "user":
		return nil
	case ok:
		if br == "" || strings.ContainsAny(br, "/ ") {
			return fmt.Errorf("--network bridge=%q: not an interface name", br)
		}
		if _, err := net.InterfaceByName(br); err != nil {
			return fmt.Errorf("--network bridge=%s: %w", br, err)
		}
		if _, err := readSysfsBridge(br); err != nil {
			return fmt.Errorf("--network bridge=%s: not a bridge on this host", br)
		}
		return nil
	}
	_, active, err := p.c.NetworkXML(ctx, n)
	if err != nil {
		return fmt.Errorf("--network %s: %w", n, err)
	}
	if !active {
		return fmt.Errorf("--network %s: network %q is not active (virsh net-start %s)", n, n, n)
	}
	return nil
}

var errNotBridge = errors.New("not a bridge")

func readSysfsBridge(name string) (string, error) {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge")); err != nil {
		return "", errNotBridge
	}
	return name, nil
}

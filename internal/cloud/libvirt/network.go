package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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

// GuestAt reports whether ip is instance id's address on the launch's
// network: the host's neighbour entry for ip on that network's bridge (the
// kernel resolved it to answer the guest's connection) holds the MAC of
// the domain's interface there. A kickstart server on a libvirt network or
// bridge answers only such a peer.
func (p *Provider) GuestAt(ctx context.Context, id string, ip netip.Addr) (bool, error) {
	br, err := p.bridgeName(ctx)
	if err != nil {
		return false, err
	}
	x, err := p.c.XML(ctx, id, false)
	if err != nil {
		return false, err
	}
	macs, err := domainMACs(x)
	if err != nil {
		return false, err
	}
	arp, err := os.ReadFile("/proc/net/arp")
	if err != nil {
		return false, err
	}
	mac, ok := neighbourMAC(string(arp), ip, br)
	return ok && macs[mac], nil
}

// bridgeName is the host interface guests on the launch's network are
// behind: BR of bridge=BR, a libvirt network's <bridge name=…>.
func (p *Provider) bridgeName(ctx context.Context) (string, error) {
	n := p.opt.Network
	if br, ok := strings.CutPrefix(n, "bridge="); ok {
		return br, nil
	}
	if n == "" || n == "user" {
		return "", errors.New("user-mode networking: the guest has no address on the host")
	}
	x, _, err := p.c.NetworkXML(ctx, n)
	if err != nil {
		return "", err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(x); err != nil {
		return "", fmt.Errorf("network %q: %w", n, err)
	}
	if br := doc.FindElement("/network/bridge"); br != nil && br.SelectAttrValue("name", "") != "" {
		return br.SelectAttrValue("name", ""), nil
	}
	return "", fmt.Errorf("network %q: no bridge on this host", n)
}

// domainMACs are the (lower-case) MAC addresses of a domain's interfaces.
func domainMACs(domainXML string) (map[string]bool, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(domainXML); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, m := range doc.FindElements("/domain/devices/interface/mac") {
		if a := strings.ToLower(m.SelectAttrValue("address", "")); a != "" {
			out[a] = true
		}
	}
	return out, nil
}

// neighbourMAC finds ip's complete entry on device dev in the kernel's
// IPv4 neighbour table (/proc/net/arp's text).
func neighbourMAC(arp string, ip netip.Addr, dev string) (string, bool) {
	for _, line := range strings.Split(arp, "\n")[1:] {
		// IP address, HW type, Flags, HW address, Mask, Device
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != ip.Unmap().String() || f[5] != dev {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 32)
		if err != nil || flags&0x2 == 0 { // ATF_COM: resolved
			continue
		}
		return strings.ToLower(f[3]), true
	}
	return "", false
}

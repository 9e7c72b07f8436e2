package virt

import (
	"context"
	"errors"
	"fmt"
	"net"

	"libvirt.org/go/libvirt"
)

// ErrNoNetwork means the libvirt network does not exist.
var ErrNoNetwork = errors.New("no such network")

// NetworkXML returns a libvirt network's live XML and whether it is active.
func (c *Conn) NetworkXML(ctx context.Context, name string) (string, bool, error) {
	cc, err := c.conn(ctx)
	if err != nil {
		return "", false, err
	}
	n, err := cc.LookupNetworkByName(name)
	if err != nil {
		var le libvirt.Error
		if errors.As(err, &le) && (le.Code == libvirt.ERR_NO_NETWORK || le.Code == libvirt.ERR_NO_SUPPORT) {
			return "", false, fmt.Errorf("network %q: %w", name, ErrNoNetwork)
		}
		return "", false, fmt.Errorf("network %q: %w", name, err)
	}
	defer n.Free()
	active, err := n.IsActive()
	if err != nil {
		return "", false, fmt.Errorf("network %q: %w", name, err)
	}
	x, err := n.GetXMLDesc(0)
	if err != nil {
		return "", false, fmt.Errorf("network %q: %w", name, err)
	}
	return x, active, nil
}

// Addresses returns a running domain's IP addresses: from the DHCP
// leases of its libvirt network, else from the QEMU guest agent, else
// none (user-mode networking has no lease the host can see).
func (c *Conn) Addresses(ctx context.Context, name string) ([]string, error) {
	var out []string
	err := c.withDomain(ctx, name, "interface addresses", func(d *libvirt.Domain) error {
		for _, src := range []libvirt.DomainInterfaceAddressesSource{libvirt.DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, libvirt.DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT} {
			ifs, err := d.ListAllInterfaceAddresses(src)
			if err != nil {
				continue
			}
			for _, i := range ifs {
				for _, a := range i.Addrs {
					ip := net.ParseIP(a.Addr)
					if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
						continue
					}
					out = append(out, a.Addr)
				}
			}
			if len(out) > 0 {
				return nil
			}
		}
		return nil
	})
	return out, err
}

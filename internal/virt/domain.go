package virt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"
)

// ErrDomainActive means a domain of that name is still active. Right after
// a transient domain's stopped event libvirt may still hold it for a moment
// while it tears it down: callers re-creating it under the same name retry.
var ErrDomainActive = errors.New("domain still active")

// DomainInfo is a snapshot of a domain.
type DomainInfo struct {
	Name       string
	UUID       string
	Active     bool
	Persistent bool
	State      string // running, shutoff, paused, crashed, …
}

func wrap(op, name string, err error) error {
	var lerr libvirt.Error
	if errors.As(err, &lerr) && lerr.Code == libvirt.ERR_NO_DOMAIN {
		return fmt.Errorf("domain %q: %s: %w", name, op, ErrNoDomain)
	}
	return fmt.Errorf("domain %q: %s: %w", name, op, err)
}

func (c *Conn) withDomain(ctx context.Context, name, op string, fn func(*libvirt.Domain) error) error {
	cc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	d, err := cc.LookupDomainByName(name)
	if err != nil {
		return wrap(op, name, err)
	}
	defer d.Free()
	if err := fn(d); err != nil {
		return wrap(op, name, err)
	}
	return nil
}

// CreateXML starts a transient domain from xml (what the Eucalyptus NC
// does with the domain XML a pre-boot hook leaves), or a transient start of
// a persistent domain's name with different XML (virt-install's installer
// pattern).
func (c *Conn) CreateXML(ctx context.Context, xml string) error {
	cc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	d, err := cc.DomainCreateXML(xml, 0)
	if err != nil {
		var le libvirt.Error
		if errors.As(err, &le) && le.Code == libvirt.ERR_OPERATION_INVALID && strings.Contains(le.Message, "already active") {
			return fmt.Errorf("create domain: %w: %w", ErrDomainActive, err)
		}
		return fmt.Errorf("create domain: %w", err)
	}
	d.Free()
	return nil
}

// DefineXML defines (or redefines) a persistent domain.
func (c *Conn) DefineXML(ctx context.Context, xml string) error {
	cc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	d, err := cc.DomainDefineXML(xml)
	if err != nil {
		return fmt.Errorf("define domain: %w", err)
	}
	d.Free()
	return nil
}

// Start boots a defined, inactive domain.
func (c *Conn) Start(ctx context.Context, name string) error {
	return c.withDomain(ctx, name, "start", func(d *libvirt.Domain) error { return d.Create() })
}

// Destroy stops a running domain at once.
func (c *Conn) Destroy(ctx context.Context, name string) error {
	return c.withDomain(ctx, name, "destroy", func(d *libvirt.Domain) error { return d.Destroy() })
}

// Undefine removes a persistent domain's definition (NVRAM too).
func (c *Conn) Undefine(ctx context.Context, name string) error {
	return c.withDomain(ctx, name, "undefine", func(d *libvirt.Domain) error {
		return d.UndefineFlags(libvirt.DOMAIN_UNDEFINE_NVRAM | libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE)
	})
}

// XML returns a domain's XML: the live one when it runs, else the
// persistent definition. secure includes secrets such as the VNC password.
func (c *Conn) XML(ctx context.Context, name string, secure bool) (string, error) {
	var out string
	flags := libvirt.DomainXMLFlags(0)
	if secure {
		flags |= libvirt.DOMAIN_XML_SECURE
	}
	err := c.withDomain(ctx, name, "get XML", func(d *libvirt.Domain) error {
		x, err := d.GetXMLDesc(flags)
		out = x
		return err
	})
	return out, err
}

// InactiveXML returns the persistent definition of a domain.
func (c *Conn) InactiveXML(ctx context.Context, name string) (string, error) {
	var out string
	err := c.withDomain(ctx, name, "get XML", func(d *libvirt.Domain) error {
		x, err := d.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE | libvirt.DOMAIN_XML_SECURE)
		out = x
		return err
	})
	return out, err
}

// Info returns a domain's state.
func (c *Conn) Info(ctx context.Context, name string) (DomainInfo, error) {
	var info DomainInfo
	err := c.withDomain(ctx, name, "info", func(d *libvirt.Domain) error {
		var err error
		info, err = domainInfo(d)
		return err
	})
	return info, err
}

// List returns every domain, active or defined.
func (c *Conn) List(ctx context.Context) ([]DomainInfo, error) {
	cc, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	doms, err := cc.ListAllDomains(0)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	out := make([]DomainInfo, 0, len(doms))
	for i := range doms {
		info, err := domainInfo(&doms[i])
		doms[i].Free()
		if err == nil {
			out = append(out, info)
		}
	}
	return out, nil
}

func domainInfo(d *libvirt.Domain) (DomainInfo, error) {
	var info DomainInfo
	var err error
	if info.Name, err = d.GetName(); err != nil {
		return info, err
	}
	info.UUID, _ = d.GetUUIDString()
	info.Active, _ = d.IsActive()
	info.Persistent, _ = d.IsPersistent()
	st, _, err := d.GetState()
	if err != nil {
		return info, err
	}
	info.State = stateName(st)
	return info, nil
}

func stateName(s libvirt.DomainState) string {
	switch s {
	case libvirt.DOMAIN_RUNNING:
		return "running"
	case libvirt.DOMAIN_BLOCKED:
		return "blocked"
	case libvirt.DOMAIN_PAUSED:
		return "paused"
	case libvirt.DOMAIN_SHUTDOWN:
		return "shutdown"
	case libvirt.DOMAIN_SHUTOFF:
		return "shutoff"
	case libvirt.DOMAIN_CRASHED:
		return "crashed"
	case libvirt.DOMAIN_PMSUSPENDED:
		return "pmsuspended"
	}
	return "unknown"
}

// IsNotFound reports whether err means the domain does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNoDomain) }

// DiskWrites returns the bytes written so far to all of a running domain's
// disks (the inactivity watchdog compares successive values).
func (c *Conn) DiskWrites(ctx context.Context, name string) (uint64, error) {
	var total uint64
	err := c.withDomain(ctx, name, "block stats", func(d *libvirt.Domain) error {
		cc, err := c.conn(ctx)
		if err != nil {
			return err
		}
		stats, err := cc.GetAllDomainStats([]*libvirt.Domain{d}, libvirt.DOMAIN_STATS_BLOCK, 0)
		if err != nil {
			return err
		}
		for _, st := range stats {
			for _, b := range st.Block {
				total += b.WrBytes
			}
			if st.Domain != nil {
				st.Domain.Free()
			}
		}
		return nil
	})
	return total, err
}

// AttachDevice hot-plugs a device (a <disk>…</disk> element) into a running
// domain; on a persistent domain the definition is changed too.
func (c *Conn) AttachDevice(ctx context.Context, name, deviceXML string) error {
	return c.withDomain(ctx, name, "attach device", func(d *libvirt.Domain) error {
		flags := libvirt.DOMAIN_DEVICE_MODIFY_LIVE
		if p, _ := d.IsPersistent(); p {
			flags |= libvirt.DOMAIN_DEVICE_MODIFY_CONFIG
		}
		return d.AttachDeviceFlags(deviceXML, flags)
	})
}

// DetachDevice hot-unplugs a device (the same element given to
// AttachDevice, or one matching its target). The guest may take a moment
// to release it: libvirt returns once the request is sent.
func (c *Conn) DetachDevice(ctx context.Context, name, deviceXML string) error {
	return c.withDomain(ctx, name, "detach device", func(d *libvirt.Domain) error {
		flags := libvirt.DOMAIN_DEVICE_MODIFY_LIVE
		if p, _ := d.IsPersistent(); p {
			flags |= libvirt.DOMAIN_DEVICE_MODIFY_CONFIG
		}
		return d.DetachDeviceFlags(deviceXML, flags)
	})
}

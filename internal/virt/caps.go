package virt

import (
	"context"
	"errors"
	"fmt"

	"libvirt.org/go/libvirt"
)

// DomainCapabilities returns libvirt's domain capabilities XML for a
// virtualization type (kvm, qemu) and architecture: whether that
// accelerator is usable, which machines, firmware and CPU modes it offers
// (virConnectGetDomainCapabilities). The call runs on its own goroutine
// and ctx bounds the wait: a host whose /dev/kvm misbehaves can stall
// libvirtd's probe, and the caller then gets ctx's error instead of a
// hang (the abandoned call finishes, or not, in the background).
func (c *Conn) DomainCapabilities(ctx context.Context, virtType, arch string) (string, error) {
	x, err := c.bounded(ctx, func(cc *libvirt.Connect) (string, error) {
		return cc.GetDomainCapabilities("", arch, "", virtType, 0)
	})
	if err != nil {
		var le libvirt.Error
		if errors.As(err, &le) {
			// libvirt's own words: "the accel 'kvm' is not supported by …"
			return "", fmt.Errorf("libvirt: %s", le.Message)
		}
		return "", fmt.Errorf("libvirt %s: domain capabilities (%s, %s): %w", c.uri, virtType, arch, err)
	}
	return x, nil
}

// Capabilities returns the host's capabilities XML (the guest
// architectures and domain types libvirt offers), bounded by ctx as
// DomainCapabilities is.
func (c *Conn) Capabilities(ctx context.Context) (string, error) {
	x, err := c.bounded(ctx, func(cc *libvirt.Connect) (string, error) { return cc.GetCapabilities() })
	if err != nil {
		return "", fmt.Errorf("libvirt %s: capabilities: %w", c.uri, err)
	}
	return x, nil
}

// bounded runs a libvirt query on its own goroutine and waits at most
// until ctx ends ("no answer" then; the abandoned call finishes, or not,
// in the background).
func (c *Conn) bounded(ctx context.Context, call func(*libvirt.Connect) (string, error)) (string, error) {
	cc, err := c.conn(ctx)
	if err != nil {
		return "", err
	}
	type answer struct {
		xml string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		x, err := call(cc)
		ch <- answer{x, err}
	}()
	select {
	case a := <-ch:
		return a.xml, a.err
	case <-ctx.Done():
		return "", fmt.Errorf("no answer: %w", ctx.Err())
	}
}

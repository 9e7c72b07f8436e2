package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/ksserve"
)

// kickstartPeers chooses where a build's kickstart server listens and whom
// it answers, for the launch's network, and the host name the installer
// puts in its URL: loopback and the QEMU user's sockets under user-mode
// networking (10.0.2.2 in the guest); the host's address on a libvirt
// network or bridge, answering only the build's own guest there.
func kickstartPeers(ctx context.Context, connect string, p cloud.Provider, b *install.Build) (ksserve.Peers, string, error) {
	peers := ksserve.Peers{UID: ksserve.InstallerUIDs(connect)}
	lp, ok := p.(*cloudlibvirt.Provider)
	if !ok {
		return peers, "10.0.2.2", nil
	}
	ka, err := lp.KickstartBindAddr(ctx)
	if err != nil {
		return ksserve.Peers{}, "", fmt.Errorf("--ks-delivery http: %w", err)
	}
	peers.Bind = ka.Bind
	if a, err := netip.ParseAddr(ka.Bind); err == nil && a.IsLoopback() {
		return peers, ka.Guest, nil
	}
	peers.Guest = func(ip netip.Addr) bool {
		r, ok := b.Resource("installer")
		if !ok {
			if r, ok = b.Resource("instance"); !ok {
				return false // no guest of this build yet
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		at, err := lp.GuestAt(ctx, r.ID, ip)
		return err == nil && at
	}
	return peers, ka.Guest, nil
}

package libvirt_test

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/testenv"
)

// TestConformance runs the provider conformance suite against the local
// provider on the test libvirtd, with a state directory (and so pools) of
// its own. Its instances boot a clone of an image made from an empty
// volume: SeaBIOS finds nothing to boot and the domain keeps running,
// which is all the instance subtests need. No option is relaxed: the
// local provider passes the suite as EC2 does (volumes hot-plug as SCSI
// disks, whose unplug needs no guest; snapshots of a registered image
// cannot be deleted; volumes are created from snapshots).
func TestConformance(t *testing.T) {
	uri := testenv.Libvirt(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img is not installed: run scripts/deps.sh (package qemu-utils)")
	}
	state := t.TempDir()
	var (
		mu    sync.Mutex
		pools []string
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, pool := range pools {
			exec.Command("virsh", "-c", uri, "pool-destroy", pool).Run()
			exec.Command("virsh", "-c", uri, "pool-undefine", pool).Run()
		}
	})
	open := func(t *testing.T) cloud.Provider {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := cloudlibvirt.Open(ctx, cloudlibvirt.Options{URI: uri, StateDir: state, MemoryMB: 128,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		// Closed after the subtest's own cleanups (registered later, run first).
		t.Cleanup(func() { p.Close() })
		vp, ip := p.Pools()
		mu.Lock()
		if len(pools) == 0 {
			pools = []string{vp, ip}
		}
		mu.Unlock()
		return p
	}
	cloudtest.Run(t, open, cloudtest.Options{
		Waiter:  wait.Waiter{Initial: 100 * time.Millisecond, Max: time.Second},
		Timeout: 5 * time.Minute,
	})
}

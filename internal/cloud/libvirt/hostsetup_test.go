package libvirt_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/testenv"
)

// TestStorageOnFirstNeed: opening the provider and listing images create
// nothing on the host; the first volume creates the pools and directories;
// UninstallHost removes them. (A state directory of its own gives pools of
// their own names, so concurrent tests do not meet.)
func TestStorageOnFirstNeed(t *testing.T) {
	uri := testenv.Libvirt(t)
	state := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := cloudlibvirt.Open(ctx, cloudlibvirt.Options{URI: uri, StateDir: state, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	vp, ip := p.Pools()
	t.Cleanup(func() {
		for _, pool := range []string{vp, ip} {
			exec.Command("virsh", "-c", uri, "pool-destroy", pool).Run()
			exec.Command("virsh", "-c", uri, "pool-undefine", pool).Run()
		}
	})
	poolExists := func(name string) bool {
		return exec.Command("virsh", "-c", uri, "pool-info", name).Run() == nil
	}
	nothing := func(when string) {
		t.Helper()
		for _, pool := range []string{vp, ip} {
			if poolExists(pool) {
				t.Errorf("%s: pool %s exists", when, pool)
			}
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("%s: state directory %s exists (%v)", when, state, err)
		}
	}
	nothing("after open")
	imgs, err := p.Images(ctx, cloud.Tags{cloud.TagCreator: "kscloud"})
	if err != nil || len(imgs) != 0 {
		t.Fatalf("images on a fresh host: %v, %v", imgs, err)
	}
	nothing("after images list")

	v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, pool := range []string{vp, ip} {
		if !poolExists(pool) {
			t.Errorf("pool %s missing after the first volume", pool)
		}
	}
	if err := p.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	hs, err := p.UninstallHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.RemovedPools) != 2 {
		t.Errorf("removed pools %v, want %s and %s", hs.RemovedPools, vp, ip)
	}
	for _, pool := range []string{vp, ip} {
		if poolExists(pool) {
			t.Errorf("pool %s still defined after UninstallHost", pool)
		}
	}
	for _, d := range []string{"volumes", "images"} {
		if _, err := os.Stat(filepath.Join(state, d)); !os.IsNotExist(err) {
			t.Errorf("%s directory left: %v (kept %v)", d, err, hs.Kept)
		}
	}
	// Nothing left: a second run says so.
	hs, err = p.UninstallHost(ctx)
	if err != nil || len(hs.RemovedPools) != 0 {
		t.Fatalf("second uninstall: %+v %v", hs, err)
	}
}

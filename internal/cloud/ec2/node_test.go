package ec2_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// nodeHooks builds the real Eucalyptus hook (hooks/eucalyptus) into an
// nc-hooks directory, with an nchookd config whose instances_root is the
// node's; no daemon runs, so the hook does the work itself.
func nodeHooks(t *testing.T, nodeDir, uri string) (hooksDir string, env []string) {
	t.Helper()
	base := t.TempDir()
	hooksDir = filepath.Join(base, "nc-hooks")
	if err := os.MkdirAll(hooksDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(hooksDir, "nchookd"), "github.com/kscloud/kscloud/hooks/eucalyptus")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the hook: %v\n%s", err, out)
	}
	cfg := filepath.Join(base, "nchookd.toml")
	conf := fmt.Sprintf("[hook]\nsocket = %q\ninstances_root = [%q]\nsocket_group = \"\"\n[state]\ndir = %q\n[libvirt]\nuri = %q\n",
		filepath.Join(base, "nchookd.sock"), filepath.Join(nodeDir, "instances"), filepath.Join(base, "state"), uri)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return hooksDir, append(os.Environ(), "NCHOOKD_CONFIG="+cfg, "NCHOOKD_SOCKET="+filepath.Join(base, "nchookd.sock"))
}

// TestConformanceNode runs the conformance suite with the endpoint playing
// a Eucalyptus NC on real libvirtd: volumes and snapshots are files, the
// instance boots (an empty disk: SeaBIOS finds nothing and keeps running)
// after the real pre-boot hook ran, and volumes are hot-plugged.
func TestConformanceNode(t *testing.T) {
	uri := testenv.Libvirt(t)
	dir := t.TempDir()
	hooks, env := nodeHooks(t, dir, uri)
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Node: &ec2endpoint.NodeOptions{
		LibvirtURI: uri, Dir: dir, HooksDir: hooks, HookEnv: env,
	}})
	cloudtest.Run(t, func(t *testing.T) cloud.Provider { return newProvider(t, srv, ec2.SignatureV4) }, cloudtest.Options{
		Waiter:  ec2.Waiter{Initial: 100 * time.Millisecond, Max: time.Second},
		Timeout: 5 * time.Minute,
	})
}

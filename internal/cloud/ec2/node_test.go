package ec2_test

import (
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// TestConformanceNode runs the conformance suite with the endpoint playing
// a Eucalyptus NC on real libvirtd: volumes and snapshots are files, the
// instance boots (an empty disk: SeaBIOS finds nothing and keeps running)
// after the real pre-boot hook ran, and volumes are hot-plugged.
func TestConformanceNode(t *testing.T) {
	uri := testenv.Libvirt(t)
	dir := t.TempDir()
	hook := ec2endpoint.InstallHook(t, dir, uri)
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Node: &ec2endpoint.NodeOptions{
		LibvirtURI: uri, Dir: dir, HooksDir: hook.Dir, HookEnv: hook.Env,
	}})
	cloudtest.Run(t, func(t *testing.T) cloud.Provider { return newProvider(t, srv, ec2.SignatureV4) }, cloudtest.Options{
		Waiter:  wait.Waiter{Initial: 100 * time.Millisecond, Max: time.Second},
		Timeout: 5 * time.Minute,
	})
}

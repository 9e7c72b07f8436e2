package opennebula_test

import (
	"context"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

var fastWaiter = wait.Waiter{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}

func newProvider(t *testing.T, srv *oneendpoint.Server) *opennebula.Provider {
	t.Helper()
	p, err := opennebula.New(context.Background(), opennebula.Config{Endpoint: srv.URL(), Session: srv.Session()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var missing = cloudtest.MissingIDs{Instance: "vm-999999", Volume: "vol-999999", Snapshot: "snap-999999", Image: "img-999999"}

// TestConformance runs the provider conformance suite against the
// endpoint playing OpenNebula 7.0 and 5.12 (no updateconf merge mode,
// no image.delete force).
func TestConformance(t *testing.T) {
	for _, version := range []string{"7.0.0", "5.12.0"} {
		t.Run(version, func(t *testing.T) {
			srv := oneendpoint.Start(t, oneendpoint.Options{Version: version})
			cloudtest.Run(t, func(t *testing.T) cloud.Provider { return newProvider(t, srv) }, cloudtest.Options{
				Waiter: fastWaiter, Missing: missing, Device: "/dev/vdf", SnapshotInUseDeletable: true,
			})
		})
	}
}

package install

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
)

// TestPollFresh: "not found" right after a create is EC2 being eventually
// consistent, not the resource being gone; later it is an error; a
// timeout names what was awaited and the last state seen.
func TestPollFresh(t *testing.T) {
	ctx := context.Background()
	calls := 0
	s, err := pollFresh(ctx, time.Minute, 15*time.Second, "snapshot snap-1 to complete", func() (cloud.Snapshot, bool, error) {
		calls++
		if calls <= 2 {
			return cloud.Snapshot{}, false, fmt.Errorf("snapshot snap-1: %w", cloud.ErrNotFound)
		}
		return cloud.Snapshot{ID: "snap-1", State: cloud.SnapshotCompleted}, true, nil
	})
	if err != nil || s.ID != "snap-1" || calls != 3 {
		t.Fatalf("fresh not-found: %+v, %v after %d calls", s, err, calls)
	}
	_, err = pollFresh(ctx, time.Minute, 0, "snapshot snap-2 to complete", func() (cloud.Snapshot, bool, error) {
		return cloud.Snapshot{}, false, fmt.Errorf("snapshot snap-2: %w", cloud.ErrNotFound)
	})
	if !cloud.IsNotFound(err) {
		t.Fatalf("not found outside the fresh window: %v", err)
	}
	_, err = poll(ctx, 1500*time.Millisecond, "snapshot snap-3 to complete", func() (cloud.Snapshot, bool, error) {
		return cloud.Snapshot{ID: "snap-3", State: cloud.SnapshotPending, Progress: 42}, false, nil
	})
	if err == nil || !strings.Contains(err.Error(), "waiting for snapshot snap-3 to complete (last state pending 42%)") {
		t.Fatalf("timeout: %v", err)
	}
}

package install

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
)

// InstanceWaiter is implemented by providers that learn instance state
// changes from events (local libvirt) instead of polling.
type InstanceWaiter interface {
	WaitInstanceState(ctx context.Context, id string, want ...string) (cloud.Instance, error)
}

// Backoff polls with exponential backoff and jitter: 1 s doubling to 15 s.
type Backoff struct {
	Start, Max time.Duration
	next       time.Duration
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.Start == 0 {
		b.Start = time.Second
	}
	if b.Max == 0 {
		b.Max = 15 * time.Second
	}
	if b.next == 0 {
		b.next = b.Start
	}
	d := b.next
	b.next *= 2
	if b.next > b.Max {
		b.next = b.Max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// poll calls check until it reports done, an error, or the timeout; what
// names the awaited thing in a timeout error, which also gives the last
// state seen when T has one.
func poll[T any](ctx context.Context, timeout time.Duration, what string, check func() (T, bool, error)) (T, error) {
	return pollFresh(ctx, timeout, 0, what, check)
}

// pollFresh is poll for something just created: "not found" during the
// first fresh of the wait means "not visible yet" (EC2 is eventually
// consistent: a new snapshot or image may be unknown to Describe* for a
// few seconds), not gone.
func pollFresh[T any](ctx context.Context, timeout, fresh time.Duration, what string, check func() (T, bool, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var bo Backoff
	var last T
	seen := false
	for {
		v, done, err := check()
		switch {
		case err != nil && cloud.IsNotFound(err) && time.Since(start) < fresh && ctx.Err() == nil:
			// not visible yet
		case err != nil:
			return v, err
		default:
			last, seen = v, true
			if done {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			if st := stateOf(last); seen && st != "" {
				return last, fmt.Errorf("waiting for %s (last state %s): %w", what, st, context.Cause(ctx))
			}
			return last, fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-time.After(bo.Next()):
		}
	}
}

// stateOf is the state of a cloud resource, for timeout messages.
func stateOf(v any) string {
	switch x := v.(type) {
	case cloud.Instance:
		return x.State
	case cloud.Volume:
		return x.State
	case cloud.Snapshot:
		if x.State != "" {
			return fmt.Sprintf("%s %d%%", x.State, x.Progress)
		}
	case cloud.Image:
		return x.State
	}
	return ""
}

// WaitInstance waits until the instance reaches one of want.
func WaitInstance(ctx context.Context, p cloud.Provider, id string, timeout time.Duration, want ...string) (cloud.Instance, error) {
	if w, ok := p.(InstanceWaiter); ok {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		inst, err := w.WaitInstanceState(ctx, id, want...)
		if err != nil && ctx.Err() != nil {
			return inst, fmt.Errorf("waiting for instance %s to be %v: %w", id, want, ctx.Err())
		}
		return inst, err
	}
	return poll(ctx, timeout, fmt.Sprintf("instance %s to be %v", id, want), func() (cloud.Instance, bool, error) {
		inst, err := p.Instance(ctx, id)
		if err != nil {
			return inst, false, err
		}
		return inst, slices.Contains(want, inst.State), nil
	})
}

// WaitVolume waits until the volume reaches one of want.
func WaitVolume(ctx context.Context, p cloud.Provider, id string, timeout time.Duration, want ...string) (cloud.Volume, error) {
	return waitVolume(ctx, p, id, timeout, 0, want...)
}

// waitNewVolume is WaitVolume for a volume just created ("not found" in
// its first seconds is EC2's eventual consistency).
func waitNewVolume(ctx context.Context, p cloud.Provider, id string, timeout time.Duration, want ...string) (cloud.Volume, error) {
	return waitVolume(ctx, p, id, timeout, notVisibleFor, want...)
}

func waitVolume(ctx context.Context, p cloud.Provider, id string, timeout, fresh time.Duration, want ...string) (cloud.Volume, error) {
	return pollFresh(ctx, timeout, fresh, fmt.Sprintf("volume %s to be %v", id, want), func() (cloud.Volume, bool, error) {
		v, err := p.Volume(ctx, id)
		if err != nil {
			return v, false, err
		}
		if v.State == cloud.VolumeError {
			return v, false, fmt.Errorf("volume %s: state error", id)
		}
		return v, slices.Contains(want, v.State), nil
	})
}

// WaitSnapshot waits for a snapshot to complete, reporting progress.
func WaitSnapshot(ctx context.Context, p cloud.Provider, id string, timeout time.Duration, progress func(int)) (cloud.Snapshot, error) {
	return pollFresh(ctx, timeout, notVisibleFor, fmt.Sprintf("snapshot %s to complete", id), func() (cloud.Snapshot, bool, error) {
		s, err := p.Snapshot(ctx, id)
		if err != nil {
			return s, false, err
		}
		if progress != nil {
			progress(s.Progress)
		}
		if s.State == cloud.SnapshotError {
			return s, false, fmt.Errorf("snapshot %s: state error", id)
		}
		return s, s.State == cloud.SnapshotCompleted, nil
	})
}

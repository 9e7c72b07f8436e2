package ec2

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
)

// Waiter polls a describe call until a resource reaches a wanted state,
// with exponential backoff and jitter: never more often than Initial
// (less jitter), never less often than Max, bounded by Timeout or the
// context's deadline, whichever comes first. The zero Waiter uses the
// defaults. The helpers take the cloud interfaces, so they serve every
// provider, not only this one.
type Waiter struct {
	Initial time.Duration // first pause between polls (default 1 s)
	Max     time.Duration // pause cap (default 15 s)
	Jitter  float64       // each pause is scaled by 1±Jitter at random (default 0.2; <0: none)
	// Timeout bounds a wait when it is shorter than the context's deadline
	// (default: per kind, see the helpers).
	Timeout time.Duration
	// NotFoundGrace is how long "not found" counts as "not visible yet"
	// after a wait starts (EC2 is eventually consistent right after a
	// create); after that it ends the wait (default 15 s; <0: none).
	NotFoundGrace time.Duration
	// Progress, if set, hears each state change: what, then the state
	// (snapshots: "pending 42%").
	Progress func(what, state string)
}

// Default wait bounds per kind, used when Waiter.Timeout is zero.
const (
	DefaultInstanceTimeout   = 15 * time.Minute
	DefaultVolumeTimeout     = 10 * time.Minute
	DefaultAttachmentTimeout = 5 * time.Minute
	DefaultSnapshotTimeout   = 60 * time.Minute
	DefaultImageTimeout      = 30 * time.Minute
)

func (w Waiter) withDefaults(timeout time.Duration) Waiter {
	if w.Initial <= 0 {
		w.Initial = time.Second
	}
	if w.Max <= 0 {
		w.Max = 15 * time.Second
	}
	if w.Max < w.Initial {
		w.Max = w.Initial
	}
	if w.Jitter == 0 {
		w.Jitter = 0.2
	} else if w.Jitter < 0 {
		w.Jitter = 0
	}
	if w.Timeout <= 0 {
		w.Timeout = timeout
	}
	if w.NotFoundGrace == 0 {
		w.NotFoundGrace = 15 * time.Second
	}
	return w
}

// pause is the n-th pause (0-based): Initial·2ⁿ capped at Max, with jitter.
func (w Waiter) pause(n int) time.Duration {
	d := w.Initial
	for i := 0; i < n && d < w.Max; i++ {
		d *= 2
	}
	d = min(d, w.Max)
	if w.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + w.Jitter*(2*rand.Float64()-1)))
	}
	return d
}

// errStop marks an error from a describe function that ends the wait at
// once (a failure state, or a state the wanted one cannot follow).
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
func (e errStop) Unwrap() error { return e.err }

// StopWait makes a describe function's error end a Wait at once, however
// it reads (a "not found" inside the grace period is otherwise retried).
func StopWait(err error) error { return errStop{err} }

// Wait polls describe until the state it reports is one of want. what
// names the resource for errors and progress ("volume vol-1"). It returns
// the last value described. Without a Waiter.Timeout the bound is 10 min
// (or the context's deadline, if sooner). Errors read
// "waiting for volume vol-1 to be available: …" and wrap the cause
// (context.DeadlineExceeded on timeout, the describe error otherwise).
func Wait[T any](ctx context.Context, w Waiter, what string, describe func(context.Context) (T, string, error), want ...string) (T, error) {
	w = w.withDefaults(DefaultVolumeTimeout)
	start := time.Now()
	deadline := start.Add(w.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fail := func(err error) error {
		return fmt.Errorf("waiting for %s to be %s: %w", what, strings.Join(want, " or "), err)
	}
	var zero T
	last := ""
	for n := 0; ; n++ {
		v, state, err := describe(ctx)
		switch {
		case err == nil:
			if state != last && w.Progress != nil {
				w.Progress(what, state)
			}
			last = state
			if slices.Contains(want, state) {
				return v, nil
			}
		case errors.As(err, new(errStop)):
			return v, fail(err)
		case cloud.IsNotFound(err) && w.NotFoundGrace > 0 && time.Since(start) < w.NotFoundGrace:
			// not visible yet: poll again
		case ctx.Err() != nil:
			return zero, fail(fmt.Errorf("last state %q after %s: %w", last, time.Since(start).Round(time.Second), ctx.Err()))
		default:
			return v, fail(err)
		}
		d := w.pause(n)
		if time.Now().Add(d).After(deadline) {
			// One last look at the deadline itself, unless that is now.
			d = time.Until(deadline)
			if d <= 0 {
				return v, fail(fmt.Errorf("last state %q after %s: %w", last, time.Since(start).Round(time.Second), context.DeadlineExceeded))
			}
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fail(fmt.Errorf("last state %q after %s: %w", last, time.Since(start).Round(time.Second), ctx.Err()))
		case <-t.C:
		}
	}
}

// Instance waits for an instance to reach one of want (cloud.Instance*
// states). "Not found" counts as terminated when terminated is wanted. A
// state the wanted ones cannot follow without another request ends the
// wait at once, with the instance's state reason: terminated or
// shutting-down when terminated is not wanted, stopping or stopped when
// running is wanted. Default bound: 15 min.
func (w Waiter) Instance(ctx context.Context, p cloud.Instances, id string, want ...string) (cloud.Instance, error) {
	w = w.withDefaults(DefaultInstanceTimeout)
	return Wait(ctx, w, "instance "+id, func(ctx context.Context) (cloud.Instance, string, error) {
		in, err := p.Instance(ctx, id)
		if cloud.IsNotFound(err) && slices.Contains(want, cloud.InstanceTerminated) {
			return cloud.Instance{ID: id, State: cloud.InstanceTerminated}, cloud.InstanceTerminated, nil
		}
		if err != nil {
			return in, "", err
		}
		if slices.Contains(want, in.State) {
			return in, in.State, nil
		}
		dead := in.State == cloud.InstanceTerminated || in.State == cloud.InstanceShuttingDown
		stopped := in.State == cloud.InstanceStopping || in.State == cloud.InstanceStopped
		if dead && !slices.Contains(want, cloud.InstanceTerminated) || stopped && slices.Contains(want, cloud.InstanceRunning) {
			return in, in.State, StopWait(fmt.Errorf("instance is %s%s", in.State, reason(in.StateReason)))
		}
		return in, in.State, nil
	}, want...)
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// Volume waits for a volume to reach one of want. "Not found" counts as
// deleted when deleted is wanted; the error state ends the wait, as do
// deleting and deleted unless deleted is wanted. Default bound: 10 min.
func (w Waiter) Volume(ctx context.Context, p cloud.Volumes, id string, want ...string) (cloud.Volume, error) {
	w = w.withDefaults(DefaultVolumeTimeout)
	return Wait(ctx, w, "volume "+id, func(ctx context.Context) (cloud.Volume, string, error) {
		v, err := p.Volume(ctx, id)
		if cloud.IsNotFound(err) && slices.Contains(want, cloud.VolumeDeleted) {
			return cloud.Volume{ID: id, State: cloud.VolumeDeleted}, cloud.VolumeDeleted, nil
		}
		if err != nil {
			return v, "", err
		}
		if slices.Contains(want, v.State) {
			return v, v.State, nil
		}
		going := v.State == cloud.VolumeDeleting || v.State == cloud.VolumeDeleted
		if v.State == cloud.VolumeError || going && !slices.Contains(want, cloud.VolumeDeleted) {
			return v, v.State, StopWait(fmt.Errorf("volume is %s", v.State))
		}
		return v, v.State, nil
	}, want...)
}

// Attachment waits for a volume's attachment to be "attached" (to any
// instance) or "detached" (no attachment left). Default bound: 5 min.
func (w Waiter) Attachment(ctx context.Context, p cloud.Volumes, volumeID, want string) (cloud.Volume, error) {
	w = w.withDefaults(DefaultAttachmentTimeout)
	return Wait(ctx, w, "volume "+volumeID+" attachment", func(ctx context.Context) (cloud.Volume, string, error) {
		v, err := p.Volume(ctx, volumeID)
		if err != nil {
			return v, "", err
		}
		switch {
		case v.State == cloud.VolumeError:
			return v, v.State, StopWait(fmt.Errorf("volume is %s", v.State))
		case v.Attachment == nil:
			return v, "detached", nil
		case v.AttachState == "":
			return v, "attached", nil
		}
		return v, v.AttachState, nil
	}, want)
}

// Snapshot waits for a snapshot to reach one of want; Progress hears
// "pending 42%". The error state ends the wait. Default bound: 60 min.
func (w Waiter) Snapshot(ctx context.Context, p cloud.Snapshots, id string, want ...string) (cloud.Snapshot, error) {
	w = w.withDefaults(DefaultSnapshotTimeout)
	progress, label := w.Progress, ""
	w.Progress = nil // reported here, with the percentage
	return Wait(ctx, w, "snapshot "+id, func(ctx context.Context) (cloud.Snapshot, string, error) {
		s, err := p.Snapshot(ctx, id)
		if err != nil {
			return s, "", err
		}
		if l := fmt.Sprintf("%s %d%%", s.State, s.Progress); progress != nil && l != label {
			progress("snapshot "+id, l)
			label = l
		}
		if s.State == cloud.SnapshotError && !slices.Contains(want, s.State) {
			return s, s.State, StopWait(fmt.Errorf("snapshot is %s", s.State))
		}
		return s, s.State, nil
	}, want...)
}

// Image waits for an image to reach one of want; the failed state ends
// the wait. Default bound: 30 min.
func (w Waiter) Image(ctx context.Context, p cloud.Images, id string, want ...string) (cloud.Image, error) {
	w = w.withDefaults(DefaultImageTimeout)
	return Wait(ctx, w, "image "+id, func(ctx context.Context) (cloud.Image, string, error) {
		im, err := p.Image(ctx, id)
		if err != nil {
			return im, "", err
		}
		if im.State == cloud.ImageFailed && !slices.Contains(want, im.State) {
			return im, im.State, StopWait(fmt.Errorf("image is %s", im.State))
		}
		return im, im.State, nil
	}, want...)
}

// WaitInstance is Waiter{}.Instance: 1 s → 15 s backoff, 15 min bound.
func WaitInstance(ctx context.Context, p cloud.Instances, id string, want ...string) (cloud.Instance, error) {
	return Waiter{}.Instance(ctx, p, id, want...)
}

// WaitVolume is Waiter{}.Volume.
func WaitVolume(ctx context.Context, p cloud.Volumes, id string, want ...string) (cloud.Volume, error) {
	return Waiter{}.Volume(ctx, p, id, want...)
}

// WaitAttachment is Waiter{}.Attachment.
func WaitAttachment(ctx context.Context, p cloud.Volumes, volumeID, want string) (cloud.Volume, error) {
	return Waiter{}.Attachment(ctx, p, volumeID, want)
}

// WaitSnapshot is Waiter{}.Snapshot.
func WaitSnapshot(ctx context.Context, p cloud.Snapshots, id string, want ...string) (cloud.Snapshot, error) {
	return Waiter{}.Snapshot(ctx, p, id, want...)
}

// WaitImage is Waiter{}.Image.
func WaitImage(ctx context.Context, p cloud.Images, id string, want ...string) (cloud.Image, error) {
	return Waiter{}.Image(ctx, p, id, want...)
}

// Package wait is kscloud's one waiter: it polls a cloud resource until it
// reaches a wanted state, with exponential backoff and jitter, a bound
// that names what was awaited (and the last state seen) when it runs out,
// and a grace period in which "not found" means "not visible yet" (EC2 and
// Eucalyptus are eventually consistent right after a create). Every
// provider, the install engine and the conformance suite wait with it;
// providers that learn state changes from events (local libvirt) plug in
// through InstanceEvents. Backoff, Sleep and Retry pace the product's
// other retry loops (a tag on a new resource, a libvirt reconnect, the
// hook socket's accept, the instance lock). It imports nothing but the
// standard library and package cloud.
package wait

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

// Backoff is a pause schedule: Initial doubling up to Max, each pause
// scaled by 1±Jitter at random. The zero Backoff is 1 s → 15 s, ±20 %.
type Backoff struct {
	Initial time.Duration // first pause (default 1 s)
	Max     time.Duration // pause cap (default 15 s; never below Initial)
	Jitter  float64       // each pause is scaled by 1±Jitter at random (default 0.2; <0: none)
	n       int
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = time.Second
	}
	if b.Max <= 0 {
		b.Max = 15 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Jitter == 0 {
		b.Jitter = 0.2
	}
	return b
}

// Pause is the n-th pause (0-based): Initial·2ⁿ capped at Max, with jitter.
func (b Backoff) Pause(n int) time.Duration {
	b = b.withDefaults()
	d := b.Initial
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + b.Jitter*(2*rand.Float64()-1)))
	}
	return d
}

// Next returns the next pause of the schedule.
func (b *Backoff) Next() time.Duration {
	d := b.Pause(b.n)
	b.n++
	return d
}

// Reset starts the schedule again at Initial.
func (b *Backoff) Reset() { b.n = 0 }

// Sleep pauses for d, or until ctx is done (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry calls op until it succeeds or returns an error retry does not
// accept, pausing by b between calls; within bounds how long retrying goes
// on (a pause that would end past it is not taken). It returns op's last
// error, as op gave it (a cancelled ctx ends the retries with that error).
func Retry(ctx context.Context, b Backoff, within time.Duration, retry func(error) bool, op func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		err := op(ctx)
		if err == nil || !retry(err) {
			return err
		}
		d := b.Next()
		if time.Now().Add(d).After(deadline) {
			return err
		}
		if Sleep(ctx, d) != nil {
			return err
		}
	}
}

// Waiter polls a describe call until a resource reaches a wanted state,
// with exponential backoff and jitter: never more often than Initial
// (less jitter), never less often than Max, bounded by Timeout or the
// context's deadline, whichever comes first. The zero Waiter uses the
// defaults. The helpers take the cloud interfaces, so they serve every
// provider.
type Waiter struct {
	Initial time.Duration // first pause between polls (default 1 s)
	Max     time.Duration // pause cap (default 15 s)
	Jitter  float64       // each pause is scaled by 1±Jitter at random (default 0.2; <0: none)
	// Timeout bounds a wait when it is shorter than the context's deadline
	// (default: per kind, see the helpers; <0: only the context bounds it).
	Timeout time.Duration
	// NotFoundGrace is how long "not found" counts as "not visible yet"
	// after a wait starts (EC2 is eventually consistent right after a
	// create); after that it ends the wait (default 15 s; <0: none).
	NotFoundGrace time.Duration
	// Progress, if set, hears each state change: what, then the state
	// (snapshots: "pending 42%").
	Progress func(what, state string)

	// wake, if set, replaces the pause between polls: it returns when the
	// state may have changed from the one given (a provider's events).
	wake func(ctx context.Context, state string) error
}

// Default wait bounds per kind, used when Waiter.Timeout is zero.
const (
	DefaultTimeout           = 10 * time.Minute
	DefaultInstanceTimeout   = 15 * time.Minute
	DefaultVolumeTimeout     = 10 * time.Minute
	DefaultAttachmentTimeout = 5 * time.Minute
	DefaultSnapshotTimeout   = 60 * time.Minute
	DefaultImageTimeout      = 30 * time.Minute
	// DefaultNotFoundGrace is how long a new resource may be unknown to
	// a describe call (EC2's eventual consistency).
	DefaultNotFoundGrace = 15 * time.Second
)

func (w Waiter) withDefaults(timeout time.Duration) Waiter {
	b := w.backoff()
	w.Initial, w.Max, w.Jitter = b.Initial, b.Max, b.Jitter
	if w.Timeout == 0 {
		w.Timeout = timeout
	}
	if w.NotFoundGrace == 0 {
		w.NotFoundGrace = DefaultNotFoundGrace
	}
	return w
}

func (w Waiter) backoff() Backoff {
	return Backoff{Initial: w.Initial, Max: w.Max, Jitter: w.Jitter}.withDefaults()
}

// WithTimeout returns w bounded by d (0: the kind's default).
func (w Waiter) WithTimeout(d time.Duration) Waiter {
	w.Timeout = d
	return w
}

// errStop marks an error from a describe function that ends the wait at
// once (a failure state, or a state the wanted one cannot follow).
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
func (e errStop) Unwrap() error { return e.err }

// Stop makes a describe function's error end a wait at once, however it
// reads (a "not found" inside the grace period is otherwise retried).
func Stop(err error) error { return errStop{err} }

// Poll calls check until it reports done. what names the awaited thing
// for errors ("waiting for <what>: …") and progress; state is the
// resource's state, reported to Progress when it changes and named in a
// timeout ("last state "creating" after 10m0s: context deadline
// exceeded"). A check error ends the wait, except "not found" inside the
// grace period; errors wrap the cause (context.DeadlineExceeded on
// timeout, context.Canceled when ctx is cancelled). It returns the last
// value checked. Without a Waiter.Timeout the bound is 10 min (or ctx's
// deadline, if sooner).
func Poll[T any](ctx context.Context, w Waiter, what string, check func(context.Context) (v T, state string, done bool, err error)) (T, error) {
	w = w.withDefaults(DefaultTimeout)
	b := w.backoff()
	start := time.Now()
	deadline := start.Add(w.Timeout)
	if w.Timeout < 0 {
		deadline = start.Add(1 << 62)
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fail := func(err error) error { return fmt.Errorf("waiting for %s: %w", what, err) }
	var zero T
	last, seen := "", false
	timedOut := func(err error) error {
		took := time.Since(start).Round(time.Second)
		if !seen {
			return fail(fmt.Errorf("nothing seen after %s: %w", took, err))
		}
		return fail(fmt.Errorf("last state %q after %s: %w", last, took, err))
	}
	for {
		v, state, done, err := check(ctx)
		switch {
		case err == nil:
			if (!seen || state != last) && w.Progress != nil && state != "" {
				w.Progress(what, state)
			}
			last, seen = state, true
			if done {
				return v, nil
			}
		case errors.As(err, new(errStop)):
			return v, fail(err)
		case cloud.IsNotFound(err) && w.NotFoundGrace > 0 && time.Since(start) < w.NotFoundGrace && ctx.Err() == nil:
			// not visible yet: poll again
		case ctx.Err() != nil:
			return zero, timedOut(ctx.Err())
		default:
			return v, fail(err)
		}
		if w.wake != nil {
			wctx, cancel := context.WithDeadline(ctx, deadline)
			err := w.wake(wctx, last)
			expired := wctx.Err() != nil
			cancel()
			switch {
			case ctx.Err() != nil:
				return v, timedOut(ctx.Err())
			case expired:
				return v, timedOut(context.DeadlineExceeded)
			case err == nil:
				continue
			}
			// The events failed: describe again after a pause, which
			// says what is wrong if anything is.
		}
		d := b.Next()
		if time.Now().Add(d).After(deadline) {
			// One last look at the deadline itself, unless that is now.
			d = time.Until(deadline)
			if d <= 0 {
				return v, timedOut(context.DeadlineExceeded)
			}
		}
		if err := Sleep(ctx, d); err != nil {
			return v, timedOut(err)
		}
	}
}

// For polls describe until the state it reports is one of want. what
// names the resource for errors and progress ("volume vol-1"). Errors read
// "waiting for volume vol-1 to be available: …". See Poll.
func For[T any](ctx context.Context, w Waiter, what string, describe func(context.Context) (T, string, error), want ...string) (T, error) {
	if progress := w.Progress; progress != nil {
		w.Progress = func(_, state string) { progress(what, state) }
	}
	return Poll(ctx, w, what+" to be "+strings.Join(want, " or "), func(ctx context.Context) (T, string, bool, error) {
		v, state, err := describe(ctx)
		return v, state, err == nil && slices.Contains(want, state), err
	})
}

// InstanceEvents is implemented by providers that learn instance state
// changes from events (local libvirt) instead of polling: it returns when
// the instance is in one of want, or ctx is done.
type InstanceEvents interface {
	WaitInstanceState(ctx context.Context, id string, want ...string) (cloud.Instance, error)
}

// Instance waits for an instance to reach one of want (cloud.Instance*
// states). "Not found" counts as terminated when terminated is wanted. A
// state the wanted ones cannot follow without another request ends the
// wait at once, with the instance's state reason: terminated or
// shutting-down when terminated is not wanted, stopping or stopped when
// running is wanted. A provider with InstanceEvents is not polled: the
// instance is described again when its events say its state changed.
// Default bound: 15 min.
func (w Waiter) Instance(ctx context.Context, p cloud.Instances, id string, want ...string) (cloud.Instance, error) {
	w = w.withDefaults(DefaultInstanceTimeout)
	if ev, ok := p.(InstanceEvents); ok {
		w.wake = func(ctx context.Context, state string) error {
			others := slices.DeleteFunc(slices.Clone(instanceStates), func(s string) bool { return s == state })
			_, err := ev.WaitInstanceState(ctx, id, others...)
			return err
		}
	}
	return For(ctx, w, "instance "+id, func(ctx context.Context) (cloud.Instance, string, error) {
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
			return in, in.State, Stop(fmt.Errorf("instance is %s%s", in.State, reason(in.StateReason)))
		}
		return in, in.State, nil
	}, want...)
}

// instanceStates are the states an instance can be in.
var instanceStates = []string{cloud.InstancePending, cloud.InstanceRunning, cloud.InstanceStopping,
	cloud.InstanceStopped, cloud.InstanceShuttingDown, cloud.InstanceTerminated}

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
	return For(ctx, w, "volume "+id, func(ctx context.Context) (cloud.Volume, string, error) {
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
			return v, v.State, Stop(fmt.Errorf("volume is %s", v.State))
		}
		return v, v.State, nil
	}, want...)
}

// Attachment waits for a volume's attachment to be "attached" (to any
// instance) or "detached" (no attachment left). Default bound: 5 min.
func (w Waiter) Attachment(ctx context.Context, p cloud.Volumes, volumeID, want string) (cloud.Volume, error) {
	w = w.withDefaults(DefaultAttachmentTimeout)
	return For(ctx, w, "volume "+volumeID+" attachment", func(ctx context.Context) (cloud.Volume, string, error) {
		v, err := p.Volume(ctx, volumeID)
		if err != nil {
			return v, "", err
		}
		switch {
		case v.State == cloud.VolumeError:
			return v, v.State, Stop(fmt.Errorf("volume is %s", v.State))
		case v.Attachment == nil:
			return v, "detached", nil
		case v.AttachState == "":
			return v, "attached", nil
		}
		return v, v.AttachState, nil
	}, want)
}

// Snapshot waits for a snapshot to reach one of want; its state for
// Progress and timeouts is "pending 42%". The error state ends the wait.
// Default bound: 60 min.
func (w Waiter) Snapshot(ctx context.Context, p cloud.Snapshots, id string, want ...string) (cloud.Snapshot, error) {
	w = w.withDefaults(DefaultSnapshotTimeout)
	what := "snapshot " + id
	if w.Progress != nil {
		progress := w.Progress
		w.Progress = func(_, state string) { progress(what, state) }
	}
	return Poll(ctx, w, what+" to be "+strings.Join(want, " or "), func(ctx context.Context) (cloud.Snapshot, string, bool, error) {
		s, err := p.Snapshot(ctx, id)
		if err != nil {
			return s, "", false, err
		}
		label := fmt.Sprintf("%s %d%%", s.State, s.Progress)
		if s.State == cloud.SnapshotError && !slices.Contains(want, s.State) {
			return s, label, false, Stop(fmt.Errorf("snapshot is %s", s.State))
		}
		return s, label, slices.Contains(want, s.State), nil
	})
}

// Image waits for an image to reach one of want; the failed state ends
// the wait. Default bound: 30 min.
func (w Waiter) Image(ctx context.Context, p cloud.Images, id string, want ...string) (cloud.Image, error) {
	w = w.withDefaults(DefaultImageTimeout)
	return For(ctx, w, "image "+id, func(ctx context.Context) (cloud.Image, string, error) {
		im, err := p.Image(ctx, id)
		if err != nil {
			return im, "", err
		}
		if im.State == cloud.ImageFailed && !slices.Contains(want, im.State) {
			return im, im.State, Stop(fmt.Errorf("image is %s", im.State))
		}
		return im, im.State, nil
	}, want...)
}

// Instance is Waiter{}.Instance: 1 s → 15 s backoff, 15 min bound.
func Instance(ctx context.Context, p cloud.Instances, id string, want ...string) (cloud.Instance, error) {
	return Waiter{}.Instance(ctx, p, id, want...)
}

// Volume is Waiter{}.Volume.
func Volume(ctx context.Context, p cloud.Volumes, id string, want ...string) (cloud.Volume, error) {
	return Waiter{}.Volume(ctx, p, id, want...)
}

// Attachment is Waiter{}.Attachment.
func Attachment(ctx context.Context, p cloud.Volumes, volumeID, want string) (cloud.Volume, error) {
	return Waiter{}.Attachment(ctx, p, volumeID, want)
}

// Snapshot is Waiter{}.Snapshot.
func Snapshot(ctx context.Context, p cloud.Snapshots, id string, want ...string) (cloud.Snapshot, error) {
	return Waiter{}.Snapshot(ctx, p, id, want...)
}

// Image is Waiter{}.Image.
func Image(ctx context.Context, p cloud.Images, id string, want ...string) (cloud.Image, error) {
	return Waiter{}.Image(ctx, p, id, want...)
}

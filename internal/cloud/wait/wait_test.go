package wait_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
)

// slowVolumes is a cloud.Volumes whose volumes take d to become
// available; it counts describe calls.
type slowVolumes struct {
	cloud.Volumes // other methods: not used
	mu            sync.Mutex
	created       map[string]time.Time
	d             time.Duration
	describes     int
}

func newSlowVolumes(d time.Duration, ids ...string) *slowVolumes {
	s := &slowVolumes{created: map[string]time.Time{}, d: d}
	for _, id := range ids {
		s.created[id] = time.Now()
	}
	return s
}

func (s *slowVolumes) Volume(_ context.Context, id string) (cloud.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.describes++
	c, ok := s.created[id]
	if !ok {
		return cloud.Volume{}, fmt.Errorf("volume %s: %w", id, cloud.ErrNotFound)
	}
	if time.Since(c) < s.d {
		return cloud.Volume{ID: id, State: cloud.VolumeCreating}, nil
	}
	return cloud.Volume{ID: id, State: cloud.VolumeAvailable}, nil
}

func (s *slowVolumes) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.describes
	s.describes = 0
	return n
}

// TestWaitBackoff counts the requests a default wait makes on a slow
// state: polls at about 0, 1, 3, 7 and 15 s (1 s doubling, ±20 %) for a
// volume that takes 12 s, so 5, and never more than 6 with jitter.
func TestWaitBackoff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 12 s of real time")
	}
	p := newSlowVolumes(12*time.Second, "vol-1")
	start := time.Now()
	var seen []string
	got, err := wait.Waiter{Progress: func(_, s string) { seen = append(seen, s) }}.Volume(context.Background(), p, "vol-1", cloud.VolumeAvailable)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	n := p.count()
	t.Logf("wait for a volume that takes 12 s: %d describes in %s (states %v)", n, took.Round(10*time.Millisecond), seen)
	if got.State != cloud.VolumeAvailable || len(seen) != 2 {
		t.Errorf("volume %+v, states %v: want creating then available", got, seen)
	}
	if n < 4 || n > 6 {
		t.Errorf("%d requests: want 4–6 (backoff 1 s doubling to 15 s)", n)
	}
	if took < 12*time.Second || took > 20*time.Second {
		t.Errorf("the wait took %s: want the poll after 12 s, at most ~18 s", took)
	}
}

// TestWaitTimeout: a wait bounded by Waiter.Timeout (or the context) ends
// with an error that names what it waited for and wraps the deadline, and
// makes few requests doing so.
func TestWaitTimeout(t *testing.T) {
	p := newSlowVolumes(time.Hour, "vol-1")
	start := time.Now()
	_, err := wait.Waiter{Timeout: 2500 * time.Millisecond}.Volume(context.Background(), p, "vol-1", cloud.VolumeAvailable)
	took := time.Since(start)
	want := "waiting for volume vol-1 to be available: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `last state "creating"`) {
		t.Fatalf("err = %v; want %q… wrapping context.DeadlineExceeded and naming the last state", err, want)
	}
	if n := p.count(); n < 2 || n > 4 {
		t.Errorf("%d requests in a 2.5 s wait: want 2–4", n)
	}
	if took < 2400*time.Millisecond || took > 3500*time.Millisecond {
		t.Errorf("the wait took %s, want about 2.5 s", took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = wait.Volume(ctx, p, "vol-1", cloud.VolumeAvailable)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("context deadline: %v", err)
	}

	// A cancelled context (an interrupt) is said as such.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = wait.Volume(ctx, p, "vol-1", cloud.VolumeAvailable)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("cancelled: %v", err)
	}
}

// missing is a cloud.Instances with no instances.
type missing struct{ cloud.Instances }

func (missing) Instance(_ context.Context, id string) (cloud.Instance, error) {
	return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, cloud.ErrNotFound)
}

// TestWaitNotFound: "not found" is retried during the grace period (EC2 is
// eventually consistent after a create), then ends the wait; with deleted
// wanted it is the answer.
func TestWaitNotFound(t *testing.T) {
	p := newSlowVolumes(0)
	ctx := context.Background()
	start := time.Now()
	_, err := wait.Waiter{Initial: 50 * time.Millisecond, NotFoundGrace: 400 * time.Millisecond}.Volume(ctx, p, "vol-0badf00d", cloud.VolumeAvailable)
	if !cloud.IsNotFound(err) || time.Since(start) < 400*time.Millisecond || !strings.HasPrefix(err.Error(), "waiting for volume vol-0badf00d to be available: ") {
		t.Errorf("missing volume: %v after %s; want not found after the 400 ms grace", err, time.Since(start))
	}
	v, err := wait.Volume(ctx, p, "vol-0badf00d", cloud.VolumeDeleted)
	if err != nil || v.State != cloud.VolumeDeleted {
		t.Errorf("waiting for a missing volume to be deleted: %+v, %v", v, err)
	}
	in, err := wait.Instance(ctx, missing{}, "i-0badf00d", cloud.InstanceTerminated)
	if err != nil || in.State != cloud.InstanceTerminated {
		t.Errorf("waiting for a missing instance to be terminated: %+v, %v", in, err)
	}
}

// snapshots answers a scripted sequence of describe results.
type snapshots struct {
	cloud.Snapshots
	calls int
	fn    func(call int) (cloud.Snapshot, error)
}

func (s *snapshots) Snapshot(context.Context, string) (cloud.Snapshot, error) {
	s.calls++
	return s.fn(s.calls)
}

// TestPollFresh (from the install engine's waiter): "not found" right
// after a create is EC2 being eventually consistent, not the resource
// being gone; later it is an error; a timeout names what was awaited and
// the last state seen; the error state ends the wait at once.
func TestPollFresh(t *testing.T) {
	ctx := context.Background()
	fast := wait.Waiter{Initial: time.Millisecond, Max: 10 * time.Millisecond}
	p := &snapshots{fn: func(call int) (cloud.Snapshot, error) {
		if call <= 2 {
			return cloud.Snapshot{}, fmt.Errorf("snapshot snap-1: %w", cloud.ErrNotFound)
		}
		return cloud.Snapshot{ID: "snap-1", State: cloud.SnapshotCompleted, Progress: 100}, nil
	}}
	s, err := fast.Snapshot(ctx, p, "snap-1", cloud.SnapshotCompleted)
	if err != nil || s.ID != "snap-1" || p.calls != 3 {
		t.Fatalf("fresh not-found: %+v, %v after %d calls", s, err, p.calls)
	}
	noGrace := fast
	noGrace.NotFoundGrace = -1
	p = &snapshots{fn: func(int) (cloud.Snapshot, error) {
		return cloud.Snapshot{}, fmt.Errorf("snapshot snap-2: %w", cloud.ErrNotFound)
	}}
	_, err = noGrace.Snapshot(ctx, p, "snap-2", cloud.SnapshotCompleted)
	if !cloud.IsNotFound(err) || p.calls != 1 {
		t.Fatalf("not found outside the fresh window: %v after %d calls", err, p.calls)
	}
	p = &snapshots{fn: func(int) (cloud.Snapshot, error) {
		return cloud.Snapshot{ID: "snap-3", State: cloud.SnapshotPending, Progress: 42}, nil
	}}
	var heard []string
	w := fast.WithTimeout(300 * time.Millisecond)
	w.Progress = func(what, state string) { heard = append(heard, what+": "+state) }
	_, err = w.Snapshot(ctx, p, "snap-3", cloud.SnapshotCompleted)
	if err == nil || !strings.Contains(err.Error(), `waiting for snapshot snap-3 to be completed: last state "pending 42%"`) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	if len(heard) != 1 || heard[0] != "snapshot snap-3: pending 42%" {
		t.Errorf("progress heard %q: want one report of pending 42%%", heard)
	}
	p = &snapshots{fn: func(int) (cloud.Snapshot, error) {
		return cloud.Snapshot{ID: "snap-4", State: cloud.SnapshotError}, nil
	}}
	_, err = fast.Snapshot(ctx, p, "snap-4", cloud.SnapshotCompleted)
	if err == nil || p.calls != 1 || err.Error() != "waiting for snapshot snap-4 to be completed: snapshot is error" {
		t.Fatalf("error state: %v after %d calls", err, p.calls)
	}
}

// events is a provider that tells state changes by events (as local
// libvirt does): set changes the state and wakes the waiters.
type events struct {
	cloud.Instances
	mu      sync.Mutex
	state   string
	changed chan struct{}
	polls   int
}

func newEvents(state string) *events { return &events{state: state, changed: make(chan struct{})} }

func (e *events) set(state string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state = state
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *events) Instance(_ context.Context, id string) (cloud.Instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.polls++
	return cloud.Instance{ID: id, State: e.state}, nil
}

func (e *events) WaitInstanceState(ctx context.Context, id string, want ...string) (cloud.Instance, error) {
	for {
		e.mu.Lock()
		state, changed := e.state, e.changed
		e.mu.Unlock()
		if slices.Contains(want, state) {
			return cloud.Instance{ID: id, State: state}, nil
		}
		select {
		case <-ctx.Done():
			return cloud.Instance{ID: id, State: state}, ctx.Err()
		case <-changed:
		}
	}
}

// TestInstanceEvents: a provider with events is described once per state
// change, not polled, and goes through the same states, stops and bounds
// as a polled one.
func TestInstanceEvents(t *testing.T) {
	p := newEvents(cloud.InstancePending)
	time.AfterFunc(300*time.Millisecond, func() { p.set(cloud.InstanceRunning) })
	var heard []string
	w := wait.Waiter{Initial: time.Millisecond, Progress: func(_, s string) { heard = append(heard, s) }}
	in, err := w.Instance(context.Background(), p, "i-1", cloud.InstanceRunning)
	if err != nil || in.State != cloud.InstanceRunning || p.polls != 2 || !slices.Equal(heard, []string{cloud.InstancePending, cloud.InstanceRunning}) {
		t.Fatalf("running: %+v, %v, after %d describes hearing %v: want 2 describes, pending then running", in, err, p.polls, heard)
	}
	_, err = wait.Waiter{Timeout: 100 * time.Millisecond}.Instance(context.Background(), p, "i-1", cloud.InstanceTerminated)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), `waiting for instance i-1 to be terminated: last state "running"`) {
		t.Fatalf("timeout: %v", err)
	}
	time.AfterFunc(100*time.Millisecond, func() { p.set(cloud.InstanceTerminated) })
	_, err = wait.Waiter{Timeout: time.Minute}.Instance(context.Background(), p, "i-1", cloud.InstanceStopped)
	if err == nil || err.Error() != "waiting for instance i-1 to be stopped: instance is terminated" {
		t.Fatalf("terminated while awaiting stopped: %v", err)
	}
}

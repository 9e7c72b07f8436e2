package install_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/memory"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/install"
)

// trace records what fake steps did, in order.
type trace struct {
	mu     sync.Mutex
	events []string
}

func (tr *trace) add(format string, a ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.events = append(tr.events, fmt.Sprintf(format, a...))
}

func (tr *trace) get() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.events)
}

// fake is a step that records its run and cleanup; run, if set, is its work.
func (tr *trace) fake(name string, run func(ctx context.Context, b *install.Build) error) install.Step {
	return install.Step{
		Name: name,
		Run: func(ctx context.Context, b *install.Build) error {
			tr.add("run %s", name)
			if run != nil {
				return run(ctx, b)
			}
			return nil
		},
		Cleanup: func(ctx context.Context, b *install.Build, failed bool) error {
			tr.add("cleanup %s failed=%v ctx=%v", name, failed, ctx.Err())
			return nil
		},
	}
}

type engine struct {
	*install.Engine
	progress []string
}

func newEngine(t *testing.T, p cloud.Provider) *engine {
	t.Helper()
	store, err := install.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{}
	e.Engine = &install.Engine{Provider: p, Store: store, Progress: func(l string) { e.progress = append(e.progress, l) }}
	return e
}

// saved is the build as its state file holds it.
func (e *engine) saved(t *testing.T, b *install.Build) *install.Build {
	t.Helper()
	s, err := e.Store.Load(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantTrace(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("steps did\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestEngineCleanupOrder: steps run in order; cleanup runs for every step
// in reverse, told the build did not fail; a step without Cleanup is
// passed over; the state file says done.
func TestEngineCleanupOrder(t *testing.T) {
	e := newEngine(t, memory.New())
	tr := &trace{}
	noCleanup := install.Step{Name: "b", Run: func(context.Context, *install.Build) error { tr.add("run b"); return nil }}
	b := install.NewBuild("bake", "memory", install.Spec{})
	err := e.Run(context.Background(), b, []install.Step{tr.fake("a", nil), noCleanup, tr.fake("c", nil)})
	if err != nil {
		t.Fatal(err)
	}
	wantTrace(t, tr.get(), []string{"run a", "run b", "run c", "cleanup c failed=false ctx=<nil>", "cleanup a failed=false ctx=<nil>"})
	s := e.saved(t, b)
	if s.Status != install.StatusDone || s.Error != "" || s.Steps["a"] != "done" || s.Steps["b"] != "done" || s.Steps["c"] != "done" {
		t.Errorf("saved build: status %s, error %q, steps %v: want done", s.Status, s.Error, s.Steps)
	}
}

// TestEngineFailure: a failing step stops the build; the steps that ran
// (the failed one too) are cleaned up in reverse, told it failed; a
// cleanup error is joined to the step's, a cleanup "not found" is not an
// error; the state file names the failed step.
func TestEngineFailure(t *testing.T) {
	e := newEngine(t, memory.New())
	tr := &trace{}
	boom := errors.New("boom")
	a := tr.fake("a", nil)
	a.Cleanup = func(ctx context.Context, b *install.Build, failed bool) error {
		tr.add("cleanup a failed=%v", failed)
		return errors.New("volume vol-1: still attached")
	}
	gone := tr.fake("gone", nil)
	gone.Cleanup = func(context.Context, *install.Build, bool) error {
		tr.add("cleanup gone")
		return fmt.Errorf("volume vol-2: %w", cloud.ErrNotFound)
	}
	b := install.NewBuild("bake", "memory", install.Spec{})
	err := e.Run(context.Background(), b, []install.Step{a, gone, tr.fake("b", func(context.Context, *install.Build) error { return boom }), tr.fake("c", nil)})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "build "+b.ID+": step b: boom") || !strings.Contains(err.Error(), "cleanup a: volume vol-1: still attached") {
		t.Fatalf("err = %v: want step b's error and cleanup a's", err)
	}
	if strings.Contains(err.Error(), "vol-2") {
		t.Errorf("err = %v: a cleanup's not-found is done, not an error", err)
	}
	wantTrace(t, tr.get(), []string{"run a", "run gone", "run b", "cleanup b failed=true ctx=<nil>", "cleanup gone", "cleanup a failed=true"})
	s := e.saved(t, b)
	if s.Status != install.StatusFailed || s.Steps["b"] != "failed" || s.Steps["c"] != "" || !strings.Contains(s.Error, "step b: boom") || !strings.Contains(s.Error, "cleanup a") {
		t.Errorf("saved build: status %s, error %q, steps %v", s.Status, s.Error, s.Steps)
	}
	if len(e.progress) != 1 || !strings.HasPrefix(e.progress[0], "left behind: ") || !strings.Contains(e.progress[0], "kscloud cleanup "+b.ID) {
		t.Errorf("progress %q: want one line saying what was left and how to remove it", e.progress)
	}
}

// TestEngineKeepOnErrorResume: with KeepOnError a failed build is left as
// it is (no cleanup) and says how to resume; the resumed build (loaded from
// its state file) skips the steps done in the first run, runs the rest,
// and cleans up every step, those finished in the earlier run included.
func TestEngineKeepOnErrorResume(t *testing.T) {
	e := newEngine(t, memory.New())
	e.KeepOnError = true
	tr := &trace{}
	flaky := errors.New("installer crashed")
	fail := true
	steps := []install.Step{tr.fake("a", nil), tr.fake("b", nil), tr.fake("c", func(context.Context, *install.Build) error {
		if fail {
			return flaky
		}
		return nil
	}), tr.fake("d", nil)}
	b := install.NewBuild("bake", "memory", install.Spec{})
	if err := e.Run(context.Background(), b, steps); !errors.Is(err, flaky) {
		t.Fatalf("first run: %v", err)
	}
	wantTrace(t, tr.get(), []string{"run a", "run b", "run c"})
	s := e.saved(t, b)
	if s.Status != install.StatusFailed || s.Steps["a"] != "done" || s.Steps["b"] != "done" || s.Steps["c"] != "failed" {
		t.Errorf("kept build: status %s, steps %v", s.Status, s.Steps)
	}
	// What was kept and how to resume is the caller's to say (cmd/kscloud
	// names its flags); the engine keeps every resource in the record.
	if len(s.Resources) != len(b.Resources) {
		t.Errorf("kept build: resources %v, want %v", s.Resources, b.Resources)
	}

	tr.events, fail, e.KeepOnError = nil, false, false
	if err := e.Run(context.Background(), s, steps); err != nil {
		t.Fatalf("resume: %v", err)
	}
	wantTrace(t, tr.get(), []string{"run c", "run d",
		"cleanup d failed=false ctx=<nil>", "cleanup c failed=false ctx=<nil>", "cleanup b failed=false ctx=<nil>", "cleanup a failed=false ctx=<nil>"})
	if s := e.saved(t, b); s.Status != install.StatusDone || s.Error != "" {
		t.Errorf("resumed build: status %s, error %q", s.Status, s.Error)
	}
}

// TestEngineCancel: an interrupt during a step ends the build as
// interrupted (the error wraps ErrInterrupted and the step's), runs no
// further step, and cleans up with a context the interrupt did not
// cancel; an interrupt between steps stops before the next one.
func TestEngineCancel(t *testing.T) {
	e := newEngine(t, memory.New())
	tr := &trace{}
	ctx, cancel := context.WithCancel(context.Background())
	b := install.NewBuild("bake", "memory", install.Spec{})
	err := e.Run(ctx, b, []install.Step{tr.fake("a", nil), tr.fake("b", func(ctx context.Context, _ *install.Build) error {
		cancel() // the signal arrives while b waits
		<-ctx.Done()
		return ctx.Err()
	}), tr.fake("c", nil)})
	if !errors.Is(err, install.ErrInterrupted) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "step b: interrupted") {
		t.Fatalf("err = %v: want step b interrupted", err)
	}
	wantTrace(t, tr.get(), []string{"run a", "run b", "cleanup b failed=true ctx=<nil>", "cleanup a failed=true ctx=<nil>"})
	if s := e.saved(t, b); s.Status != install.StatusInterrupted || s.Steps["b"] != "failed" {
		t.Errorf("saved build: status %s, steps %v: want interrupted", s.Status, s.Steps)
	}

	tr = &trace{}
	ctx, cancel = context.WithCancel(context.Background())
	b = install.NewBuild("bake", "memory", install.Spec{})
	err = e.Run(ctx, b, []install.Step{tr.fake("a", func(context.Context, *install.Build) error { cancel(); return nil }), tr.fake("b", nil)})
	if !errors.Is(err, install.ErrInterrupted) || !strings.Contains(err.Error(), "before step b") {
		t.Fatalf("err = %v: want interrupted before step b", err)
	}
	wantTrace(t, tr.get(), []string{"run a", "cleanup a failed=true ctx=<nil>"})
	if s := e.saved(t, b); s.Status != install.StatusInterrupted || s.Steps["a"] != "done" || s.Steps["b"] != "" {
		t.Errorf("saved build: status %s, steps %v", s.Status, s.Steps)
	}
}

// removeOnFailure is a cleanup that deletes the resource of role when the
// build failed.
func removeOnFailure(p cloud.Provider, role string) func(context.Context, *install.Build, bool) error {
	return func(ctx context.Context, b *install.Build, failed bool) error {
		r, ok := b.Resource(role)
		if !ok || !failed {
			return nil
		}
		if err := install.DeleteResource(ctx, p, r); err != nil {
			return err
		}
		b.MarkDeleted(r.Kind, r.ID)
		return nil
	}
}

// TestEngineCloudResources: steps that create cloud resources (on the
// in-memory cloud) record them before waiting; a failed build's cleanup
// removes them; Sweep finds nothing left.
func TestEngineCloudResources(t *testing.T) {
	p := memory.New()
	e := newEngine(t, p)
	fast := wait.Waiter{Initial: time.Millisecond, Max: 5 * time.Millisecond}
	b := install.NewBuild("bake", "memory", install.Spec{})
	tags := cloud.Tags{cloud.TagBuild: b.ID}
	volume := install.Step{
		Name: "volume",
		Run: func(ctx context.Context, b *install.Build) error {
			v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1, Tags: tags})
			if err := b.RecordCreated(install.Resource{Kind: install.KindVolume, ID: v.ID, Role: "target", Step: "volume"}, err); err != nil {
				return err
			}
			_, err = fast.Volume(ctx, p, v.ID, cloud.VolumeAvailable)
			return err
		},
		Cleanup: removeOnFailure(p, "target"),
	}
	snapshot := install.Step{
		Name: "snapshot",
		Run: func(ctx context.Context, b *install.Build) error {
			r, _ := b.Resource("target")
			s, err := p.CreateSnapshot(ctx, r.ID, "test", tags)
			if err := b.RecordCreated(install.Resource{Kind: install.KindSnapshot, ID: s.ID, Role: "snapshot", Step: "snapshot"}, err); err != nil {
				return err
			}
			_, err = fast.Snapshot(ctx, p, s.ID, cloud.SnapshotCompleted)
			if err != nil {
				return err
			}
			return errors.New("registration refused")
		},
		Cleanup: removeOnFailure(p, "snapshot"),
	}
	err := e.Run(context.Background(), b, []install.Step{volume, snapshot})
	if err == nil || !strings.Contains(err.Error(), "step snapshot: registration refused") {
		t.Fatalf("err = %v", err)
	}
	s := e.saved(t, b)
	if len(s.Resources) != 2 || !s.Resources[0].Deleted || !s.Resources[1].Deleted {
		t.Fatalf("recorded %+v: want the volume and the snapshot, both deleted", s.Resources)
	}
	left, err := p.FindTagged(context.Background(), cloud.TagBuild, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range left {
		if r.Kind != "volume" {
			t.Errorf("left on the cloud: %+v", r)
			continue
		}
		if v, err := p.Volume(context.Background(), r.ID); err == nil && v.State != cloud.VolumeDeleting && v.State != cloud.VolumeDeleted {
			t.Errorf("volume %s is %s after cleanup: want deleting", r.ID, v.State)
		}
	}
	if err := e.Sweep(context.Background(), s); err != nil {
		t.Errorf("Sweep after cleanup: %v", err)
	}
}

// TestEngineLogFields: every step line names the build and the step, and
// from the step that launched the instance on, the instance (and on
// libvirt the domain, the same name), as the daemon's lines do.
func TestEngineLogFields(t *testing.T) {
	var tr trace
	var buf strings.Builder
	e := newEngine(t, memory.New())
	e.Log = slog.New(slog.NewJSONHandler(&buf, nil))
	b := install.NewBuild("bake", "libvirt", install.Spec{})
	err := e.Run(context.Background(), b, []install.Step{
		tr.fake("prepare", nil),
		tr.fake("launch", func(ctx context.Context, b *install.Build) error {
			return b.RecordCreated(install.Resource{Kind: install.KindInstance, ID: "ks-dom-1", Role: "installer"}, nil)
		}),
		tr.fake("wait", nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if r["build"] != b.ID || r["step"] == nil {
			t.Errorf("line %v: want build %s and a step", r, b.ID)
		}
		launched := r["step"] == "wait" || r["step"] == "launch" && r["msg"] == "step done"
		if launched {
			n++
			if r["instance"] != "ks-dom-1" || r["domain"] != "ks-dom-1" {
				t.Errorf("line %v: want instance and domain ks-dom-1", r)
			}
		} else if r["instance"] != nil {
			t.Errorf("line %v: an instance before any was launched", r)
		}
	}
	if n != 3 {
		t.Errorf("%d lines after the launch, want 3:\n%s", n, buf.String())
	}
}

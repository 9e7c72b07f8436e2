// Package install is kscloud's workflow engine: a workflow is a literal
// list of steps, each with Run and Cleanup (Packer's multistep contract,
// typed). Every cloud resource a step creates is recorded in the build's
// state file the moment the API returns its ID, before any waiting, so an
// interrupted build can be resumed (Resume) or swept (Sweep/cleanup), and
// cleanup runs in reverse for every step that ran, on success or failure.
package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
)

// Step is one step of a workflow.
type Step struct {
	Name string
	// Run does the step's work. It records resources with b.Record as soon
	// as they exist. On resume, Run is called again for a step that did not
	// finish: it must reuse what it recorded (b.Resource) instead of
	// creating it twice.
	Run func(ctx context.Context, b *Build) error
	// Cleanup undoes what Run left that the build does not keep; failed
	// says whether the build failed. Called for every step that ran (also
	// the one that failed), in reverse order, with a context that is not
	// cancelled by the interrupt that stopped the build. May be nil.
	Cleanup func(ctx context.Context, b *Build, failed bool) error
}

// Engine runs workflows.
type Engine struct {
	Provider cloud.Provider
	Store    *Store
	Log      *slog.Logger
	// KeepOnError leaves every resource of a failed build in place and
	// prints them, for debugging.
	KeepOnError bool
	// CleanupTimeout bounds the whole cleanup (default 10 minutes).
	CleanupTimeout time.Duration
	// Progress receives human progress lines (stderr); may be nil.
	Progress func(line string)
}

// ErrInterrupted marks a build stopped by a signal or a cancelled context.
var ErrInterrupted = errors.New("interrupted")

// Run runs steps for build b (a new build, or one loaded for resume:
// steps already done are skipped). It returns the first step error joined
// with any cleanup errors.
func (e *Engine) Run(ctx context.Context, b *Build, steps []Step) (err error) {
	b.save = e.Store.Save
	b.Status, b.Error = StatusRunning, ""
	if err := e.Store.Save(b); err != nil {
		return err
	}
	var ran []Step
	var runErr error
	for _, s := range steps {
		if b.StepDone(s.Name) {
			ran = append(ran, s)
			continue
		}
		if ctx.Err() != nil {
			runErr = fmt.Errorf("build %s: before step %s: %w", b.ID, s.Name, ErrInterrupted)
			break
		}
		e.log().Info("step", b.logAttrs(s.Name)...)
		start := time.Now()
		b.setStep(s.Name, "running")
		if err := e.Store.Save(b); err != nil {
			runErr = fmt.Errorf("build %s: before step %s: %w", b.ID, s.Name, err)
			break // a step that cannot record what it creates does not run
		}
		ran = append(ran, s)
		if err := s.Run(ctx, b); err != nil {
			if ctx.Err() != nil && !errors.Is(err, ErrInterrupted) {
				err = fmt.Errorf("%w: %w", ErrInterrupted, err)
			}
			runErr = fmt.Errorf("build %s: step %s: %w", b.ID, s.Name, err)
			b.setStep(s.Name, "failed")
			if err := e.Store.Save(b); err != nil {
				runErr = errors.Join(runErr, err)
			}
			break
		}
		b.setStep(s.Name, "done")
		e.log().Info("step done", append(b.logAttrs(s.Name), "duration_s", time.Since(start).Seconds())...)
		if err := e.Store.Save(b); err != nil {
			runErr = err
			break
		}
	}
	failed := runErr != nil
	if failed {
		b.Status, b.Error = StatusFailed, runErr.Error()
		if errors.Is(runErr, ErrInterrupted) {
			b.Status = StatusInterrupted
		}
	}
	if failed && e.KeepOnError {
		// Everything stays; the caller says how to resume or remove it.
		if err := e.Store.Save(b); err != nil {
			return errors.Join(runErr, err)
		}
		return runErr
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cleanupTimeout())
	defer cancel()
	var cerrs []error
	for i := len(ran) - 1; i >= 0; i-- {
		s := ran[i]
		if s.Cleanup == nil {
			continue
		}
		if err := s.Cleanup(cctx, b, failed); err != nil && !cloud.IsNotFound(err) {
			cerrs = append(cerrs, fmt.Errorf("cleanup %s: %w", s.Name, err))
		}
		if err := e.Store.Save(b); err != nil {
			cerrs = append(cerrs, fmt.Errorf("cleanup %s: %w", s.Name, err))
		}
	}
	if !failed {
		b.Status = StatusDone
	}
	if len(cerrs) > 0 {
		b.Status = StatusFailed
		cerr := errors.Join(cerrs...)
		b.Error = joinLine(b.Error, cerr.Error())
		if err := e.Store.Save(b); err != nil {
			cerr = errors.Join(cerr, err)
		}
		e.progress("left behind: " + b.ResourceSummary() + fmt.Sprintf(" (remove with: kscloud cleanup %s)", b.ID))
		return errors.Join(runErr, cerr)
	}
	if err := e.Store.Save(b); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// Sweep deletes every resource a build recorded that still exists
// (kscloud cleanup ID): instances first, so that the volumes they hold
// (on EC2 a volume an instance's launch created is recorded after it) are
// free, then the rest newest first (an image before its snapshot). A
// target volume the installer's launch created but the build did not get
// to record is found on the installer and removed too.
func (e *Engine) Sweep(ctx context.Context, b *Build) error {
	b.save = e.Store.Save
	var errs []error
	if err := AdoptTarget(ctx, e.Provider, b); err != nil {
		errs = append(errs, fmt.Errorf("installer's volumes: %w", err))
	}
	for _, instances := range []bool{true, false} {
		for i := len(b.Resources) - 1; i >= 0; i-- {
			r := &b.Resources[i]
			if r.Deleted || (r.Kind == KindInstance) != instances {
				continue
			}
			if err := DeleteResource(ctx, e.Provider, *r); err != nil && !cloud.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("%s %s: %w", r.Kind, r.ID, err))
				continue
			}
			r.Deleted = true
			if err := e.Store.Save(b); err != nil {
				errs = append(errs, err)
			}
			e.progress(fmt.Sprintf("removed %s %s", r.Kind, r.ID))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	b.Status = StatusCleaned
	return e.Store.Save(b)
}

// DeleteResource removes one cloud resource, waiting as the kind needs:
// an instance is terminated (and waited for, so its volumes free up), a
// volume detached first when attached.
func DeleteResource(ctx context.Context, p cloud.Provider, r Resource) error {
	switch r.Kind {
	case KindInstance:
		if err := p.TerminateInstance(ctx, r.ID); err != nil {
			return err
		}
		_, err := wait.Waiter{Timeout: 10 * time.Minute}.Instance(ctx, p, r.ID, cloud.InstanceTerminated)
		if cloud.IsNotFound(err) {
			return nil
		}
		return err
	case KindVolume:
		v, err := p.Volume(ctx, r.ID)
		if err != nil {
			return err
		}
		if v.State == cloud.VolumeInUse || v.InstanceID != "" {
			if err := p.DetachVolume(ctx, r.ID); err != nil && !errors.Is(err, cloud.ErrIncorrectState) {
				return err
			}
			if _, err := (wait.Waiter{Timeout: 10 * time.Minute}).Volume(ctx, p, r.ID, cloud.VolumeAvailable); err != nil {
				return err
			}
		}
		return p.DeleteVolume(ctx, r.ID)
	case KindSnapshot:
		return p.DeleteSnapshot(ctx, r.ID)
	case KindImage:
		return p.DeregisterImage(ctx, r.ID)
	}
	return fmt.Errorf("unknown resource kind %q", r.Kind)
}

// logAttrs are the attributes of a line about step of b: the build, the
// step, and the instance once a step launched one (also the domain on
// libvirt, where the instance is the domain): journalctl INSTANCE=, DOMAIN=
// and STEP= find them as they find the daemon's.
func (b *Build) logAttrs(step string) []any {
	attrs := []any{"build", b.ID, "step", step}
	if r, ok := b.lastResource(func(r Resource) bool { return r.Kind == KindInstance }); ok {
		attrs = append(attrs, "instance", r.ID)
		if b.Provider == "libvirt" {
			attrs = append(attrs, "domain", r.ID)
		}
	}
	return attrs
}

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

func (e *Engine) progress(line string) {
	if e.Progress != nil {
		e.Progress(line)
	}
}

func (e *Engine) cleanupTimeout() time.Duration {
	if e.CleanupTimeout > 0 {
		return e.CleanupTimeout
	}
	return 10 * time.Minute
}

func joinLine(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

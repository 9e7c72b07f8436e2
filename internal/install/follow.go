// Following an install on the instance's console to its end (a bake) or
// until the installed system is up (install in place, image runs).

package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/progress"
)

// InstallError is an install that failed, with the last console lines.
type InstallError struct {
	Instance string
	Reason   string
	Last     []string
}

func (e *InstallError) Error() string {
	return fmt.Sprintf("instance %s: install failed: %s", e.Instance, e.Reason)
}

// follow reads the installer's console until the instance reaches one of
// until, tracking progress, failure patterns, the inactivity watchdog and
// the overall timeout. Where the provider reports states by events it
// waits on them; otherwise console and state are polled with a backoff
// (see Workflow.ConsolePoll).
func (w *Workflow) follow(ctx context.Context, b *Build, id string, until []string, stopAtMarker bool) (cloud.Instance, string, error) {
	marker := w.MarkerRE
	if marker == nil {
		marker = DefaultMarker
	}
	if !stopAtMarker {
		marker = nil
	}
	con := progress.NewFollower(w.lastLines(), marker)
	start := time.Now()
	deadline := start.Add(b.Spec.Timeout.Duration)
	if b.Spec.Timeout.Duration == 0 {
		deadline = start.Add(2 * time.Hour)
	}
	waiter, events := w.P.(wait.InstanceEvents)
	period := w.ConsolePoll
	if period == 0 {
		period = time.Second
	}
	bo := wait.Backoff{Initial: w.ConsolePoll, Max: w.ConsolePollMax}
	if bo.Initial == 0 {
		bo.Initial = 2 * time.Second
	}
	if bo.Max == 0 {
		bo.Max = 10 * time.Second
	}
	fail := func(reason string) error {
		return &InstallError{Instance: id, Reason: reason, Last: con.State().Last}
	}
	vncSaid := false
	for {
		grew := false
		out, err := w.P.ConsoleOutput(ctx, id)
		if err == nil && b.Spec.VNC && !vncSaid {
			// On a cloud nchookd notes the console in the output.
			if v, st := consolenote.Read(out, id); st == consolenote.Open {
				vncSaid = true
				where := v.URL()
				if v.Node != "" {
					where += " on node " + v.Node
				}
				w.status(fmt.Sprintf("VNC console: %s (password and tunnel: kscloud vnc %s)", where, b.ID))
			}
		}
		if err == nil && con.Read(out) {
			grew = true
			if m := con.Marker(); m != "" {
				return cloud.Instance{ID: id}, m, nil
			}
		}
		if l, ok := con.NewLine(); ok {
			w.status(l)
		}
		if f := con.Failure(); f != "" {
			return cloud.Instance{}, "", fail(f)
		}
		var inst cloud.Instance
		if events {
			tctx, cancel := context.WithTimeout(ctx, period)
			inst, err = waiter.WaitInstanceState(tctx, id, until...)
			cancel()
			if err != nil && ctx.Err() == nil && tctx.Err() != nil {
				err = nil
				inst.State = ""
			}
		} else {
			inst, err = w.P.Instance(ctx, id)
			if cloud.IsNotFound(err) && ctx.Err() == nil {
				switch {
				case time.Since(start) < notVisibleFor:
					err, inst.State = nil, "" // not visible yet
				case contains(until, cloud.InstanceTerminated):
					// Terminated long enough ago to be no longer listed.
					err, inst = nil, cloud.Instance{ID: id, State: cloud.InstanceTerminated}
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return cloud.Instance{}, "", fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
			}
			return cloud.Instance{}, "", err
		}
		for _, u := range until {
			if inst.State == u {
				// Read what the console still holds.
				if out, err := w.P.ConsoleOutput(ctx, id); err == nil {
					con.Read(out)
					if m := con.Marker(); m != "" {
						return inst, m, nil
					}
				}
				if f := con.Failure(); f != "" {
					return inst, "", fail(f)
				}
				return inst, "", nil
			}
		}
		if inst.State == cloud.InstanceTerminated && !contains(until, cloud.InstanceTerminated) {
			return inst, "", fail("instance terminated: " + inst.StateReason)
		}
		if lim := b.Spec.Inactivity.Duration; con.Inactive(lim) {
			return inst, "", fail(fmt.Sprintf("no console output for %s (inactivity watchdog)", lim))
		}
		if time.Now().After(deadline) {
			return inst, "", fail(fmt.Sprintf("not finished within %s (timeout)", b.Spec.Timeout.Duration))
		}
		if !events {
			if grew {
				bo.Reset()
			}
			if err := wait.Sleep(ctx, bo.Next()); err != nil {
				return cloud.Instance{}, "", fmt.Errorf("%w: %w", ErrInterrupted, err)
			}
		}
	}
}

// followStep follows the installer to its end (a bake: the instance stops
// or terminates by itself).
func (w *Workflow) followStep(name, role string) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			r, ok := b.Resource(role)
			if !ok {
				return errors.New("no installer instance recorded")
			}
			w.status("following the install on " + r.ID + "'s console")
			start := time.Now()
			inst, _, err := w.follow(ctx, b, r.ID, []string{cloud.InstanceStopped, cloud.InstanceTerminated}, false)
			if err != nil {
				return err
			}
			// The installer's power-off ends it; anything else (a failed
			// launch, someone terminating it) leaves no install to keep.
			if why := inst.StateReason; strings.Contains(why, "Server.") || strings.Contains(why, "UserInitiated") {
				return &InstallError{Instance: r.ID, Reason: fmt.Sprintf("instance %s: %s", inst.State, why)}
			}
			b.SetValue("install.seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
			b.SetValue("install.ended", time.Now().UTC().Format(time.RFC3339Nano))
			w.status("installer powered off")
			return nil
		},
	}
}

func (w *Workflow) bootStep(name, role string, until ...string) Step {
	return Step{Name: name, Run: func(ctx context.Context, b *Build) error {
		r, _ := b.Resource(role)
		w.status("waiting for " + r.ID + " to come up")
		_, m, err := w.follow(ctx, b, r.ID, until, true)
		if err != nil {
			return err
		}
		if m == "" {
			return &InstallError{Instance: r.ID, Reason: "the system stopped before it came up"}
		}
		b.SetKeep(KindInstance, r.ID)
		if v, ok := b.Resource("root"); ok {
			b.SetKeep(KindVolume, v.ID)
		}
		inst, err := w.P.Instance(ctx, r.ID)
		if err != nil {
			return err
		}
		res := &Result{InstanceID: r.ID, Marker: strings.TrimSpace(m), VNC: inst.VNC}
		for _, a := range []string{inst.PrivateIP, inst.PublicIP} {
			if a != "" && a != "0.0.0.0" {
				res.Addresses = append(res.Addresses, a)
			}
		}
		if s := b.Value("install.seconds"); s != "" {
			fmt.Sscan(s, &res.InstallSeconds)
		}
		b.Result = res
		return nil
	}}
}

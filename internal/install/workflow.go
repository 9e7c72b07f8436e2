package install

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/progress"
)

// Workflow holds what the steps of one build need besides its state.
type Workflow struct {
	P cloud.Provider
	// Installer boot: local kernel/initrd paths (or eki/eri ids) and the
	// command line (local), or user-data carrying bootparams (clouds).
	Kernel, Ramdisk string
	Cmdline         string
	UserData        []byte
	// TargetDevice is where the target volume is attached for a bake on a
	// cloud (the installer boots from its own image): /dev/sdb by default.
	// Where the provider cannot attach an existing volume at launch (EC2),
	// the installer's launch creates it there (a block-device mapping of
	// Spec.DiskGiB, DeleteOnTermination false).
	TargetDevice string
	// Ephemeral mappings for registered images (seed 000).
	Ephemeral  map[string]string
	Provenance *Provenance
	// Status, when set, gets the live progress line (for people, stderr).
	Status func(line string)
	// ConsolePoll is how often the console is read (default 1 s) where
	// the provider tells instance states by events (InstanceWaiter). Where
	// states are polled (a cloud API), console and state are read with a
	// backoff from ConsolePoll (default 2 s) to ConsolePollMax (default
	// 10 s), back to the start whenever the console grew.
	ConsolePoll    time.Duration
	ConsolePollMax time.Duration
	// LastLines is how many console lines a failure shows (default 15).
	LastLines int
	// MarkerRE matches the console line saying the installed system is up.
	MarkerRE *regexp.Regexp
}

// DefaultMarker matches the test installer's marker or a getty login
// prompt ("host login: ") ending a line or the output so far.
var DefaultMarker = progress.DefaultMarker

func (w *Workflow) status(s string) {
	if w.Status != nil {
		w.Status(s)
	}
}

func (w *Workflow) tags(b *Build, role string) cloud.Tags {
	return cloud.Tags{cloud.TagBuild: b.ID, cloud.TagCreator: "kscloud", cloud.TagRole: role}
}

func (w *Workflow) targetDevice() string {
	if w.TargetDevice != "" {
		return w.TargetDevice
	}
	return "/dev/sdb"
}

// notVisibleFor is how long "not found" right after a launch means "not
// visible yet" (EC2 is eventually consistent after a create).
const notVisibleFor = 15 * time.Second

// volumeStep creates (or, on resume, finds) a volume with role.
func (w *Workflow) volumeStep(name, role string) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			r, ok := b.Resource(role)
			if !ok {
				v, err := w.P.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: b.Spec.DiskGiB, Zone: b.Spec.Zone, Tags: w.tags(b, role)})
				r = Resource{Kind: KindVolume, ID: v.ID, Role: role, Step: name}
				if err := b.RecordCreated(r, err); err != nil {
					return err
				}
				w.status(fmt.Sprintf("volume %s created (%d GiB)", v.ID, b.Spec.DiskGiB))
			}
			_, err := waitNewVolume(ctx, w.P, r.ID, 10*time.Minute, cloud.VolumeAvailable, cloud.VolumeInUse)
			return err
		},
		Cleanup: func(ctx context.Context, b *Build, failed bool) error {
			r, ok := b.Resource(role)
			if !ok || (r.Keep && !failed) {
				return nil
			}
			if err := DeleteResource(ctx, w.P, r); err != nil && !cloud.IsNotFound(err) {
				return err
			}
			b.MarkDeleted(r.Kind, r.ID)
			return nil
		},
	}
}

// instanceStep launches (or finds) the installer instance. newTarget:
// the launch creates the target volume (a block-device mapping, for
// providers that cannot attach an existing volume at launch); its ID is
// recorded as role "target" as soon as the instance lists it, before any
// other wait, and cleanup removes it with the instance.
func (w *Workflow) instanceStep(name, role string, inPlace, newTarget bool) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			r, ok := b.Resource(role)
			var launched cloud.Instance
			if !ok {
				spec := cloud.InstanceSpec{
					Name: b.Spec.Name, ImageID: b.Spec.ImageID, KernelID: w.Kernel, RamdiskID: w.Ramdisk,
					Cmdline: w.Cmdline, UserData: w.UserData, Type: b.Spec.Type, MemoryMB: b.Spec.MemoryMB, CPUs: b.Spec.CPUs,
					KeyName: b.Spec.KeyName, Zone: b.Spec.Zone, VNC: b.Spec.VNC, InPlace: inPlace, Tags: w.tags(b, role),
				}
				// The guest's power-off does what the cloud does by default:
				// stop an EBS-rooted instance, terminate an instance-store
				// one (EC2 refuses "stop" there). Either ends the install;
				// the target volume outlives both.
				if newTarget {
					dev := w.targetDevice()
					spec.Volumes = []cloud.Attachment{{Device: dev, SizeGiB: b.Spec.DiskGiB, DeleteOnTermination: cloud.Bool(false)}}
					b.SetValue("target.device", dev)
					if err := b.Save(); err != nil {
						return err
					}
				} else if r, ok := b.Resource("target"); ok {
					spec.Volumes = []cloud.Attachment{{VolumeID: r.ID, Device: w.targetDevice()}}
				}
				if r, ok := b.Resource("root"); ok {
					spec.Volumes = []cloud.Attachment{{VolumeID: r.ID, Device: "/dev/vda"}}
				}
				inst, err := w.P.RunInstance(ctx, spec)
				r = Resource{Kind: KindInstance, ID: inst.ID, Role: role, Step: name}
				if inst.ID != "" {
					b.SetValue("install.started", time.Now().UTC().Format(time.RFC3339Nano))
				}
				if err := b.RecordCreated(r, err); err != nil {
					return err
				}
				launched = inst
				w.status(fmt.Sprintf("instance %s launched", inst.ID))
				if inst.VNC != "" {
					w.status("VNC console: " + inst.VNC)
				}
			}
			if newTarget {
				if _, ok := b.Resource("target"); !ok {
					return w.recordTarget(ctx, b, r, launched)
				}
			}
			return nil // resumed: following picks it up in whatever state
		},
		Cleanup: func(ctx context.Context, b *Build, failed bool) error {
			var errs []error
			if r, ok := b.Resource(role); ok && (!r.Keep || failed) {
				if err := DeleteResource(ctx, w.P, r); err != nil && !cloud.IsNotFound(err) {
					return err // the volume cannot go while the instance holds it
				}
				b.MarkDeleted(r.Kind, r.ID)
			}
			if r, ok := b.Resource("target"); ok && newTarget && r.Step == name {
				if err := DeleteResource(ctx, w.P, r); err != nil && !cloud.IsNotFound(err) {
					errs = append(errs, err)
				} else {
					b.MarkDeleted(r.Kind, r.ID)
				}
			}
			return errors.Join(errs...)
		},
	}
}

// recordTarget finds the volume the installer's launch created at the
// target device, in the launch's answer or, polling with backoff, in the
// instance's description, and records it (role "target") and tags it.
func (w *Workflow) recordTarget(ctx context.Context, b *Build, installer Resource, launched cloud.Instance) error {
	dev := b.Value("target.device")
	if dev == "" {
		dev = w.targetDevice()
	}
	a, ok := volumeAt(launched.Volumes, dev)
	if !ok {
		start := time.Now()
		var err error
		a, err = poll(ctx, 10*time.Minute, fmt.Sprintf("instance %s to list its volume at %s", installer.ID, dev), func() (cloud.Attachment, bool, error) {
			inst, err := w.P.Instance(ctx, installer.ID)
			if cloud.IsNotFound(err) && time.Since(start) < notVisibleFor {
				return cloud.Attachment{}, false, nil
			}
			if err != nil {
				return cloud.Attachment{}, false, err
			}
			if a, ok := volumeAt(inst.Volumes, dev); ok {
				return a, true, nil
			}
			if inst.State == cloud.InstanceTerminated || inst.State == cloud.InstanceShuttingDown {
				return cloud.Attachment{}, false, fmt.Errorf("instance %s is %s without a volume at %s: %s", installer.ID, inst.State, dev, inst.StateReason)
			}
			return cloud.Attachment{}, false, nil
		})
		if err != nil {
			return err
		}
	}
	r := Resource{Kind: KindVolume, ID: a.VolumeID, Role: "target", Step: installer.Step}
	b.Record(r)
	if err := b.Save(); err != nil {
		return err
	}
	w.status(fmt.Sprintf("volume %s created at %s (%d GiB)", a.VolumeID, dev, b.Spec.DiskGiB))
	return w.P.Tag(ctx, a.VolumeID, w.tags(b, "target"))
}

// volumeAt returns the attachment at dev ("/dev/sdb" and "sdb" alike).
func volumeAt(as []cloud.Attachment, dev string) (cloud.Attachment, bool) {
	want := strings.TrimPrefix(dev, "/dev/")
	for _, a := range as {
		if a.VolumeID != "" && strings.TrimPrefix(a.Device, "/dev/") == want {
			return a, true
		}
	}
	return cloud.Attachment{}, false
}

// AdoptTarget records the target volume an installer's launch created
// when the build recorded the installer but not yet the volume (a kill in
// between): kscloud cleanup then removes it too. Nothing to do otherwise.
func AdoptTarget(ctx context.Context, p cloud.Provider, b *Build) error {
	dev := b.Value("target.device")
	if dev == "" {
		return nil
	}
	if _, ok := b.Resource("target"); ok {
		return nil
	}
	inst, ok := b.Resource("installer")
	if !ok {
		return nil
	}
	in, err := p.Instance(ctx, inst.ID)
	if cloud.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if a, ok := volumeAt(in.Volumes, dev); ok {
		b.Record(Resource{Kind: KindVolume, ID: a.VolumeID, Role: "target", Step: inst.Step})
		return b.Save()
	}
	return nil
}

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
	waiter, events := w.P.(InstanceWaiter)
	period := w.ConsolePoll
	if period == 0 {
		period = time.Second
	}
	newBackoff := func() Backoff {
		bo := Backoff{Start: w.ConsolePoll, Max: w.ConsolePollMax}
		if bo.Start == 0 {
			bo.Start = 2 * time.Second
		}
		if bo.Max == 0 {
			bo.Max = 10 * time.Second
		}
		if bo.Max < bo.Start {
			bo.Max = bo.Start
		}
		return bo
	}
	bo := newBackoff()
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
				bo = newBackoff()
			}
			select {
			case <-ctx.Done():
				return cloud.Instance{}, "", fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
			case <-time.After(bo.Next()):
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (w *Workflow) lastLines() int {
	if w.LastLines > 0 {
		return w.LastLines
	}
	return 15
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

// detachStep frees the target volume from the stopped installer.
func (w *Workflow) detachStep(name string) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			r, ok := b.Resource("target")
			if !ok {
				return errors.New("no target volume recorded")
			}
			v, err := w.P.Volume(ctx, r.ID)
			if err != nil {
				return err
			}
			if v.State == cloud.VolumeInUse {
				if err := w.P.DetachVolume(ctx, r.ID); err != nil && !errors.Is(err, cloud.ErrIncorrectState) {
					return err
				}
			}
			_, err = WaitVolume(ctx, w.P, r.ID, 10*time.Minute, cloud.VolumeAvailable)
			return err
		},
	}
}

// snapshotStep snapshots the target volume.
func (w *Workflow) snapshotStep(name string) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			r, ok := b.Resource("snapshot")
			if ok {
				// Resumed: a pending snapshot is waited for, not retaken; one
				// that failed (local: its conversion died with kscloud) is.
				s, err := w.P.Snapshot(ctx, r.ID)
				if err != nil && !cloud.IsNotFound(err) {
					return err
				}
				if cloud.IsNotFound(err) || s.State == cloud.SnapshotError {
					if err == nil {
						if err := w.P.DeleteSnapshot(ctx, r.ID); err != nil && !cloud.IsNotFound(err) {
							return err
						}
					}
					b.MarkDeleted(r.Kind, r.ID)
					w.status(fmt.Sprintf("snapshot %s did not survive the interruption: taking it again", r.ID))
					ok = false
				}
			}
			if !ok {
				vol, ok := b.Resource("target")
				if !ok {
					return errors.New("no target volume recorded")
				}
				desc := "kscloud build " + b.ID
				if w.Provenance != nil {
					desc = w.Provenance.Describe()
				}
				s, err := w.P.CreateSnapshot(ctx, vol.ID, desc, w.tags(b, "snapshot"))
				r = Resource{Kind: KindSnapshot, ID: s.ID, Role: "snapshot", Step: name}
				if err := b.RecordCreated(r, err); err != nil {
					return err
				}
			}
			last := -1
			_, err := WaitSnapshot(ctx, w.P, r.ID, 2*time.Hour, func(p int) {
				if p != last {
					last = p
					w.status(fmt.Sprintf("snapshot %s %s %d%%", r.ID, bar(p), p))
				}
			})
			return err
		},
		Cleanup: func(ctx context.Context, b *Build, failed bool) error {
			r, ok := b.Resource("snapshot")
			if !ok || !failed {
				return nil
			}
			if err := w.P.DeleteSnapshot(ctx, r.ID); err != nil && !cloud.IsNotFound(err) {
				return err
			}
			b.MarkDeleted(r.Kind, r.ID)
			return nil
		},
	}
}

func bar(p int) string {
	if p < 0 {
		p = 0
	}
	if p > 100 {
		p = 100
	}
	n := p / 5
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 20-n) + "]"
}

// registerStep registers the snapshot as an image.
func (w *Workflow) registerStep(name string) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			snap, ok := b.Resource("snapshot")
			if !ok {
				return errors.New("no snapshot recorded")
			}
			img, ok := b.Resource("image")
			if !ok {
				spec := cloud.ImageSpec{
					Name:           imageName(b),
					SnapshotID:     snap.ID,
					RootDevice:     b.Spec.RootDevice,
					Architecture:   b.Spec.Architecture,
					Virtualization: b.Spec.Virtualization,
					Ephemeral:      w.Ephemeral,
					Tags:           w.tags(b, "image"),
				}
				if w.Provenance != nil {
					spec.Description = w.Provenance.Describe()
				}
				if spec.Virtualization == "paravirtual" {
					spec.KernelID, spec.RamdiskID = b.Spec.ImageKernel, b.Spec.ImageRamdisk
				}
				im, err := w.P.RegisterImage(ctx, spec)
				img = Resource{Kind: KindImage, ID: im.ID, Role: "image", Step: name}
				if err := b.RecordCreated(img, err); err != nil {
					return err
				}
			}
			b.SetKeep(KindImage, img.ID)
			b.SetKeep(KindSnapshot, snap.ID)
			im, err := pollFresh(ctx, 30*time.Minute, notVisibleFor, fmt.Sprintf("image %s to be available", img.ID), func() (cloud.Image, bool, error) {
				im, err := w.P.Image(ctx, img.ID)
				if err != nil {
					return im, false, err
				}
				if im.State == cloud.ImageFailed {
					return im, false, fmt.Errorf("image %s: state failed", img.ID)
				}
				return im, im.State == cloud.ImageAvailable || im.State == "", nil
			})
			if err != nil {
				return err
			}
			b.Result = &Result{ImageID: im.ID, ImageName: im.Name, ImagePath: im.Path, Provenance: w.Provenance}
			if s := b.Value("install.seconds"); s != "" {
				fmt.Sscan(s, &b.Result.InstallSeconds)
			}
			if t, err := time.Parse(time.RFC3339Nano, b.Value("install.ended")); err == nil {
				b.Result.OverheadSeconds = time.Since(t).Seconds()
			}
			w.status(fmt.Sprintf("image %s registered (%s)", im.ID, im.Name))
			return nil
		},
		Cleanup: func(ctx context.Context, b *Build, failed bool) error {
			r, ok := b.Resource("image")
			if !ok || !failed {
				return nil
			}
			if err := w.P.DeregisterImage(ctx, r.ID); err != nil && !cloud.IsNotFound(err) {
				return err
			}
			b.MarkDeleted(r.Kind, r.ID)
			return nil
		},
	}
}

func imageName(b *Build) string {
	n := b.Spec.Name
	if n == "" {
		n = "kscloud"
	}
	return n + "-" + b.Created.UTC().Format("20060102-150405")
}

// BakeSteps: create a volume, run the installer against it, follow it to
// its power-off, detach, snapshot, register the image; the installer and
// the volume are removed at the end, the snapshot and image kept.
//
// Where the provider attaches existing volumes at launch (local libvirt)
// the volume is created first; elsewhere (EC2) the installer's launch
// creates it, and it is recorded the moment the instance lists it.
func (w *Workflow) BakeSteps() []Step {
	launch := []Step{w.instanceStep("launch-installer", "installer", false, true)}
	if cloud.CapabilitiesOf(w.P).AttachExistingAtLaunch {
		launch = []Step{w.volumeStep("create-volume", "target"), w.instanceStep("launch-installer", "installer", false, false)}
	}
	return append(launch,
		w.followStep("follow-install", "installer"),
		w.detachStep("detach-volume"),
		w.snapshotStep("snapshot"),
		w.registerStep("register-image"),
	)
}

// RunSteps installs in place: the instance boots the installer, which
// installs onto the instance's own disk; when it ends, the instance comes
// back from its disk (nchookd on the node, or the local provider itself).
// The run returns when the installed system is up (marker or login on the
// console); an installer failure on the console, a crash or the watchdog
// ends it with the reason. withVolume creates the root disk first (local).
func (w *Workflow) RunSteps(withVolume bool) []Step {
	var steps []Step
	if withVolume {
		steps = append(steps, w.volumeStep("create-disk", "root"))
	}
	// A stop is not the end here: the installer's own stop is followed by
	// the installed system's boot under the same instance.
	return append(steps, w.instanceStep("launch", "instance", true, false),
		w.bootStep("install-and-boot", "instance", cloud.InstanceTerminated))
}

// ImageRunSteps boots an instance from an image and waits until it is up.
func (w *Workflow) ImageRunSteps() []Step {
	return []Step{w.instanceStep("launch", "instance", false, false),
		w.bootStep("boot", "instance", cloud.InstanceTerminated, cloud.InstanceStopped)}
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

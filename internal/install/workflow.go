package install

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
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
	TargetDevice string
	// Ephemeral mappings for registered images (seed 000).
	Ephemeral  map[string]string
	Provenance *Provenance
	// Status, when set, gets the live progress line (for people, stderr).
	Status func(line string)
	// ConsolePoll is how often the console is read (default 1 s).
	ConsolePoll time.Duration
	// LastLines is how many console lines a failure shows (default 15).
	LastLines int
	// MarkerRE matches the console line saying the installed system is up.
	MarkerRE *regexp.Regexp
}

// DefaultMarker matches the test installer's marker or a login prompt.
var DefaultMarker = regexp.MustCompile(`kscloud-installed sha256=[0-9a-f]+|\blogin: ?$`)

func (w *Workflow) status(s string) {
	if w.Status != nil {
		w.Status(s)
	}
}

func (w *Workflow) tags(b *Build, role string) cloud.Tags {
	return cloud.Tags{cloud.TagBuild: b.ID, cloud.TagCreator: "kscloud", cloud.TagRole: role}
}

// volumeStep creates (or, on resume, finds) a volume with role.
func (w *Workflow) volumeStep(name, role string) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			r, ok := b.Resource(role)
			if !ok {
				v, err := w.P.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: b.Spec.DiskGiB, Zone: b.Spec.Zone, Tags: w.tags(b, role)})
				if err != nil {
					return err
				}
				r = Resource{Kind: KindVolume, ID: v.ID, Role: role, Step: name}
				b.Record(r)
				if err := b.Save(); err != nil {
					return err
				}
				w.status(fmt.Sprintf("volume %s created (%d GiB)", v.ID, b.Spec.DiskGiB))
			}
			_, err := WaitVolume(ctx, w.P, r.ID, 10*time.Minute, cloud.VolumeAvailable, cloud.VolumeInUse)
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

// instanceStep launches (or finds) the installer instance.
func (w *Workflow) instanceStep(name, role string, inPlace bool) Step {
	return Step{
		Name: name,
		Run: func(ctx context.Context, b *Build) error {
			if _, ok := b.Resource(role); ok {
				return nil // resumed: following picks it up in whatever state
			}
			spec := cloud.InstanceSpec{
				Name: b.Spec.Name, ImageID: b.Spec.ImageID, KernelID: w.Kernel, RamdiskID: w.Ramdisk,
				Cmdline: w.Cmdline, UserData: w.UserData, Type: b.Spec.Type, MemoryMB: b.Spec.MemoryMB, CPUs: b.Spec.CPUs,
				KeyName: b.Spec.KeyName, Zone: b.Spec.Zone, VNC: b.Spec.VNC, InPlace: inPlace, Tags: w.tags(b, role),
			}
			spec.InstanceInitiatedShutdown = "stop"
			if r, ok := b.Resource("target"); ok {
				dev := w.TargetDevice
				if dev == "" {
					dev = "/dev/sdb"
				}
				spec.Volumes = []cloud.Attachment{{VolumeID: r.ID, Device: dev}}
			}
			if r, ok := b.Resource("root"); ok {
				spec.Volumes = []cloud.Attachment{{VolumeID: r.ID, Device: "/dev/vda"}}
			}
			inst, err := w.P.RunInstance(ctx, spec)
			if err != nil {
				return err
			}
			b.Record(Resource{Kind: KindInstance, ID: inst.ID, Role: role, Step: name})
			b.SetValue("install.started", time.Now().UTC().Format(time.RFC3339Nano))
			if err := b.Save(); err != nil {
				return err
			}
			w.status(fmt.Sprintf("instance %s launched", inst.ID))
			if inst.VNC != "" {
				w.status("VNC console: " + inst.VNC)
			}
			return nil
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
// the overall timeout.
func (w *Workflow) follow(ctx context.Context, b *Build, id string, until []string, stopAtMarker bool) (cloud.Instance, string, error) {
	sc := progress.NewScanner(w.lastLines())
	var seen int
	lastActive := time.Now()
	deadline := time.Now().Add(b.Spec.Timeout.Duration)
	if b.Spec.Timeout.Duration == 0 {
		deadline = time.Now().Add(2 * time.Hour)
	}
	poll := w.ConsolePoll
	if poll == 0 {
		poll = time.Second
	}
	var lastLine string
	marker := w.MarkerRE
	if marker == nil {
		marker = DefaultMarker
	}
	fail := func(reason string) error {
		return &InstallError{Instance: id, Reason: reason, Last: sc.State().Last}
	}
	for {
		out, err := w.P.ConsoleOutput(ctx, id)
		if err == nil && len(out) < seen {
			seen = 0 // the console file was started anew (a new boot)
		}
		if err == nil && len(out) > seen {
			sc.Write(out[seen:])
			seen = len(out)
			lastActive = time.Now()
			if stopAtMarker {
				if m := marker.Find(out); m != nil {
					return cloud.Instance{ID: id}, string(m), nil
				}
			}
		}
		st := sc.State()
		if l := st.Line(); l != lastLine && l != "" {
			lastLine = l
			w.status(l)
		}
		if st.Failure != "" {
			return cloud.Instance{}, "", fail(st.Failure)
		}
		var inst cloud.Instance
		if wt, ok := w.P.(InstanceWaiter); ok {
			tctx, cancel := context.WithTimeout(ctx, poll)
			inst, err = wt.WaitInstanceState(tctx, id, until...)
			cancel()
			if err != nil && ctx.Err() == nil && tctx.Err() != nil {
				err = nil
				inst.State = ""
			}
		} else {
			inst, err = w.P.Instance(ctx, id)
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
				if out, err := w.P.ConsoleOutput(ctx, id); err == nil && len(out) > seen {
					sc.Write(out[seen:])
					if stopAtMarker {
						if m := marker.Find(out); m != nil {
							return inst, string(m), nil
						}
					}
				}
				if f := sc.State().Failure; f != "" {
					return inst, "", fail(f)
				}
				return inst, "", nil
			}
		}
		if inst.State == cloud.InstanceTerminated && !contains(until, cloud.InstanceTerminated) {
			return inst, "", fail("instance terminated: " + inst.StateReason)
		}
		if lim := b.Spec.Inactivity.Duration; lim > 0 && time.Since(lastActive) > lim {
			return inst, "", fail(fmt.Sprintf("no console output for %s (inactivity watchdog)", lim))
		}
		if time.Now().After(deadline) {
			return inst, "", fail(fmt.Sprintf("not finished within %s (timeout)", b.Spec.Timeout.Duration))
		}
		if _, ok := w.P.(InstanceWaiter); !ok {
			select {
			case <-ctx.Done():
				return cloud.Instance{}, "", fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
			case <-time.After(poll):
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
			if _, _, err := w.follow(ctx, b, r.ID, []string{cloud.InstanceStopped, cloud.InstanceTerminated}, false); err != nil {
				return err
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
				if err != nil {
					return err
				}
				r = Resource{Kind: KindSnapshot, ID: s.ID, Role: "snapshot", Step: name}
				b.Record(r)
				if err := b.Save(); err != nil {
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
					spec.KernelID, spec.RamdiskID = w.Kernel, w.Ramdisk
				}
				im, err := w.P.RegisterImage(ctx, spec)
				if err != nil {
					return err
				}
				img = Resource{Kind: KindImage, ID: im.ID, Role: "image", Step: name}
				b.Record(img)
				if err := b.Save(); err != nil {
					return err
				}
			}
			b.SetKeep(KindImage, img.ID)
			b.SetKeep(KindSnapshot, snap.ID)
			im, err := w.P.Image(ctx, img.ID)
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
func (w *Workflow) BakeSteps() []Step {
	return []Step{
		w.volumeStep("create-volume", "target"),
		w.instanceStep("launch-installer", "installer", false),
		w.followStep("follow-install", "installer"),
		w.detachStep("detach-volume"),
		w.snapshotStep("snapshot"),
		w.registerStep("register-image"),
	}
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
	return append(steps, w.instanceStep("launch", "instance", true),
		w.bootStep("install-and-boot", "instance", cloud.InstanceTerminated))
}

// ImageRunSteps boots an instance from an image and waits until it is up.
func (w *Workflow) ImageRunSteps() []Step {
	return []Step{w.instanceStep("launch", "instance", false),
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

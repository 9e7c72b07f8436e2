package install

import (
	"context"
	"regexp"
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
	// the provider tells instance states by events (wait.InstanceEvents). Where
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

// snapshotProgress hears a snapshot's progress (percent) on every describe.
type snapshotProgress struct {
	cloud.Snapshots
	progress func(int)
}

func (s snapshotProgress) Snapshot(ctx context.Context, id string) (cloud.Snapshot, error) {
	sn, err := s.Snapshots.Snapshot(ctx, id)
	if err == nil {
		s.progress(sn.Progress)
	}
	return sn, err
}

// notVisibleFor is how long "not found" right after a launch means "not
// visible yet" (EC2 is eventually consistent after a create).
const notVisibleFor = 15 * time.Second

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

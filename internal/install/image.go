// The image steps: the installed volume is snapshotted and registered.

package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
)

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
			_, err := wait.Waiter{Timeout: 2 * time.Hour, NotFoundGrace: notVisibleFor}.Snapshot(ctx, snapshotProgress{w.P, func(p int) {
				if p != last {
					last = p
					w.status(fmt.Sprintf("snapshot %s %s %d%%", r.ID, bar(p), p))
				}
			}}, r.ID, cloud.SnapshotCompleted)
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
			im, err := wait.Poll(ctx, wait.Waiter{Timeout: 30 * time.Minute, NotFoundGrace: notVisibleFor}, fmt.Sprintf("image %s to be available", img.ID), func(ctx context.Context) (cloud.Image, string, bool, error) {
				im, err := w.P.Image(ctx, img.ID)
				if err != nil {
					return im, "", false, err
				}
				if im.State == cloud.ImageFailed {
					return im, im.State, false, wait.Stop(fmt.Errorf("image %s: state failed", img.ID))
				}
				return im, im.State, im.State == cloud.ImageAvailable || im.State == "", nil
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

// The volume steps: the target or root volume is created (or found on
// resume) and freed from the installer when it has ended.

package install

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
)

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
			_, err := wait.Waiter{Timeout: 10 * time.Minute, NotFoundGrace: notVisibleFor}.Volume(ctx, w.P, r.ID, cloud.VolumeAvailable, cloud.VolumeInUse)
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
			_, err = wait.Waiter{Timeout: 10 * time.Minute, NotFoundGrace: -1}.Volume(ctx, w.P, r.ID, cloud.VolumeAvailable)
			return err
		},
	}
}

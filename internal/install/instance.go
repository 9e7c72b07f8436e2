// The instance step: the installer (or the instance that installs in
// place) is launched, and the target volume its launch creates recorded.

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
		var err error
		// "Not found" in the first seconds: the launch not visible yet.
		a, err = wait.Poll(ctx, wait.Waiter{Timeout: 10 * time.Minute, NotFoundGrace: notVisibleFor}, fmt.Sprintf("instance %s to list its volume at %s", installer.ID, dev), func(ctx context.Context) (cloud.Attachment, string, bool, error) {
			inst, err := w.P.Instance(ctx, installer.ID)
			if err != nil {
				return cloud.Attachment{}, "", false, err
			}
			if a, ok := volumeAt(inst.Volumes, dev); ok {
				return a, inst.State, true, nil
			}
			if inst.State == cloud.InstanceTerminated || inst.State == cloud.InstanceShuttingDown {
				return cloud.Attachment{}, inst.State, false, wait.Stop(fmt.Errorf("instance %s is %s without a volume at %s: %s", installer.ID, inst.State, dev, inst.StateReason))
			}
			return cloud.Attachment{}, inst.State, false, nil
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

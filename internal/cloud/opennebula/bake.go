package opennebula

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/install"
)

// BakeSteps: installer files; a persistent DATABLOCK target; the
// installer VM with the target as disk 0 (on hold, lease, release);
// follow to POWEROFF; disksaveas of disk 0 into the image (LOCKED →
// READY, the VM HOTPLUG_SAVEAS_POWEROFF → POWEROFF) with the provenance
// written on it at once; then the installer is terminated and the target
// and kickstart file deleted (cleanups, in reverse).
func (w *Workflow) BakeSteps() []install.Step {
	return []install.Step{
		w.filesStep(),
		w.targetStep(),
		w.launchStep("installer", func(b *install.Build) ([]cloud.Attachment, error) {
			r, ok := b.Resource("target")
			if !ok {
				return nil, fmt.Errorf("no target volume recorded")
			}
			return []cloud.Attachment{{VolumeID: r.ID, Device: "vda"}}, nil
		}),
		w.followStep("installer"),
		w.saveasStep(),
	}
}

func (w *Workflow) targetStep() install.Step {
	return install.Step{
		Name: "create-target",
		Run: func(ctx context.Context, b *install.Build) error {
			r, ok := b.Resource("target")
			if !ok {
				v, err := w.P.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: b.Spec.DiskGiB, Tags: w.tags(b, "target")})
				r = install.Resource{Kind: install.KindVolume, ID: v.ID, Role: "target", Step: "create-target"}
				if err := b.RecordCreated(r, err); err != nil {
					return err
				}
				w.status(fmt.Sprintf("target %s created (DATABLOCK, %d GiB)", v.ID, b.Spec.DiskGiB))
			}
			n, _ := parseID(r.ID, preVol, "volume")
			_, err := w.waitImage(ctx, n, "target "+r.ID, 30*time.Minute)
			return err
		},
		Cleanup: w.remove("target"),
	}
}

// ImageName is the baked image's name: --name (or kscloud) and the build's time.
func ImageName(b *install.Build) string {
	n := b.Spec.Name
	if n == "" {
		n = "kscloud"
	}
	return sanitizeName(n + "-" + b.Created.UTC().Format("20060102-150405"))
}

// Provenance renders the attributes written on a baked image: DESCRIPTION
// as seed 003 writes it by hand ("<name> image. Source: <ks>, GitRev:
// <rev>") and one KSCLOUD_* attribute per fact.
func Provenance(name string, p *install.Provenance) [][2]string {
	if p == nil {
		return nil
	}
	rev := p.GitRevision
	if rev == "" {
		rev = "none"
	} else if p.GitDirty {
		rev += "+dirty"
	}
	// A kickstart URL's credentials and query values are the user's, not
	// the image's readers'.
	source := install.RedactURL(p.KickstartSource)
	src := filepath.Base(source)
	desc := fmt.Sprintf("%s image. Source: %s, GitRev: %s, ks sha256:%s, kscloud build %s", name, src, rev, p.KickstartSHA256, p.Build)
	out := [][2]string{
		{"DESCRIPTION", desc},
		{"KSCLOUD_KS_SHA256", p.KickstartSHA256},
		{"KSCLOUD_KS_SOURCE", source},
		{"KSCLOUD_GIT_REV", rev},
		{"KSCLOUD_KERNEL_SHA256", p.KernelSHA256},
		{"KSCLOUD_INITRD_SHA256", p.InitrdSHA256},
		// Not KSCLOUD_INSTALLER: that marks the catalog's own images.
		{"KSCLOUD_INSTALLER_NAME", p.Installer},
		{"KSCLOUD_VERSION", p.KscloudVersion},
		{"KSCLOUD_DATE", p.Date.UTC().Format(time.RFC3339)},
	}
	return out
}

func (w *Workflow) saveasStep() install.Step {
	return install.Step{
		Name: "save-image",
		Run: func(ctx context.Context, b *install.Build) error {
			inst, _ := b.Resource("installer")
			vn, err := parseID(inst.ID, preVM, "instance")
			if err != nil {
				return err
			}
			r, ok := b.Resource("image")
			name := ImageName(b)
			if !ok {
				n, err := w.P.c.callInt(ctx, "one.vm.disksaveas", vn, 0, name, "OS", -1)
				r = install.Resource{Kind: install.KindImage, ID: fmt.Sprintf("%s%d", preImage, n), Role: "image", Step: "save-image"}
				if err != nil {
					r.ID = ""
					err = fmt.Errorf("instance %s disk 0 into image %s: %w", inst.ID, name, err)
				}
				if err := b.RecordCreated(r, err); err != nil {
					return err
				}
				w.status(fmt.Sprintf("disk 0 of %s saving as image %s (%s)", inst.ID, r.ID, name))
			}
			n, _ := parseID(r.ID, preImage, "image")
			if b.Value("image.tagged") == "" {
				t := &tmpl{}
				t.single(kindAttr, "image")
				for _, kv := range Provenance(name, w.Provenance) {
					if kv[1] != "" {
						t.single(kv[0], kv[1])
					}
				}
				addTags(t, w.tags(b, "image"))
				if err := w.P.updateImage(ctx, n, t, true); err != nil {
					return fmt.Errorf("image %s: provenance: %w", r.ID, err)
				}
				b.SetValue("image.tagged", "yes")
				if err := b.Save(); err != nil {
					return err
				}
			}
			b.SetKeep(install.KindImage, r.ID)
			if _, err := w.waitVM(ctx, vn, "POWEROFF after the save", 2*time.Hour, func(v *vmInfo) (bool, error) {
				if err := failed(v); err != nil {
					return false, err
				}
				return v.State == stPoweroff, nil
			}); err != nil {
				return err
			}
			im, err := w.waitImage(ctx, n, "image "+r.ID, 2*time.Hour)
			if err != nil {
				return err
			}
			b.Result = &install.Result{ImageID: r.ID, ImageName: im.Name, Provenance: w.Provenance}
			if s := b.Value("install.seconds"); s != "" {
				fmt.Sscan(s, &b.Result.InstallSeconds)
			}
			if t, err := time.Parse(time.RFC3339Nano, b.Value("install.ended")); err == nil {
				b.Result.OverheadSeconds = time.Since(t).Seconds()
			}
			w.status(fmt.Sprintf("image %s ready (%s, %d MB)", r.ID, im.Name, im.Size))
			return nil
		},
		Cleanup: func(ctx context.Context, b *install.Build, failed bool) error {
			r, ok := b.Resource("image")
			if !ok || !failed || r.Deleted {
				return nil
			}
			// A failed build keeps no half-saved image. oned would delete
			// it while LOCKED too (ImageManager::delete_image abandons the
			// copy); waiting for the copy to end first leaves the VM's
			// saveas to finish in order.
			n, _ := parseID(r.ID, preImage, "image")
			w.waitImage(ctx, n, "image "+r.ID, 30*time.Minute)
			if err := w.P.DeregisterImage(ctx, r.ID); err != nil && !cloud.IsNotFound(err) {
				return err
			}
			b.MarkDeleted(r.Kind, r.ID)
			return nil
		},
	}
}

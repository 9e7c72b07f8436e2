// Package cloudtest is the conformance suite every cloud.Provider runs:
// the contract of package cloud (IDs returned before any wait, the
// not-found contract on every lookup and delete, tags visible as soon as a
// create returns, EC2's states and their order, incorrect-state errors),
// checked the same way for the EC2 provider against the test endpoint, for
// Eucalyptus, and for every other adapter.
//
//	func TestConformance(t *testing.T) {
//		cloudtest.Run(t, func(t *testing.T) cloud.Provider { return newProvider(t) }, cloudtest.Options{})
//	}
//
// Each subtest creates what it needs, tags it with a per-run build ID, and
// removes it at the end whether it passed or not.
package cloudtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
)

// Options say what the provider under test can do and how to reach it.
type Options struct {
	// SnapshotInUseDeletable: the provider lets the snapshot of a
	// registered image be deleted (EC2 and Eucalyptus refuse:
	// InvalidSnapshot.InUse → cloud.ErrIncorrectState).
	SnapshotInUseDeletable bool
	// Zone for volumes and instances ("" : the provider's default).
	Zone string
	// VolumeGiB is the size of test volumes (default 1).
	VolumeGiB int
	// Device is where the instance test attaches a volume (default /dev/sdf).
	Device string
	// InstanceType for the instance test ("" : the provider's default).
	InstanceType string
	// KernelID and RamdiskID make the test image paravirtual with that
	// kernel (an EKI/ERI on Eucalyptus); "" : an HVM image.
	KernelID, RamdiskID string
	// UserData for the test instance.
	UserData []byte
	// Waiter paces the waits (the zero Waiter: 1 s → 15 s backoff).
	Waiter wait.Waiter
	// Missing are well-formed IDs that name nothing (defaults: EC2 style).
	Missing MissingIDs
	// Timeout bounds each subtest (default 10 min).
	Timeout time.Duration
}

// MissingIDs are IDs of the provider's shape that do not exist.
type MissingIDs struct {
	Instance, Volume, Snapshot, Image string
}

func (o *Options) defaults() {
	if o.VolumeGiB <= 0 {
		o.VolumeGiB = 1
	}
	if o.Device == "" {
		o.Device = "/dev/sdf"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	m := &o.Missing
	if m.Instance == "" {
		m.Instance = "i-0badf00d"
	}
	if m.Volume == "" {
		m.Volume = "vol-0badf00d"
	}
	if m.Snapshot == "" {
		m.Snapshot = "snap-0badf00d"
	}
	if m.Image == "" {
		m.Image = "emi-0badf00d"
	}
}

// Run runs the suite; newProvider returns the provider to test (called
// once per subtest). What the interfaces leave open is checked against
// the provider's cloud.Capabilities.
func Run(t *testing.T, newProvider func(t *testing.T) cloud.Provider, opts Options) {
	opts.defaults()
	build := newBuild()
	t.Logf("cloudtest: build %s", build)
	c := &suite{opts: opts, build: build, newProvider: newProvider}
	t.Run("NotFound", c.notFound)
	t.Run("Volume", c.volume)
	t.Run("Tags", c.tags)
	t.Run("SnapshotImage", c.snapshotImage)
	t.Run("Instance", c.instance)
	t.Run("LaunchVolumes", c.launchVolumes)
}

type suite struct {
	opts        Options
	build       string
	newProvider func(t *testing.T) cloud.Provider
}

func newBuild() string {
	var b [6]byte
	rand.Read(b[:])
	return "ct-" + hex.EncodeToString(b[:])
}

func (c *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// tags returns the suite's tags for a resource of role.
func (c *suite) tagsFor(role string) cloud.Tags {
	return cloud.Tags{cloud.TagBuild: c.build, cloud.TagCreator: "kscloud", cloud.TagRole: role}
}

// recorder is a Waiter.Progress that keeps what it heard.
type recorder struct {
	mu     sync.Mutex
	states []string
}

func (r *recorder) progress(_, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, state)
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.states...)
}

func (c *suite) waiter(r *recorder) wait.Waiter {
	w := c.opts.Waiter
	if r != nil {
		w.Progress = r.progress
	}
	return w
}

// inOrder fails unless every observed state is in path and they appear in
// path's order (states may be skipped between polls, never reordered).
func inOrder(t *testing.T, what string, seen, path []string) {
	t.Helper()
	last := -1
	for _, s := range seen {
		i := slices.Index(path, s)
		if i < 0 {
			t.Errorf("%s: state %q is not one of %v (observed %v)", what, s, path, seen)
			return
		}
		if i < last {
			t.Errorf("%s: state %q after %q: observed %v, want the order %v", what, s, path[last], seen, path)
			return
		}
		last = i
	}
}

func wantNotFound(t *testing.T, what string, err error, id string) {
	t.Helper()
	if !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("%s: got %v, want an error wrapping cloud.ErrNotFound", what, err)
		return
	}
	if !strings.Contains(err.Error(), id) {
		t.Errorf("%s: error %q does not name %s", what, err, id)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error is not one line: %q", what, err)
	}
}

func wantIncorrectState(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, cloud.ErrIncorrectState) {
		t.Errorf("%s: got %v, want an error wrapping cloud.ErrIncorrectState", what, err)
	}
}

func subset(t *testing.T, what string, got, want cloud.Tags) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: tag %s = %q, want %q (tags %v)", what, k, got[k], v, got)
		}
	}
}

// cleanup registers a best-effort removal; "not found" counts as done.
func cleanup(t *testing.T, what string, fn func(ctx context.Context) error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := fn(ctx); err != nil && !cloud.IsNotFound(err) {
			t.Logf("cleanup %s: %v", what, err)
		}
	})
}

// notFound: every lookup and every delete of an ID that names nothing
// wraps cloud.ErrNotFound and names the ID.
func (c *suite) notFound(t *testing.T) {
	p := c.newProvider(t)
	ctx := c.ctx(t)
	m := c.opts.Missing
	_, err := p.Instance(ctx, m.Instance)
	wantNotFound(t, "Instance", err, m.Instance)
	wantNotFound(t, "TerminateInstance", p.TerminateInstance(ctx, m.Instance), m.Instance)
	_, err = p.ConsoleOutput(ctx, m.Instance)
	wantNotFound(t, "ConsoleOutput", err, m.Instance)
	if vp, ok := p.(cloud.VNCConsoles); ok {
		_, err = vp.VNCConsole(ctx, m.Instance)
		wantNotFound(t, "VNCConsole", err, m.Instance)
	}
	_, err = p.Volume(ctx, m.Volume)
	wantNotFound(t, "Volume", err, m.Volume)
	wantNotFound(t, "DeleteVolume", p.DeleteVolume(ctx, m.Volume), m.Volume)
	wantNotFound(t, "DetachVolume", p.DetachVolume(ctx, m.Volume), m.Volume)
	wantNotFound(t, "AttachVolume", p.AttachVolume(ctx, m.Volume, m.Instance, c.opts.Device), m.Volume)
	_, err = p.Snapshot(ctx, m.Snapshot)
	wantNotFound(t, "Snapshot", err, m.Snapshot)
	wantNotFound(t, "DeleteSnapshot", p.DeleteSnapshot(ctx, m.Snapshot), m.Snapshot)
	_, err = p.CreateSnapshot(ctx, m.Volume, "cloudtest", nil)
	wantNotFound(t, "CreateSnapshot of a missing volume", err, m.Volume)
	_, err = p.Image(ctx, m.Image)
	wantNotFound(t, "Image", err, m.Image)
	wantNotFound(t, "DeregisterImage", p.DeregisterImage(ctx, m.Image), m.Image)
	wantNotFound(t, "Tag", p.Tag(ctx, m.Volume, cloud.Tags{"k": "v"}), m.Volume)
	_, err = p.CreateVolume(ctx, cloud.VolumeSpec{SnapshotID: m.Snapshot, Zone: c.opts.Zone, Tags: c.tagsFor("target-volume")})
	wantNotFound(t, "CreateVolume from a missing snapshot", err, m.Snapshot)
}

// newVolume creates a volume, checks what the create returned, and
// removes it at the end.
func (c *suite) newVolume(t *testing.T, ctx context.Context, p cloud.Provider, role string) cloud.Volume {
	t.Helper()
	tags := c.tagsFor(role)
	v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: c.opts.VolumeGiB, Zone: c.opts.Zone, Tags: tags})
	if v.ID != "" {
		cleanup(t, "volume "+v.ID, func(ctx context.Context) error { return c.removeVolume(ctx, p, v.ID) })
	}
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	if v.ID == "" || (v.State != cloud.VolumeCreating && v.State != cloud.VolumeAvailable) {
		t.Fatalf("CreateVolume returned %+v: want an ID and state creating (or available)", v)
	}
	subset(t, "CreateVolume result", v.Tags, tags)
	return v
}

// removeVolume deletes a volume whatever its state: it waits out
// creating and detaches it first if needed.
func (c *suite) removeVolume(ctx context.Context, p cloud.Provider, id string) error {
	w := c.waiter(nil)
	v, err := w.Volume(ctx, p, id, cloud.VolumeAvailable, cloud.VolumeInUse, cloud.VolumeError, cloud.VolumeDeleted)
	if err != nil {
		return err
	}
	if v.State == cloud.VolumeDeleted {
		return nil
	}
	if v.Attachment != nil {
		if err := p.DetachVolume(ctx, id); err != nil && !errors.Is(err, cloud.ErrIncorrectState) {
			return err
		}
		if _, err := w.Attachment(ctx, p, id, "detached"); err != nil {
			return err
		}
	}
	return p.DeleteVolume(ctx, id)
}

// volume: create → creating → available, tags at once, FindTagged, Tag,
// delete → gone, delete again → not found.
func (c *suite) volume(t *testing.T) {
	p := c.newProvider(t)
	ctx := c.ctx(t)
	v := c.newVolume(t, ctx, p, "target-volume")

	got, err := p.Volume(ctx, v.ID)
	if err != nil {
		t.Fatalf("Volume right after create: %v", err)
	}
	subset(t, "Volume right after create", got.Tags, c.tagsFor("target-volume"))

	rec := &recorder{}
	got, err = c.waiter(rec).Volume(ctx, p, v.ID, cloud.VolumeAvailable)
	if err != nil {
		t.Fatal(err)
	}
	inOrder(t, "volume "+v.ID, rec.seen(), []string{cloud.VolumeCreating, cloud.VolumeAvailable})
	if got.State != cloud.VolumeAvailable || got.SizeGiB != c.opts.VolumeGiB || got.Attachment != nil {
		t.Errorf("available volume: %+v; want %d GiB, no attachment", got, c.opts.VolumeGiB)
	}

	found, err := p.FindTagged(ctx, cloud.TagBuild, c.build)
	if err != nil {
		t.Fatalf("FindTagged: %v", err)
	}
	r := findResource(found, v.ID)
	if r == nil || r.Kind != "volume" {
		t.Fatalf("FindTagged(%s=%s) = %+v: want volume %s among them", cloud.TagBuild, c.build, found, v.ID)
	}
	subset(t, "FindTagged", r.Tags, c.tagsFor("target-volume"))

	if err := p.Tag(ctx, v.ID, cloud.Tags{"cloudtest:extra": "yes"}); err != nil {
		t.Fatalf("Tag: %v", err)
	}
	got, err = p.Volume(ctx, v.ID)
	if err != nil || got.Tags["cloudtest:extra"] != "yes" {
		t.Errorf("after Tag: tags %v, %v", got.Tags, err)
	}
	subset(t, "after Tag", got.Tags, c.tagsFor("target-volume"))

	if err := p.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	rec = &recorder{}
	if _, err := c.waiter(rec).Volume(ctx, p, v.ID, cloud.VolumeDeleted); err != nil {
		t.Fatal(err)
	}
	inOrder(t, "deleting volume "+v.ID, rec.seen(), []string{cloud.VolumeAvailable, cloud.VolumeDeleting, cloud.VolumeDeleted})
	_, err = p.Volume(ctx, v.ID)
	wantNotFound(t, "Volume after delete", err, v.ID)
	wantNotFound(t, "DeleteVolume again", p.DeleteVolume(ctx, v.ID), v.ID)
}

func findResource(rs []cloud.Resource, id string) *cloud.Resource {
	for i := range rs {
		if strings.EqualFold(rs[i].ID, id) {
			return &rs[i]
		}
	}
	return nil
}

// tags: FindTagged by key alone and by key and value, and for nothing.
func (c *suite) tags(t *testing.T) {
	p := c.newProvider(t)
	ctx := c.ctx(t)
	a := c.newVolume(t, ctx, p, "target-volume")
	b := c.newVolume(t, ctx, p, "scratch")
	key := "cloudtest:tags-" + c.build
	if err := p.Tag(ctx, a.ID, cloud.Tags{key: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Tag(ctx, b.ID, cloud.Tags{key: "two"}); err != nil {
		t.Fatal(err)
	}
	byKey, err := p.FindTagged(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(byKey) != 2 || findResource(byKey, a.ID) == nil || findResource(byKey, b.ID) == nil {
		t.Errorf("FindTagged(%s, any) = %+v: want %s and %s", key, byKey, a.ID, b.ID)
	}
	one, err := p.FindTagged(ctx, key, "two")
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || !strings.EqualFold(one[0].ID, b.ID) || one[0].Tags[cloud.TagRole] != "scratch" {
		t.Errorf("FindTagged(%s, two) = %+v: want only %s with all its tags", key, one, b.ID)
	}
	none, err := p.FindTagged(ctx, key, "three")
	if err != nil || len(none) != 0 {
		t.Errorf("FindTagged(%s, three) = %+v, %v: want nothing", key, none, err)
	}
}

// snapshotImage: snapshot progress to 100 % and completed, register an
// image from it, find it, in-use snapshot, deregister, delete.
func (c *suite) snapshotImage(t *testing.T) {
	p := c.newProvider(t)
	ctx := c.ctx(t)
	v := c.newVolume(t, ctx, p, "target-volume")
	if _, err := c.waiter(nil).Volume(ctx, p, v.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	snap, img := c.newImage(t, ctx, p, v.ID)

	imgs, err := p.Images(ctx, cloud.Tags{cloud.TagBuild: c.build, cloud.TagRole: "image"})
	if err != nil {
		t.Fatalf("Images: %v", err)
	}
	if len(imgs) != 1 || !strings.EqualFold(imgs[0].ID, img.ID) || imgs[0].SnapshotID != snap.ID {
		t.Errorf("Images(build, role=image) = %+v: want only %s from %s", imgs, img.ID, snap.ID)
	}
	other, err := p.Images(ctx, cloud.Tags{cloud.TagBuild: c.build + "-other"})
	if err != nil || len(other) != 0 {
		t.Errorf("Images(another build) = %+v, %v: want none", other, err)
	}
	found, err := p.FindTagged(ctx, cloud.TagBuild, c.build)
	if err != nil {
		t.Fatal(err)
	}
	if r := findResource(found, snap.ID); r == nil || r.Kind != "snapshot" {
		t.Errorf("FindTagged: no snapshot %s in %+v", snap.ID, found)
	}
	if r := findResource(found, img.ID); r == nil || r.Kind != "image" {
		t.Errorf("FindTagged: no image %s in %+v", img.ID, found)
	}

	if !c.opts.SnapshotInUseDeletable {
		wantIncorrectState(t, "DeleteSnapshot of a registered image's snapshot", p.DeleteSnapshot(ctx, snap.ID))
	}

	if err := p.DeregisterImage(ctx, img.ID); err != nil {
		t.Fatalf("DeregisterImage: %v", err)
	}
	_, err = p.Image(ctx, img.ID)
	wantNotFound(t, "Image after deregister", err, img.ID)
	wantNotFound(t, "DeregisterImage again", p.DeregisterImage(ctx, img.ID), img.ID)
	if err := p.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	_, err = p.Snapshot(ctx, snap.ID)
	wantNotFound(t, "Snapshot after delete", err, snap.ID)
	wantNotFound(t, "DeleteSnapshot again", p.DeleteSnapshot(ctx, snap.ID), snap.ID)
}

// newImage snapshots volumeID, waits for the snapshot (progress rising to
// 100), registers an image from it and waits for that; both are removed at
// the end.
func (c *suite) newImage(t *testing.T, ctx context.Context, p cloud.Provider, volumeID string) (cloud.Snapshot, cloud.Image) {
	t.Helper()
	stags := c.tagsFor("snapshot")
	snap, err := p.CreateSnapshot(ctx, volumeID, "cloudtest "+c.build, stags)
	if snap.ID != "" {
		cleanup(t, "snapshot "+snap.ID, func(ctx context.Context) error { return p.DeleteSnapshot(ctx, snap.ID) })
	}
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if snap.ID == "" || snap.State != cloud.SnapshotPending && snap.State != cloud.SnapshotCompleted || !strings.EqualFold(snap.VolumeID, volumeID) {
		t.Fatalf("CreateSnapshot returned %+v: want an ID, state pending, volume %s", snap, volumeID)
	}
	subset(t, "CreateSnapshot result", snap.Tags, stags)
	got, err := p.Snapshot(ctx, snap.ID)
	if err != nil {
		t.Fatalf("Snapshot right after create: %v", err)
	}
	subset(t, "Snapshot right after create", got.Tags, stags)

	// Progress: never falls, reaches 100 with completed.
	rec := &recorder{}
	got, err = c.waiter(rec).Snapshot(ctx, p, snap.ID, cloud.SnapshotCompleted)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != cloud.SnapshotCompleted || got.Progress != 100 {
		t.Errorf("completed snapshot: %+v: want progress 100", got)
	}
	prev := -1
	for _, s := range rec.seen() {
		var state string
		var pct int
		if _, err := fmt.Sscanf(s, "%s %d%%", &state, &pct); err != nil {
			t.Errorf("progress report %q: %v", s, err)
			continue
		}
		if pct < prev || pct < 0 || pct > 100 || state == cloud.SnapshotCompleted && pct != 100 {
			t.Errorf("snapshot progress %v: falls, leaves 0–100, or completes below 100", rec.seen())
			break
		}
		prev = pct
	}
	t.Logf("snapshot %s progress: %v", snap.ID, rec.seen())

	itags := c.tagsFor("image")
	spec := cloud.ImageSpec{
		Name: "cloudtest-" + c.build + "-" + strings.ToLower(snap.ID), Description: "kscloud conformance",
		SnapshotID: snap.ID, RootDevice: "/dev/sda1", Architecture: "x86_64",
		KernelID: c.opts.KernelID, RamdiskID: c.opts.RamdiskID,
		Ephemeral: map[string]string{"ephemeral0": "/dev/sdb"}, Tags: itags,
	}
	if c.opts.KernelID != "" {
		spec.Virtualization = "paravirtual"
	}
	img, err := p.RegisterImage(ctx, spec)
	if img.ID != "" {
		cleanup(t, "image "+img.ID, func(ctx context.Context) error { return p.DeregisterImage(ctx, img.ID) })
	}
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	if img.ID == "" {
		t.Fatalf("RegisterImage returned %+v: want an ID", img)
	}
	subset(t, "RegisterImage result", img.Tags, itags)
	rec = &recorder{}
	gotImg, err := c.waiter(rec).Image(ctx, p, img.ID, cloud.ImageAvailable)
	if err != nil {
		t.Fatal(err)
	}
	inOrder(t, "image "+img.ID, rec.seen(), []string{cloud.ImagePending, cloud.ImageAvailable})
	if gotImg.Name != spec.Name || gotImg.SnapshotID != snap.ID || gotImg.Description != spec.Description {
		t.Errorf("image: %+v: want name %s, snapshot %s", gotImg, spec.Name, snap.ID)
	}
	subset(t, "Image", gotImg.Tags, itags)
	return got, gotImg
}

// instance: run from an image registered from a snapshot, tags at once,
// pending → running, console output, attach → in-use, incorrect states,
// detach, terminate → shutting-down → terminated.
func (c *suite) instance(t *testing.T) {
	p := c.newProvider(t)
	ctx := c.ctx(t)
	root := c.newVolume(t, ctx, p, "target-volume")
	if _, err := c.waiter(nil).Volume(ctx, p, root.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	_, img := c.newImage(t, ctx, p, root.ID)

	itags := c.tagsFor("instance")
	inst, err := p.RunInstance(ctx, cloud.InstanceSpec{
		Name: "cloudtest-" + c.build, ImageID: img.ID, KernelID: c.opts.KernelID, RamdiskID: c.opts.RamdiskID,
		Type: c.opts.InstanceType, UserData: c.opts.UserData, Zone: c.opts.Zone,
		InstanceInitiatedShutdown: "terminate", Tags: itags,
	})
	if inst.ID != "" {
		cleanup(t, "instance "+inst.ID, func(ctx context.Context) error {
			if err := p.TerminateInstance(ctx, inst.ID); err != nil {
				return err
			}
			_, err := c.waiter(nil).Instance(ctx, p, inst.ID, cloud.InstanceTerminated)
			return err
		})
	}
	if err != nil {
		t.Fatalf("RunInstance: %v", err)
	}
	if inst.ID == "" || inst.State != cloud.InstancePending && inst.State != cloud.InstanceRunning {
		t.Fatalf("RunInstance returned %+v: want an ID and state pending", inst)
	}
	subset(t, "RunInstance result", inst.Tags, itags)
	got, err := p.Instance(ctx, inst.ID)
	if err != nil {
		t.Fatalf("Instance right after run: %v", err)
	}
	subset(t, "Instance right after run", got.Tags, itags)

	rec := &recorder{}
	got, err = c.waiter(rec).Instance(ctx, p, inst.ID, cloud.InstanceRunning)
	if err != nil {
		t.Fatal(err)
	}
	inOrder(t, "instance "+inst.ID, rec.seen(), []string{cloud.InstancePending, cloud.InstanceRunning})
	if !strings.EqualFold(got.ImageID, img.ID) || got.Launched.IsZero() || got.StateReason != "" {
		t.Errorf("running instance: %+v: want image %s, a launch time, no state reason", got, img.ID)
	}
	if _, err := p.ConsoleOutput(ctx, inst.ID); err != nil {
		t.Errorf("ConsoleOutput of a running instance: %v", err)
	}
	if vp, ok := p.(cloud.VNCConsoles); ok {
		// Launched without VNC: none, said in one line naming the instance.
		_, err := vp.VNCConsole(ctx, inst.ID)
		if !errors.Is(err, cloud.ErrNoVNC) || !strings.Contains(err.Error(), inst.ID) || strings.Contains(err.Error(), "\n") {
			t.Errorf("VNCConsole of an instance launched without one: %v: want one line naming %s, wrapping cloud.ErrNoVNC", err, inst.ID)
		}
	}
	found, err := p.FindTagged(ctx, cloud.TagRole, "instance")
	if err != nil {
		t.Fatal(err)
	}
	if r := findResource(found, inst.ID); r == nil || r.Kind != "instance" || r.Tags[cloud.TagBuild] != c.build {
		t.Errorf("FindTagged(role=instance): no instance %s with this build in %+v", inst.ID, found)
	}

	// Attach a data volume.
	data := c.newVolume(t, ctx, p, "scratch")
	if _, err := c.waiter(nil).Volume(ctx, p, data.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	if err := p.AttachVolume(ctx, data.ID, inst.ID, c.opts.Device); err != nil {
		t.Fatalf("AttachVolume: %v", err)
	}
	rec = &recorder{}
	vol, err := c.waiter(rec).Attachment(ctx, p, data.ID, "attached")
	if err != nil {
		t.Fatal(err)
	}
	inOrder(t, "attachment of "+data.ID, rec.seen(), []string{"detached", "attaching", "attached"})
	if vol.State != cloud.VolumeInUse || vol.Attachment == nil || !strings.EqualFold(vol.InstanceID, inst.ID) || vol.Attachment.Device != c.opts.Device {
		t.Errorf("attached volume: %+v (attachment %+v): want in-use on %s at %s", vol, vol.Attachment, inst.ID, c.opts.Device)
	}
	got, err = p.Instance(ctx, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got.Volumes, func(a cloud.Attachment) bool { return strings.EqualFold(a.VolumeID, data.ID) }) {
		t.Errorf("instance volumes %+v: want %s", got.Volumes, data.ID)
	}

	// Incorrect states.
	wantIncorrectState(t, "DeleteVolume of an attached volume", p.DeleteVolume(ctx, data.ID))
	wantIncorrectState(t, "AttachVolume of an attached volume", p.AttachVolume(ctx, data.ID, inst.ID, "/dev/sdg"))

	if err := p.DetachVolume(ctx, data.ID); err != nil {
		t.Fatalf("DetachVolume: %v", err)
	}
	rec = &recorder{}
	vol, err = c.waiter(rec).Attachment(ctx, p, data.ID, "detached")
	if err != nil {
		t.Fatal(err)
	}
	inOrder(t, "detachment of "+data.ID, rec.seen(), []string{"attached", "detaching", "detached"})
	if vol.State != cloud.VolumeAvailable {
		t.Errorf("detached volume is %s, want available", vol.State)
	}
	wantIncorrectState(t, "DetachVolume of a detached volume", p.DetachVolume(ctx, data.ID))

	// Terminate.
	if err := p.TerminateInstance(ctx, inst.ID); err != nil {
		t.Fatalf("TerminateInstance: %v", err)
	}
	rec = &recorder{}
	if _, err := c.waiter(rec).Instance(ctx, p, inst.ID, cloud.InstanceTerminated); err != nil {
		t.Fatal(err)
	}
	inOrder(t, "terminating instance "+inst.ID, rec.seen(), []string{cloud.InstanceRunning, cloud.InstanceShuttingDown, cloud.InstanceTerminated})
	if err := p.TerminateInstance(ctx, inst.ID); err != nil && !cloud.IsNotFound(err) {
		t.Errorf("TerminateInstance again: %v: want nil (still listed) or not found", err)
	}
	if err := p.AttachVolume(ctx, data.ID, inst.ID, c.opts.Device); !errors.Is(err, cloud.ErrIncorrectState) && !cloud.IsNotFound(err) {
		t.Errorf("AttachVolume to a terminated instance: %v: want incorrect state (or not found once gone)", err)
	}
	if err := p.DeleteVolume(ctx, data.ID); err != nil {
		t.Errorf("DeleteVolume of the detached volume: %v", err)
	}
}

// launchVolumes: block-device mappings that create volumes at launch (a
// size and no volume ID), one kept after the instance (DeleteOnTermination
// false), one not: their real IDs are in Instance.Volumes at the devices
// asked for, they are in-use on the instance, and terminating it deletes
// the one and frees the other. An existing volume at launch is attached
// where cloud.Capabilities.AttachExistingAtLaunch says so, and refused
// (nothing launched) where it does not.
func (c *suite) launchVolumes(t *testing.T) {
	p := c.newProvider(t)
	ctx := c.ctx(t)
	caps := cloud.CapabilitiesOf(p)
	root := c.newVolume(t, ctx, p, "target-volume")
	if _, err := c.waiter(nil).Volume(ctx, p, root.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	_, img := c.newImage(t, ctx, p, root.ID)
	existing := c.newVolume(t, ctx, p, "scratch")
	if _, err := c.waiter(nil).Volume(ctx, p, existing.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}

	keepDev, dropDev, existingDev := "/dev/sdb", "/dev/sdc", "/dev/sdd"
	spec := cloud.InstanceSpec{
		Name: "cloudtest-bdm-" + c.build, ImageID: img.ID, KernelID: c.opts.KernelID, RamdiskID: c.opts.RamdiskID,
		Type: c.opts.InstanceType, UserData: c.opts.UserData, Zone: c.opts.Zone,
		InstanceInitiatedShutdown: "terminate", Tags: c.tagsFor("instance"),
		Volumes: []cloud.Attachment{
			{Device: keepDev, SizeGiB: c.opts.VolumeGiB, DeleteOnTermination: cloud.Bool(false)},
			{Device: dropDev, SizeGiB: c.opts.VolumeGiB, DeleteOnTermination: cloud.Bool(true)},
		},
	}
	if !caps.AttachExistingAtLaunch {
		with := spec
		with.Volumes = append(append([]cloud.Attachment(nil), spec.Volumes...), cloud.Attachment{VolumeID: existing.ID, Device: existingDev})
		inst, err := p.RunInstance(ctx, with)
		if err == nil || inst.ID != "" {
			if inst.ID != "" {
				p.TerminateInstance(context.WithoutCancel(ctx), inst.ID)
			}
			t.Fatalf("RunInstance with existing volume %s at launch: %+v, %v: want an error and no instance (Capabilities.AttachExistingAtLaunch is false)", existing.ID, inst, err)
		}
	} else {
		spec.Volumes = append(spec.Volumes, cloud.Attachment{VolumeID: existing.ID, Device: existingDev})
	}
	inst, err := p.RunInstance(ctx, spec)
	if inst.ID != "" {
		cleanup(t, "instance "+inst.ID, func(ctx context.Context) error {
			if err := p.TerminateInstance(ctx, inst.ID); err != nil {
				return err
			}
			_, err := c.waiter(nil).Instance(ctx, p, inst.ID, cloud.InstanceTerminated)
			return err
		})
	}
	if err != nil {
		t.Fatalf("RunInstance with block-device mappings: %v", err)
	}
	// The created volumes' IDs: in the answer, or soon in a describe.
	byDev := map[string]cloud.Attachment{}
	got, err := wait.For(ctx, c.waiter(nil), "instance "+inst.ID+" block devices", func(ctx context.Context) (cloud.Instance, string, error) {
		in, err := p.Instance(ctx, inst.ID)
		if err != nil {
			return in, "", err
		}
		n := 0
		for _, a := range in.Volumes {
			if a.Device == keepDev || a.Device == dropDev {
				n++
			}
		}
		if n == 2 {
			return in, "listed", nil
		}
		return in, "not listed", nil
	}, "listed")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range got.Volumes {
		byDev[a.Device] = a
	}
	keep, drop := byDev[keepDev], byDev[dropDev]
	for _, a := range []cloud.Attachment{keep, drop} {
		if !strings.HasPrefix(a.VolumeID, "vol-") {
			t.Fatalf("instance volumes %+v: want real volume IDs at %s and %s", got.Volumes, keepDev, dropDev)
		}
		a := a
		cleanup(t, "volume "+a.VolumeID, func(ctx context.Context) error { return c.removeVolume(ctx, p, a.VolumeID) })
	}
	if keep.DeleteOnTermination != nil && *keep.DeleteOnTermination || drop.DeleteOnTermination != nil && !*drop.DeleteOnTermination {
		t.Errorf("instance volumes %+v: DeleteOnTermination not as asked (false at %s, true at %s)", got.Volumes, keepDev, dropDev)
	}
	if caps.AttachExistingAtLaunch {
		if e, ok := byDev[existingDev]; !ok || !strings.EqualFold(e.VolumeID, existing.ID) {
			t.Errorf("instance volumes %+v: want %s at %s", got.Volumes, existing.ID, existingDev)
		}
	}
	if _, err := c.waiter(nil).Instance(ctx, p, inst.ID, cloud.InstanceRunning); err != nil {
		t.Fatal(err)
	}
	for dev, a := range map[string]cloud.Attachment{keepDev: keep, dropDev: drop} {
		v, err := c.waiter(nil).Attachment(ctx, p, a.VolumeID, "attached")
		if err != nil {
			t.Fatal(err)
		}
		if v.State != cloud.VolumeInUse || !strings.EqualFold(v.InstanceID, inst.ID) || v.SizeGiB != c.opts.VolumeGiB || v.Attachment == nil || v.Attachment.Device != dev {
			t.Errorf("volume %s created at launch: %+v (attachment %+v): want %d GiB in-use on %s at %s", a.VolumeID, v, v.Attachment, c.opts.VolumeGiB, inst.ID, dev)
		}
	}

	if err := p.TerminateInstance(ctx, inst.ID); err != nil {
		t.Fatalf("TerminateInstance: %v", err)
	}
	if _, err := c.waiter(nil).Instance(ctx, p, inst.ID, cloud.InstanceTerminated); err != nil {
		t.Fatal(err)
	}
	if v, err := c.waiter(nil).Volume(ctx, p, keep.VolumeID, cloud.VolumeAvailable); err != nil || v.Attachment != nil {
		t.Errorf("volume %s (DeleteOnTermination false) after terminate: %+v, %v: want available, detached", keep.VolumeID, v, err)
	}
	if _, err := c.waiter(nil).Volume(ctx, p, drop.VolumeID, cloud.VolumeDeleted); err != nil {
		t.Errorf("volume %s (DeleteOnTermination true) after terminate: %v", drop.VolumeID, err)
	}
	if caps.AttachExistingAtLaunch {
		if v, err := c.waiter(nil).Volume(ctx, p, existing.ID, cloud.VolumeAvailable); err != nil {
			t.Errorf("existing volume %s after terminate: %+v, %v: want it available, not deleted", existing.ID, v, err)
		}
	}
}

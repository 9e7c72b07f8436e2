package ec2_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudec2 "github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// bakeRig is kscloud's bake workflow (internal/install) on the EC2
// provider against the endpoint in plain mode: no guest boots, the test
// plays the installer's power-off with PowerOff.
type bakeRig struct {
	srv   *ec2endpoint.Server
	p     *cloudec2.Provider
	store *install.Store
	emi   string

	mu       sync.Mutex
	lines    []string
	launched chan string
	onStatus func(line string)
}

func newBakeRig(t *testing.T, d ec2endpoint.Delays) *bakeRig {
	t.Helper()
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &d})
	p := newProvider(t, srv, cloudec2.SignatureV4)
	ctx := context.Background()
	// An installer EMI with a blank EBS root.
	v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWaiter.Volume(ctx, p, v.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	snap, err := p.CreateSnapshot(ctx, v.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWaiter.Snapshot(ctx, p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	img, err := p.RegisterImage(ctx, cloud.ImageSpec{Name: "installer", SnapshotID: snap.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWaiter.Image(ctx, p, img.ID, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	store, err := install.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &bakeRig{srv: srv, p: p, store: store, emi: img.ID, launched: make(chan string, 4)}
}

func (r *bakeRig) workflow() *install.Workflow {
	return &install.Workflow{P: r.p, UserData: []byte("bootparams=inst.ks=file:/ks.cfg\n"), TargetDevice: "/dev/sdb",
		ConsolePoll: 50 * time.Millisecond, ConsolePollMax: 200 * time.Millisecond,
		Status: func(l string) {
			r.mu.Lock()
			r.lines = append(r.lines, l)
			on := r.onStatus
			r.mu.Unlock()
			if f := strings.Fields(l); len(f) == 3 && f[0] == "instance" && f[2] == "launched" {
				r.launched <- f[1]
			}
			if on != nil {
				on(l)
			}
		}}
}

func (r *bakeRig) newBuild() *install.Build {
	return install.NewBuild("bake", "ec2", install.Spec{Name: "wf", ImageID: r.emi, DiskGiB: 2,
		Timeout: install.Duration{Duration: 10 * time.Minute}, RootDevice: "/dev/sda1", Architecture: "x86_64", Virtualization: "hvm"})
}

// powerOff plays the installer: once the instance runs, it powers off.
func (r *bakeRig) powerOff(t *testing.T, id string) {
	t.Helper()
	if _, err := fastWaiter.Instance(context.Background(), r.p, id, cloud.InstanceRunning); err != nil {
		t.Error(err)
		return
	}
	if err := r.srv.PowerOff(id); err != nil {
		t.Error(err)
	}
}

// volumes lists the volumes the endpoint holds (the rig's tests leave none).
func (r *bakeRig) volumes(t *testing.T) []string {
	t.Helper()
	out, err := r.p.Client().DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range out.Volumes {
		if v.State != "deleting" { // deleted, on its way out
			ids = append(ids, *v.VolumeId+" "+string(v.State))
		}
	}
	return ids
}

// TestBakeWorkflow: the bake creates its target volume with the
// installer's launch (a block-device mapping, DeleteOnTermination false),
// records it as the launch step's before following the install, and ends
// with a snapshot of it and an image; installer and volume are gone.
func TestBakeWorkflow(t *testing.T) {
	r := newBakeRig(t, ec2endpoint.DefaultDelays)
	b := r.newBuild()
	go func() { r.powerOff(t, <-r.launched) }()
	eng := &install.Engine{Provider: r.p, Store: r.store}
	if err := eng.Run(context.Background(), b, r.workflow().BakeSteps()); err != nil {
		t.Fatal(err)
	}
	if b.Result == nil || !strings.HasPrefix(b.Result.ImageID, "emi-") {
		t.Fatalf("result %+v", b.Result)
	}
	var roles []string
	for _, res := range b.Resources {
		roles = append(roles, res.Role)
		if res.Role == "target" && (res.Step != "launch-installer" || !res.Deleted) {
			t.Errorf("target %+v: want it recorded by launch-installer and removed", res)
		}
	}
	if got := strings.Join(roles, " "); got != "installer target snapshot image" {
		t.Errorf("recorded roles %q", got)
	}
	im, err := r.p.Image(context.Background(), b.Result.ImageID)
	if err != nil || im.State != cloud.ImageAvailable {
		t.Fatalf("image %+v, %v: want available when the bake returns", im, err)
	}
	snap, err := r.p.Snapshot(context.Background(), im.SnapshotID)
	if err != nil || snap.Tags[cloud.TagBuild] != b.ID {
		t.Errorf("snapshot %+v, %v: want it tagged with the build", snap, err)
	}
	if v := r.volumes(t); len(v) != 0 {
		t.Errorf("volumes left: %v", v)
	}
	if n := r.srv.Count("DetachVolume"); n != 1 {
		t.Errorf("%d DetachVolume: the stopped installer's target should be detached once", n)
	}
}

// TestBakeWorkflowInstanceStore: with an instance-store installer EMI
// (seed 001's fake EMI, no EBS root) the guest's power-off terminates the
// installer (EC2 refuses the "stop" behaviour there, so the bake asks for
// none); the target volume outlives it (DeleteOnTermination false) and is
// snapshotted without a detach.
func TestBakeWorkflowInstanceStore(t *testing.T) {
	r := newBakeRig(t, ec2endpoint.DefaultDelays)
	ctx := context.Background()
	out, err := r.p.Client().RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("fake-emi"), ImageLocation: aws.String("f16/fake-emi.img.manifest.xml")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWaiter.Image(ctx, r.p, *out.ImageId, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	r.emi = *out.ImageId
	b := r.newBuild()
	ids := make(chan string, 1)
	go func() {
		id := <-r.launched
		ids <- id
		r.powerOff(t, id)
	}()
	eng := &install.Engine{Provider: r.p, Store: r.store}
	if err := eng.Run(ctx, b, r.workflow().BakeSteps()); err != nil {
		t.Fatal(err)
	}
	id := <-ids
	if b.Result == nil || !strings.HasPrefix(b.Result.ImageID, "emi-") {
		t.Fatalf("result %+v", b.Result)
	}
	if n := r.srv.Count("DetachVolume"); n != 0 {
		t.Errorf("%d DetachVolume: the terminated installer left its target free", n)
	}
	if v := r.volumes(t); len(v) != 0 {
		t.Errorf("volumes left: %v", v)
	}
	inst, err := r.p.Instance(ctx, id)
	if err != nil || inst.State != cloud.InstanceTerminated || !strings.Contains(inst.StateReason, "InstanceInitiatedShutdown") {
		t.Errorf("installer %+v, %v: want terminated by its power-off", inst, err)
	}
}

// TestBakeResume: what kscloud bake --resume does after a SIGKILL (no
// cleanup ran: KeepOnError plays it): a snapshot still pending is waited
// for, not retaken; an installer that already stopped is not relaunched;
// a target volume recorded with the launch is reused.
func TestBakeResume(t *testing.T) {
	t.Run("snapshot-pending", func(t *testing.T) {
		d := ec2endpoint.DefaultDelays
		d.SnapshotStep, d.SnapshotSteps = 200*time.Millisecond, 20
		r := newBakeRig(t, d)
		b := r.newBuild()
		go func() { r.powerOff(t, <-r.launched) }()
		ctx, cancel := context.WithCancel(context.Background())
		r.onStatus = func(l string) {
			if strings.HasPrefix(l, "snapshot snap-") {
				cancel()
			}
		}
		kill := &install.Engine{Provider: r.p, Store: r.store, KeepOnError: true}
		if err := kill.Run(ctx, b, r.workflow().BakeSteps()); !errors.Is(err, install.ErrInterrupted) {
			t.Fatalf("first run: %v, want interrupted", err)
		}
		r.onStatus = nil
		snapRes, ok := b.Resource("snapshot")
		if !ok {
			t.Fatalf("no snapshot recorded: %s", b.ResourceSummary())
		}
		if s, err := r.p.Snapshot(context.Background(), snapRes.ID); err != nil || s.State != cloud.SnapshotPending {
			t.Fatalf("snapshot at the interruption: %+v, %v: want pending", s, err)
		}
		resumed, err := r.store.Load(b.ID)
		if err != nil {
			t.Fatal(err)
		}
		eng := &install.Engine{Provider: r.p, Store: r.store}
		if err := eng.Run(context.Background(), resumed, r.workflow().BakeSteps()); err != nil {
			t.Fatal(err)
		}
		im, err := r.p.Image(context.Background(), resumed.Result.ImageID)
		if err != nil || im.SnapshotID != snapRes.ID {
			t.Errorf("image %+v, %v: want it from the snapshot taken before the interruption", im, err)
		}
		if n, m := r.srv.Count("CreateSnapshot"), r.srv.Count("RunInstances"); n != 2 || m != 1 {
			t.Errorf("%d CreateSnapshot (one for the installer EMI) and %d RunInstances: want 2 and 1", n, m)
		}
		if v := r.volumes(t); len(v) != 0 {
			t.Errorf("volumes left: %v", v)
		}
	})
	t.Run("installer-stopped", func(t *testing.T) {
		r := newBakeRig(t, ec2endpoint.DefaultDelays)
		b := r.newBuild()
		ctx, cancel := context.WithCancel(context.Background())
		var id string
		go func() {
			id = <-r.launched
			cancel() // killed right after RunInstances answered
		}()
		kill := &install.Engine{Provider: r.p, Store: r.store, KeepOnError: true}
		kill.Run(ctx, b, r.workflow().BakeSteps())
		resumed, err := r.store.Load(b.ID)
		if err != nil {
			t.Fatal(err)
		}
		inst, ok := resumed.Resource("installer")
		if !ok || inst.ID != id {
			t.Fatalf("installer %s not recorded at once: %s", id, resumed.ResourceSummary())
		}
		// Meanwhile the install ran to its end: the instance is stopped.
		r.powerOff(t, id)
		if _, err := fastWaiter.Instance(context.Background(), r.p, id, cloud.InstanceStopped); err != nil {
			t.Fatal(err)
		}
		eng := &install.Engine{Provider: r.p, Store: r.store}
		if err := eng.Run(context.Background(), resumed, r.workflow().BakeSteps()); err != nil {
			t.Fatal(err)
		}
		if n := r.srv.Count("RunInstances"); n != 1 {
			t.Errorf("%d RunInstances: the stopped installer was launched again", n)
		}
		if resumed.Result == nil || resumed.Result.ImageID == "" {
			t.Errorf("resumed bake: no image: %+v", resumed.Result)
		}
		if v := r.volumes(t); len(v) != 0 {
			t.Errorf("volumes left: %v", v)
		}
	})
}

// TestSweepAdoptsTarget: a bake killed after RunInstances answered but
// before it recorded the target volume: kscloud cleanup (Engine.Sweep)
// finds the volume on the installer and removes it with the instance.
func TestSweepAdoptsTarget(t *testing.T) {
	r := newBakeRig(t, ec2endpoint.DefaultDelays)
	b := r.newBuild()
	ctx := context.Background()
	// What the launch step had saved before the kill: the device, the instance.
	b.SetValue("target.device", "/dev/sdb")
	inst, err := r.p.RunInstance(ctx, cloud.InstanceSpec{ImageID: r.emi,
		Volumes: []cloud.Attachment{{Device: "/dev/sdb", SizeGiB: 1, DeleteOnTermination: cloud.Bool(false)}}})
	if err != nil {
		t.Fatal(err)
	}
	b.Record(install.Resource{Kind: install.KindInstance, ID: inst.ID, Role: "installer", Step: "launch-installer"})
	if err := r.store.Save(b); err != nil {
		t.Fatal(err)
	}
	if _, err := fastWaiter.Instance(ctx, r.p, inst.ID, cloud.InstanceRunning); err != nil {
		t.Fatal(err)
	}
	eng := &install.Engine{Provider: r.p, Store: r.store}
	if err := eng.Sweep(ctx, b); err != nil {
		t.Fatal(err)
	}
	if tr, ok := b.Resource("target"); ok || len(b.Resources) != 2 || b.Resources[1].Role != "target" || !b.Resources[1].Deleted {
		t.Errorf("after the sweep: live target %v %+v; resources %+v", ok, tr, b.Resources)
	}
	if v := r.volumes(t); len(v) != 0 {
		t.Errorf("volumes left: %v", v)
	}
	if b.Status != install.StatusCleaned {
		t.Errorf("status %s", b.Status)
	}
}

// TestBakeWorkflowParavirtual: a paravirtual image is registered with the
// kernel the spec names for the image (a pv-grub EKI), never with the
// installer's kernel and ramdisk, which would boot the installer again.
func TestBakeWorkflowParavirtual(t *testing.T) {
	r := newBakeRig(t, ec2endpoint.DefaultDelays)
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(name), 0o644)
		return p
	}
	installerEKI, err := r.srv.AddKernel(file("installer-vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	installerERI, err := r.srv.AddRamdisk(file("installer-initrd"))
	if err != nil {
		t.Fatal(err)
	}
	pvGrub, err := r.srv.AddKernel(file("pv-grub"))
	if err != nil {
		t.Fatal(err)
	}
	b := r.newBuild()
	b.Spec.Virtualization, b.Spec.ImageKernel = "paravirtual", pvGrub
	wf := r.workflow()
	wf.Kernel, wf.Ramdisk = installerEKI, installerERI
	go func() { r.powerOff(t, <-r.launched) }()
	eng := &install.Engine{Provider: r.p, Store: r.store}
	if err := eng.Run(context.Background(), b, wf.BakeSteps()); err != nil {
		t.Fatal(err)
	}
	out, err := r.p.Client().DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{b.Result.ImageID}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("describe %s: %v", b.Result.ImageID, err)
	}
	im := out.Images[0]
	if k, rd := aws.ToString(im.KernelId), aws.ToString(im.RamdiskId); k != pvGrub || rd != "" || im.VirtualizationType != "paravirtual" {
		t.Errorf("image kernel %q ramdisk %q virtualization %q: want %s, none, paravirtual (installer: %s/%s)", k, rd, im.VirtualizationType, pvGrub, installerEKI, installerERI)
	}
}

// TestBakeWorkflowEventualConsistency: right after CreateSnapshot and
// RegisterImage EC2 may not know the new id for a few seconds
// (InvalidSnapshot.NotFound, InvalidAMIID.NotFound); the bake waits
// instead of failing and throwing its results away.
func TestBakeWorkflowEventualConsistency(t *testing.T) {
	d := ec2endpoint.DefaultDelays
	d.Invisible = 2 * time.Second
	r := newBakeRig(t, d)
	r.srv.ResetCounts()
	b := r.newBuild()
	go func() { r.powerOff(t, <-r.launched) }()
	eng := &install.Engine{Provider: r.p, Store: r.store}
	if err := eng.Run(context.Background(), b, r.workflow().BakeSteps()); err != nil {
		t.Fatal(err)
	}
	im, err := r.p.Image(context.Background(), b.Result.ImageID)
	if err != nil || im.State != cloud.ImageAvailable {
		t.Fatalf("image %+v, %v", im, err)
	}
	if n := r.srv.Count("CreateSnapshot") + r.srv.Count("RegisterImage"); n != 2 {
		t.Errorf("%d CreateSnapshot+RegisterImage: want one each (CreateSnapshot %d, RegisterImage %d, CreateTags %d)", n, r.srv.Count("CreateSnapshot"), r.srv.Count("RegisterImage"), r.srv.Count("CreateTags"))
	}
}

package ec2_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// TestRetries: the SDK retries throttling and server errors; with SigV2
// every attempt is signed afresh (a new Timestamp, so no replay) over the
// original body.
func TestRetries(t *testing.T) {
	for _, sig := range []string{ec2.SignatureV4, ec2.SignatureV2} {
		t.Run(sig, func(t *testing.T) {
			srv := ec2endpoint.Start(t, ec2endpoint.Options{})
			p := newProvider(t, srv, sig)
			ctx := context.Background()
			v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1})
			if err != nil {
				t.Fatal(err)
			}
			srv.ResetCounts()
			srv.FailNext("DescribeVolumes", 1, "RequestLimitExceeded")
			srv.FailNext("DescribeVolumes", 1, "InternalError")
			if _, err := p.Volume(ctx, v.ID); err != nil {
				t.Fatalf("Volume after two retryable failures: %v", err)
			}
			if n, s := srv.Count("DescribeVolumes"), srv.Signatures(sig); n != 3 || s != 3 {
				t.Errorf("%d requests, %d verified %s signatures: want 3 and 3", n, s, sig)
			}
			srv.FailNext("DeleteVolume", 1, "IncorrectState")
			err = p.DeleteVolume(ctx, v.ID)
			if !errors.Is(err, cloud.ErrIncorrectState) || srv.Count("DeleteVolume") != 1 {
				t.Errorf("DeleteVolume with IncorrectState: %v after %d requests: want no retry", err, srv.Count("DeleteVolume"))
			}
		})
	}
}

// TestErrorShape: errors are one line, start with the object, keep the
// EC2 code, and wrap the cloud sentinel.
func TestErrorShape(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{})
	p := newProvider(t, srv, ec2.SignatureV4)
	ctx := context.Background()
	err := p.DeleteVolume(ctx, "vol-0badf00d")
	re := regexp.MustCompile(`^volume "vol-0badf00d": delete: InvalidVolume\.NotFound: The volume 'vol-0badf00d' does not exist\.$`)
	if err == nil || !re.MatchString(err.Error()) || !cloud.IsNotFound(err) {
		t.Errorf("DeleteVolume of a missing volume: %v", err)
	}
	var ae *ec2.APIError
	if !errors.As(err, &ae) || ae.Code != "InvalidVolume.NotFound" {
		t.Errorf("no *ec2.APIError with the code in %v", err)
	}
	err = p.AttachVolume(ctx, "vol-0badf00d", "i-0badf00d", "sdf")
	if err == nil || !strings.HasPrefix(err.Error(), `volume "vol-0badf00d": attach to instance i-0badf00d: `) {
		t.Errorf("AttachVolume: %v", err)
	}
}

// TestRunInstanceSpec: block-device mappings, Eucalyptus and AWS ID
// prefixes, and what a cloud cannot do refused before any request.
func TestRunInstanceSpec(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{})
	p := newProvider(t, srv, ec2.SignatureV2)
	ctx := context.Background()
	w := wait.Waiter{Initial: 20e6, Max: 200e6}
	v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Volume(ctx, p, v.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	snap, err := p.CreateSnapshot(ctx, v.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Snapshot(ctx, p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	img, err := p.RegisterImage(ctx, cloud.ImageSpec{Name: "bdm", SnapshotID: snap.ID, Ephemeral: map[string]string{"ephemeral0": "sdb"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Image(ctx, p, img.ID, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.ID, "emi-") {
		t.Fatalf("image %s: the endpoint gives Eucalyptus IDs", img.ID)
	}
	srv.ResetCounts()
	refused := []struct {
		spec cloud.InstanceSpec
		want string
	}{
		{cloud.InstanceSpec{ImageID: "snap-12345678"}, `not an image id`},
		{cloud.InstanceSpec{ImageID: img.ID, KernelID: "eri-12345678"}, `kernel "eri-12345678": not a kernel id`},
		{cloud.InstanceSpec{ImageID: img.ID, RamdiskID: "eki-12345678"}, `ramdisk "eki-12345678": not a ramdisk id`},
		{cloud.InstanceSpec{ImageID: img.ID, Cmdline: "ks=x"}, "travels in user-data"},
		{cloud.InstanceSpec{ImageID: img.ID, InstanceInitiatedShutdown: "halt"}, "want stop or terminate"},
		{cloud.InstanceSpec{ImageID: img.ID, Volumes: []cloud.Attachment{{VolumeID: v.ID, Device: "sdg"}}}, "cannot attach an existing volume at launch"},
		{cloud.InstanceSpec{ImageID: img.ID, UserData: make([]byte, 16385)}, "over the EC2 limit"},
	}
	for _, r := range refused {
		if _, err := p.RunInstance(ctx, r.spec); err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("RunInstance(%+v): %v, want %q", r.spec, err, r.want)
		}
	}
	if n := srv.Count("RunInstances"); n != 0 {
		t.Errorf("%d RunInstances sent for refused specs", n)
	}
	for _, id := range []string{"ami-12345678", "emi-1234ABCD", "aki-0123456789abcdef0", "eki-ABCDEF01"} {
		prefix := id[:3]
		err := func() error {
			switch prefix {
			case "ami", "emi":
				_, err := p.RunInstance(ctx, cloud.InstanceSpec{ImageID: id})
				return err
			}
			_, err := p.RunInstance(ctx, cloud.InstanceSpec{ImageID: img.ID, KernelID: id})
			return err
		}()
		if !cloud.IsNotFound(err) {
			t.Errorf("%s: %v: want the cloud's not found (the ID itself accepted)", id, err)
		}
	}

	inst, err := p.RunInstance(ctx, cloud.InstanceSpec{ImageID: strings.ToLower(img.ID), Name: "bdm-test",
		Volumes: []cloud.Attachment{{VolumeID: snap.ID, Device: "sdg"}, {VolumeID: "ephemeral1", Device: "/dev/sdc"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.Instance(ctx, p, inst.ID, cloud.InstanceRunning)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Volumes) != 2 || got.Volumes[0].Device != "/dev/sda1" || got.Volumes[1].Device != "/dev/sdg" || got.Tags["Name"] != "bdm-test" {
		t.Errorf("instance %+v: want the root volume at /dev/sda1, one from %s at /dev/sdg, Name=bdm-test", got, snap.ID)
	}
}

// TestTagNewEventualConsistency: right after RunInstances or CreateVolume
// EC2 may not know the new id to CreateTags yet (the case AWS's
// eventual-consistency documentation names); the provider retries instead
// of failing with the resource made and untagged. On AWS the tags go in
// the create call itself (TagSpecification); on Eucalyptus 4.x, which
// refuses TagSpecification, CreateTags follows; on 3.x, which drops it,
// too.
func TestTagNewEventualConsistency(t *testing.T) {
	for _, d := range ec2endpoint.Dialects {
		t.Run(string(d), func(t *testing.T) {
			delays := ec2endpoint.DefaultDelays
			delays.Invisible = 1500 * time.Millisecond
			srv := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: d, Delays: &delays})
			p := newProvider(t, srv, ec2.SignatureV4)
			c := context.Background()
			v, err := p.CreateVolume(c, cloud.VolumeSpec{SizeGiB: 1, Tags: cloud.Tags{"kscloud:build": "b-1"}})
			if err != nil {
				t.Fatalf("CreateVolume with tags: %v", err)
			}
			got, err := p.Volume(c, v.ID)
			if err != nil || got.Tags["kscloud:build"] != "b-1" {
				t.Errorf("volume tags %v, %v", got.Tags, err)
			}
			out, err := p.Client().RegisterImage(c, &awsec2.RegisterImageInput{Name: aws.String("is-" + string(d)), ImageLocation: aws.String("b/is.manifest.xml")})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(delays.Invisible + delays.ImagePending) // visible and available
			inst, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: aws.ToString(out.ImageId), Name: "tagged", Tags: cloud.Tags{"kscloud:build": "b-1"}})
			if err != nil {
				t.Fatalf("RunInstance with tags: %v", err)
			}
			gi, err := p.Instance(c, inst.ID)
			if err != nil || gi.Tags["kscloud:build"] != "b-1" || gi.Tags["Name"] != "tagged" {
				t.Errorf("instance tags %v, %v", gi.Tags, err)
			}
			creates, tagCalls := srv.Count("CreateVolume"), srv.Count("CreateTags")
			switch d {
			case ec2endpoint.DialectAWS:
				if creates != 1 || tagCalls != 0 || srv.Count("RunInstances") != 1 {
					t.Errorf("aws: %d CreateVolume, %d CreateTags: want the tags in the one create call", creates, tagCalls)
				}
			case ec2endpoint.DialectEucalyptus4:
				if creates != 1 || tagCalls < 4 || srv.Count("RunInstances") != 1 {
					t.Errorf("eucalyptus-4: %d CreateVolume, %d CreateTags: want no TagSpecification at a /services/ path, CreateTags retried", creates, tagCalls)
				}
			case ec2endpoint.DialectEucalyptus3:
				if creates != 1 || tagCalls < 4 {
					t.Errorf("eucalyptus-3: %d CreateVolume, %d CreateTags: want CreateTags retried after the dropped TagSpecification", creates, tagCalls)
				}
			}
		})
	}
}

// TestTagSpecRefused: a Eucalyptus 4.x behind a path of its own (not
// /services/…) refuses TagSpecification; the provider creates again
// without it, tags with CreateTags, and does not try it again.
func TestTagSpecRefused(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: ec2endpoint.DialectEucalyptus4})
	u := strings.TrimSuffix(srv.URL(), "/services/compute") + "/ec2"
	p, err := ec2.New(context.Background(), ec2.Config{Endpoint: u, AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		v, err := p.CreateVolume(context.Background(), cloud.VolumeSpec{SizeGiB: 1, Tags: cloud.Tags{"n": "1"}})
		if err != nil || v.Tags["n"] != "1" {
			t.Fatalf("CreateVolume #%d: %+v, %v", i+1, v, err)
		}
	}
	if c, tg := srv.Count("CreateVolume"), srv.Count("CreateTags"); c != 3 || tg != 2 {
		t.Errorf("%d CreateVolume, %d CreateTags: want 3 (one refused) and 2", c, tg)
	}
}

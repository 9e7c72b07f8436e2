package ec2endpoint_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// TestSignV4KnownAnswer is AWS's worked Signature Version 4 example (IAM
// ListUsers, 2011-09-09, docs.aws.amazon.com/general/latest/gr/sigv4_signing.html).
func TestSignV4KnownAnswer(t *testing.T) {
	canonical := "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20110909T233600Z\n\ncontent-type;host;x-amz-date\nb6359072c78d70ebee1e81adcbab4f01bf2c23245fa365ef83fe8f1f955085e2"
	scope := "20110909/us-east-1/iam/aws4_request"
	sts := ec2endpoint.StringToSignV4("20110909T233600Z", scope, canonical)
	if want := "AWS4-HMAC-SHA256\n20110909T233600Z\n" + scope + "\n3511de7e95d28ecd39e9513b642aee07e54f4941150d8df8bf94b328ef7e55e2"; sts != want {
		t.Fatalf("string to sign\n%s\nwant\n%s", sts, want)
	}
	if got := ec2endpoint.SignV4("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", scope, sts); got != "ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c" {
		t.Fatalf("signature %s", got)
	}
}

// TestAuth: good and bad keys with both signatures, unsigned requests,
// replays, stale and future timestamps, HmacSHA1, the Host with no port.
func TestAuth(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{})
	for _, sig := range []string{ec2.SignatureV4, ec2.SignatureV2} {
		_, err := provider(t, srv, sig, "").Client().DescribeAvailabilityZones(ctx(t), &awsec2.DescribeAvailabilityZonesInput{})
		if err != nil {
			t.Errorf("%s with the right keys: %v", sig, err)
		}
		_, err = provider(t, srv, sig, "wrong-secret").Client().DescribeAvailabilityZones(ctx(t), &awsec2.DescribeAvailabilityZonesInput{})
		wantCode(t, sig+" with a wrong secret", err, "SignatureDoesNotMatch")
		other, err := ec2.New(ctx(t), ec2.Config{Endpoint: srv.URL(), AccessKey: "AKIAUNKNOWN000000000", SecretKey: srv.SecretKey(), Signature: sig, RetryMaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.Client().DescribeAvailabilityZones(ctx(t), &awsec2.DescribeAvailabilityZonesInput{})
		wantCode(t, sig+" with an unknown access key", err, "AuthFailure")
	}

	if st, c := raw(t, srv, action("DescribeVolumes"), ""); st != 401 || c != "AuthFailure" {
		t.Errorf("unsigned: %d %s, want 401 AuthFailure", st, c)
	}
	p := action("DescribeVolumes")
	if st, c := raw(t, srv, p, srv.SecretKey()); st != 200 {
		t.Fatalf("signed v2: %d %s", st, c)
	}
	// Eucalyptus: the same signature is accepted again within 3 s
	// (replay_skew_window_sec) and refused afterwards.
	if st, c := raw(t, srv, p, srv.SecretKey()); st != 200 {
		t.Errorf("the same signed request at once: %d %s, want 200 (Eucalyptus's 3 s replay grace)", st, c)
	}
	time.Sleep(3100 * time.Millisecond)
	if st, c := raw(t, srv, p, srv.SecretKey()); c != "AuthFailure" {
		t.Errorf("the same signed request 3 s later: %d %s, want AuthFailure (replay)", st, c)
	}
	for name, at := range map[string]time.Time{"20 minutes old": time.Now().Add(-20 * time.Minute), "a minute ahead": time.Now().Add(time.Minute)} {
		p := action("DescribeVolumes", "Timestamp", at.UTC().Format("2006-01-02T15:04:05Z"))
		if _, c := raw(t, srv, p, srv.SecretKey()); c != "RequestExpired" {
			t.Errorf("timestamp %s: %s, want RequestExpired", name, c)
		}
	}
	p = action("DescribeVolumes", "SignatureVersion", "1", "AWSAccessKeyId", srv.AccessKey(), "Signature", "x")
	if _, c := raw(t, srv, p, ""); c != "AuthFailure" {
		t.Errorf("signature version 1: %s, want AuthFailure", c)
	}

	// HmacSHA1 and the Host header without its port: Eucalyptus accepts both.
	u, _ := url.Parse(srv.URL())
	host := strings.Split(u.Host, ":")[0]
	p = action("DescribeVolumes", "AWSAccessKeyId", srv.AccessKey(), "SignatureVersion", "2", "SignatureMethod", "HmacSHA1",
		"Timestamp", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	m := hmac.New(sha1.New, []byte(srv.SecretKey()))
	m.Write([]byte(ec2.StringToSignV2("POST", host, u.Path, p)))
	p.Set("Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	if st, c := raw(t, srv, p, ""); st != 200 {
		t.Errorf("HmacSHA1 signed for the host without port: %d %s", st, c)
	}
}

// TestStrictParameters: unknown parameters are refused as Eucalyptus 4.x
// does; Lenient ignores them as 3.x does. The SDK's automatic ClientToken
// on CreateVolume is such a parameter (the provider leaves it out).
func TestStrictParameters(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{})
	p := provider(t, srv, ec2.SignatureV4, "")
	_, err := p.Client().CreateVolume(ctx(t), &awsec2.CreateVolumeInput{AvailabilityZone: aws.String("PARTI00"), Size: aws.Int32(1)})
	wantCode(t, "SDK CreateVolume with its ClientToken", err, "UnknownParameter")
	if _, err := p.CreateVolume(ctx(t), cloud.VolumeSpec{SizeGiB: 1}); err != nil {
		t.Errorf("provider CreateVolume: %v", err)
	}
	if _, c := raw(t, srv, action("DescribeVolumes", "Bogus", "1"), srv.SecretKey()); c != "UnknownParameter" {
		t.Errorf("Bogus=1: %s, want UnknownParameter", c)
	}
	if _, c := raw(t, srv, action("FlyToTheMoon"), srv.SecretKey()); c != "InvalidAction" {
		t.Errorf("unknown action: %s, want InvalidAction", c)
	}
	if _, c := raw(t, srv, url.Values{"Action": {"DescribeVolumes"}}, srv.SecretKey()); c != "MissingParameter" {
		t.Errorf("no Version: %s, want MissingParameter", c)
	}
	if st, c := raw(t, srv, action("DescribeVolumes", "DryRun", "true"), srv.SecretKey()); st != 412 || c != "DryRunOperation" {
		t.Errorf("DryRun: %d %s, want 412 DryRunOperation", st, c)
	}
	if st, c := raw(t, srv, action("DescribeVolumes", "DryRun", "true", "VolumeId.1", "vol-12345678"), srv.SecretKey()); st != 412 || c != "DryRunOperation" {
		t.Errorf("DryRun with a volume id: %d %s, want 412 DryRunOperation", st, c)
	}
	lenient := ec2endpoint.Start(t, ec2endpoint.Options{Lenient: true})
	if st, c := raw(t, lenient, action("DescribeVolumes", "Bogus", "1"), lenient.SecretKey()); st != 200 {
		t.Errorf("lenient, Bogus=1: %d %s, want 200", st, c)
	}
}

// TestErrorCodes: the documented codes, one per mistake.
func TestErrorCodes(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	p := provider(t, srv, ec2.SignatureV4, "")
	api := p.Client()
	c := ctx(t)

	_, err := api.DescribeVolumes(c, &awsec2.DescribeVolumesInput{VolumeIds: []string{"vol-12345678"}})
	wantCode(t, "DescribeVolumes unknown", err, "InvalidVolume.NotFound")
	_, err = api.DescribeInstances(c, &awsec2.DescribeInstancesInput{InstanceIds: []string{"i-12345678"}})
	wantCode(t, "DescribeInstances unknown", err, "InvalidInstanceID.NotFound")
	_, err = api.DescribeSnapshots(c, &awsec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-12345678"}})
	wantCode(t, "DescribeSnapshots unknown", err, "InvalidSnapshot.NotFound")
	_, err = api.DescribeImages(c, &awsec2.DescribeImagesInput{ImageIds: []string{"emi-12345678"}})
	wantCode(t, "DescribeImages unknown", err, "InvalidAMIID.NotFound")
	_, err = api.DescribeVolumes(c, &awsec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}})
	wantCode(t, "DescribeVolumes with an unknown filter", err, "InvalidParameterValue")

	if _, cd := raw(t, srv, action("CreateVolume", "Size", "1"), srv.SecretKey()); cd != "MissingParameter" {
		t.Errorf("CreateVolume without a zone: %s", cd)
	}
	if _, cd := raw(t, srv, action("CreateVolume", "Size", "1", "AvailabilityZone", "nowhere"), srv.SecretKey()); cd != "InvalidParameterValue" {
		t.Errorf("CreateVolume in an unknown zone: %s", cd)
	}
	if _, cd := raw(t, srv, action("CreateVolume", "AvailabilityZone", "PARTI00"), srv.SecretKey()); cd != "MissingParameter" {
		t.Errorf("CreateVolume with neither size nor snapshot: %s", cd)
	}
	v, err := p.CreateVolume(c, cloud.VolumeSpec{SizeGiB: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.DeleteVolume(c, &awsec2.DeleteVolumeInput{VolumeId: aws.String(v.ID)})
	wantCode(t, "DeleteVolume while creating", err, "IncorrectState")
	if _, err := fastWait.Volume(c, p, v.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	_, err = api.DetachVolume(c, &awsec2.DetachVolumeInput{VolumeId: aws.String(v.ID)})
	wantCode(t, "DetachVolume of an available volume", err, "IncorrectState")
	_, err = api.AttachVolume(c, &awsec2.AttachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: aws.String("i-12345678"), Device: aws.String("/dev/sdf")})
	wantCode(t, "AttachVolume to a missing instance", err, "InvalidInstanceID.NotFound")

	// A snapshot, an image from it, an instance of it.
	snap, err := p.CreateSnapshot(c, v.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.CreateVolume(c, &awsec2.CreateVolumeInput{AvailabilityZone: aws.String("PARTI00"), SnapshotId: aws.String(snap.ID)}, noToken)
	wantCode(t, "CreateVolume from a pending snapshot", err, "IncorrectState")
	if _, err := fastWait.Snapshot(c, p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	_, err = api.CreateVolume(c, &awsec2.CreateVolumeInput{AvailabilityZone: aws.String("PARTI00"), SnapshotId: aws.String(snap.ID), Size: aws.Int32(1)}, noToken)
	wantCode(t, "CreateVolume smaller than its snapshot", err, "InvalidParameterValue")
	img, err := p.RegisterImage(c, cloud.ImageSpec{Name: "errors-image", SnapshotID: snap.ID})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.RegisterImage(c, cloud.ImageSpec{Name: "errors-image", SnapshotID: snap.ID})
	wantCode(t, "RegisterImage with a name in use", err, "InvalidAMIName.Duplicate")
	_, err = api.RegisterImage(c, &awsec2.RegisterImageInput{Name: aws.String("no-root"), RootDeviceName: aws.String("/dev/sda1")})
	wantCode(t, "RegisterImage with neither a root snapshot nor a location", err, "InvalidBlockDeviceMapping")
	_, err = api.RunInstances(c, &awsec2.RunInstancesInput{ImageId: aws.String(img.ID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	wantCode(t, "RunInstances of a pending image", err, "IncorrectState")
	if _, err := fastWait.Image(c, p, img.ID, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	_, err = api.DeleteSnapshot(c, &awsec2.DeleteSnapshotInput{SnapshotId: aws.String(snap.ID)})
	wantCode(t, "DeleteSnapshot of an image's snapshot", err, "InvalidSnapshot.InUse")
	_, err = api.RunInstances(c, &awsec2.RunInstancesInput{ImageId: aws.String("emi-12345678"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	wantCode(t, "RunInstances of a missing image", err, "InvalidAMIID.NotFound")
	_, err = api.RunInstances(c, &awsec2.RunInstancesInput{ImageId: aws.String(img.ID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), UserData: aws.String("not base64!")})
	wantCode(t, "RunInstances with bad user-data", err, "InvalidParameterValue")
	_, err = api.RunInstances(c, &awsec2.RunInstancesInput{ImageId: aws.String(img.ID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		UserData: aws.String(base64.StdEncoding.EncodeToString(make([]byte, ec2endpoint.MaxUserData+1)))})
	wantCode(t, "RunInstances with user-data over 16 KiB", err, "InvalidParameterValue")
	_, err = api.RunInstances(c, &awsec2.RunInstancesInput{ImageId: aws.String(img.ID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), KernelId: aws.String("eki-12345678")})
	wantCode(t, "RunInstances with a missing kernel", err, "InvalidAMIID.NotFound")

	inst, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Instance(c, p, inst.ID, cloud.InstanceRunning); err != nil {
		t.Fatal(err)
	}
	_, err = api.AttachVolume(c, &awsec2.AttachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sda1")})
	wantCode(t, "AttachVolume at the root device", err, "InvalidParameterValue")
	_, err = api.AttachVolume(c, &awsec2.AttachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdf")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.AttachVolume(c, &awsec2.AttachVolumeInput{VolumeId: aws.String(v.ID), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sdg")})
	wantCode(t, "AttachVolume of an attached volume", err, "VolumeInUse")
	_, err = api.DeleteVolume(c, &awsec2.DeleteVolumeInput{VolumeId: aws.String(v.ID)})
	wantCode(t, "DeleteVolume of an attached volume", err, "VolumeInUse")
	w := newVolume(t, p, 1)
	_, err = api.AttachVolume(c, &awsec2.AttachVolumeInput{VolumeId: aws.String(w), InstanceId: aws.String(inst.ID), Device: aws.String("/dev/xvdf")})
	wantCode(t, "AttachVolume at a device in use (sdf = xvdf)", err, "InvalidParameterValue")
	root := ""
	if got, err := p.Instance(c, inst.ID); err == nil && len(got.Volumes) > 0 {
		root = got.Volumes[0].VolumeID
	}
	_, err = api.DetachVolume(c, &awsec2.DetachVolumeInput{VolumeId: aws.String(root)})
	wantCode(t, "DetachVolume of a running instance's root volume", err, "OperationNotPermitted")

	// Tags.
	_, err = api.CreateTags(c, &awsec2.CreateTagsInput{Resources: []string{"vol-12345678"}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, "CreateTags on a missing volume", err, "InvalidVolume.NotFound")
	_, err = api.CreateTags(c, &awsec2.CreateTagsInput{Resources: []string{"xyz-12345678"}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, "CreateTags on a resource of no known type", err, "InvalidID")
	_, err = api.CreateTags(c, &awsec2.CreateTagsInput{Resources: []string{v.ID}, Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}})
	wantCode(t, "CreateTags with the aws: prefix", err, "InvalidParameterValue")

	// Instance-store images cannot stop.
	isImg, err := api.RegisterImage(c, &awsec2.RegisterImageInput{Name: aws.String("fake-emi"), ImageLocation: aws.String("bucket/fake-emi.img.manifest.xml")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Image(c, p, aws.ToString(isImg.ImageId), cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	_, err = p.RunInstance(c, cloud.InstanceSpec{ImageID: aws.ToString(isImg.ImageId), InstanceInitiatedShutdown: "stop"})
	wantCode(t, "RunInstances of an instance-store image with shutdown stop", err, "InvalidParameterCombination")
	isInst, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: aws.ToString(isImg.ImageId)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.StopInstances(c, &awsec2.StopInstancesInput{InstanceIds: []string{isInst.ID}})
	wantCode(t, "StopInstances of an instance-store instance", err, "UnsupportedOperation")
	if err := p.TerminateInstance(c, isInst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Instance(c, p, isInst.ID, cloud.InstanceTerminated); err != nil {
		t.Fatal(err)
	}
	_, err = api.StartInstances(c, &awsec2.StartInstancesInput{InstanceIds: []string{isInst.ID}})
	wantCode(t, "StartInstances of a terminated instance", err, "IncorrectInstanceState")
	_, err = api.AttachVolume(c, &awsec2.AttachVolumeInput{VolumeId: aws.String(w), InstanceId: aws.String(isInst.ID), Device: aws.String("/dev/sdh")})
	wantCode(t, "AttachVolume to a terminated instance", err, "IncorrectInstanceState")
}

// noToken drops the SDK's automatic ClientToken (strict binding).
func noToken(o *awsec2.Options) {
	o.APIOptions = append(o.APIOptions, ec2.DropClientToken)
}

// observe polls describe every 5 ms until final and returns the distinct
// states seen, in order.
func observe(t *testing.T, what string, describe func() (string, error), final string) []string {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s, err := describe()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		if s == final {
			return seen
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: no %s within 20 s (seen %v)", what, final, seen)
	return nil
}

func wantSeq(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: states %v, want %v", what, got, want)
	}
}

// TestStateMachines follows each resource through its documented states.
func TestStateMachines(t *testing.T) {
	d := fast
	d.TerminatedRetention = 300 * time.Millisecond
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &d})
	p := provider(t, srv, ec2.SignatureV2, "")
	c := ctx(t)

	v, err := p.CreateVolume(c, cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	vstate := func() (string, error) { x, err := p.Volume(c, v.ID); return x.State, err }
	wantSeq(t, "new volume", observe(t, "volume", vstate, cloud.VolumeAvailable), "creating", "available")

	snap, err := p.CreateSnapshot(c, v.ID, "sm", nil)
	if err != nil {
		t.Fatal(err)
	}
	var progress []int
	sstate := func() (string, error) {
		x, err := p.Snapshot(c, snap.ID)
		if len(progress) == 0 || progress[len(progress)-1] != x.Progress {
			progress = append(progress, x.Progress)
		}
		return x.State, err
	}
	wantSeq(t, "snapshot", observe(t, "snapshot", sstate, cloud.SnapshotCompleted), "pending", "completed")
	if !slices.IsSorted(progress) || progress[len(progress)-1] != 100 || len(progress) < 3 {
		t.Errorf("snapshot progress %v: want at least 3 rising values ending at 100", progress)
	}
	img, err := p.RegisterImage(c, cloud.ImageSpec{Name: "state-machines", SnapshotID: snap.ID})
	if err != nil {
		t.Fatal(err)
	}
	istate := func() (string, error) { x, err := p.Image(c, img.ID); return x.State, err }
	wantSeq(t, "image", observe(t, "image", istate, cloud.ImageAvailable), "pending", "available")

	inst, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: img.ID, InstanceInitiatedShutdown: "stop"})
	if err != nil {
		t.Fatal(err)
	}
	var reason string
	instState := func() (string, error) { x, err := p.Instance(c, inst.ID); reason = x.StateReason; return x.State, err }
	wantSeq(t, "run", observe(t, "instance", instState, "running"), "pending", "running")
	got, _ := p.Instance(c, inst.ID)
	if len(got.Volumes) != 1 || got.Volumes[0].Device != "/dev/sda1" || got.PrivateIP == "" {
		t.Fatalf("running EBS instance %+v: want its root volume at /dev/sda1 and an address", got)
	}
	rootVol := got.Volumes[0].VolumeID
	if rv, err := p.Volume(c, rootVol); err != nil || rv.State != cloud.VolumeInUse || rv.AttachState != "attached" {
		t.Errorf("root volume %+v, %v: want in-use, attached", rv, err)
	}

	// Attach and detach.
	data := newVolume(t, p, 1)
	if err := p.AttachVolume(c, data, inst.ID, "sdf"); err != nil {
		t.Fatal(err)
	}
	astate := func() (string, error) { x, err := p.Volume(c, data); return x.State + "/" + x.AttachState, err }
	wantSeq(t, "attach", observe(t, "attachment", astate, "in-use/attached"), "in-use/attaching", "in-use/attached")
	if err := p.DetachVolume(c, data); err != nil {
		t.Fatal(err)
	}
	wantSeq(t, "detach", observe(t, "attachment", astate, "available/"), "in-use/detaching", "available/")

	// Stop, start, a guest power-off (behaviour stop), terminate.
	if _, err := p.Client().StopInstances(c, &awsec2.StopInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
		t.Fatal(err)
	}
	wantSeq(t, "stop", observe(t, "instance", instState, "stopped"), "stopping", "stopped")
	if _, err := p.Client().StartInstances(c, &awsec2.StartInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
		t.Fatal(err)
	}
	wantSeq(t, "start", observe(t, "instance", instState, "running"), "pending", "running")
	if err := srv.PowerOff(inst.ID); err != nil {
		t.Fatal(err)
	}
	wantSeq(t, "guest power-off", observe(t, "instance", instState, "stopped"), "stopping", "stopped")
	if !strings.Contains(reason, "Client.InstanceInitiatedShutdown") {
		t.Errorf("state reason after a guest power-off: %q", reason)
	}
	if err := p.TerminateInstance(c, inst.ID); err != nil {
		t.Fatal(err)
	}
	wantSeq(t, "terminate", observe(t, "instance", instState, "terminated"), "shutting-down", "terminated")
	if _, err := p.Volume(c, rootVol); !cloud.IsNotFound(err) {
		t.Errorf("root volume after terminate: %v, want not found (DeleteOnTermination)", err)
	}
	time.Sleep(d.TerminatedRetention + 200*time.Millisecond)
	if _, err := p.Instance(c, inst.ID); !cloud.IsNotFound(err) {
		t.Errorf("instance after its retention: %v, want not found", err)
	}

	// Power-off of an instance with shutdown behaviour terminate.
	inst2, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: img.ID, InstanceInitiatedShutdown: "terminate"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Instance(c, p, inst2.ID, cloud.InstanceRunning); err != nil {
		t.Fatal(err)
	}
	if err := srv.PowerOff(inst2.ID); err != nil {
		t.Fatal(err)
	}
	got, err = fastWait.Instance(c, p, inst2.ID, cloud.InstanceTerminated)
	if err != nil || !strings.Contains(got.StateReason, "InstanceInitiatedShutdown") {
		t.Errorf("power-off with behaviour terminate: %+v, %v", got, err)
	}
	// A wait for running on an instance that went away says why.
	_, err = fastWait.Instance(c, p, inst2.ID, cloud.InstanceRunning)
	if err == nil || !strings.Contains(err.Error(), "waiting for instance "+inst2.ID+" to be running") || !strings.Contains(err.Error(), "InstanceInitiatedShutdown") {
		t.Errorf("waiting for a terminated instance to run: %v", err)
	}
}

// TestTagFilters: tag:KEY, tag-key, wildcards, resource-id, resource-type,
// and DescribeTags pages that FindTagged follows.
func TestTagFilters(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast, TagPageSize: 5})
	p := provider(t, srv, ec2.SignatureV4, "")
	c := ctx(t)
	var ids []string
	for i := 0; i < 4; i++ {
		v, err := p.CreateVolume(c, cloud.VolumeSpec{SizeGiB: 1, Tags: cloud.Tags{"build": "b1", "n": fmt.Sprint(i), "role": []string{"disk", "scratch"}[i%2]}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	vols := func(fs ...types.Filter) []string {
		out, err := p.Client().DescribeVolumes(c, &awsec2.DescribeVolumesInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range out.Volumes {
			got = append(got, aws.ToString(v.VolumeId))
		}
		slices.Sort(got)
		return got
	}
	f := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	if got := vols(f("tag:role", "scratch")); !slices.Equal(got, sorted(ids[1], ids[3])) {
		t.Errorf("tag:role=scratch: %v", got)
	}
	if got := vols(f("tag:role", "scr*"), f("tag:n", "3", "0")); !slices.Equal(got, []string{ids[3]}) {
		t.Errorf("tag:role=scr* and tag:n in (3,0): %v", got)
	}
	if got := vols(f("tag-key", "n")); len(got) != 4 {
		t.Errorf("tag-key=n: %v", got)
	}
	if got := vols(f("tag-key", "nope")); len(got) != 0 {
		t.Errorf("tag-key=nope: %v", got)
	}
	out, err := p.Client().DescribeTags(c, &awsec2.DescribeTagsInput{Filters: []types.Filter{f("resource-id", ids[2]), f("resource-type", "volume")}})
	if err != nil || len(out.Tags) != 3 {
		t.Errorf("DescribeTags resource-id=%s: %+v, %v: want its 3 tags", ids[2], out, err)
	}
	srv.ResetCounts()
	found, err := p.FindTagged(c, "build", "b1")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 4 || len(found[0].Tags) != 3 {
		t.Errorf("FindTagged(build=b1) = %+v: want 4 volumes with 3 tags each", found)
	}
	if n := srv.Count("DescribeTags"); n < 4 {
		t.Errorf("FindTagged made %d DescribeTags calls: with pages of 5 it must follow NextToken", n)
	}
}

// TestIdempotencyAndIDs: a RunInstances retried with its ClientToken
// returns the same instance; lower-case IDs find upper-case ones.
func TestIdempotencyAndIDs(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	p := provider(t, srv, ec2.SignatureV4, "")
	c := ctx(t)
	v := newVolume(t, p, 1)
	snap, err := p.CreateSnapshot(c, v, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Snapshot(c, p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	img, err := p.RegisterImage(c, cloud.ImageSpec{Name: "idem", SnapshotID: strings.ToLower(snap.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Image(c, p, strings.ToLower(img.ID), cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	in := &awsec2.RunInstancesInput{ImageId: aws.String(img.ID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("token-1")}
	a, err := p.Client().RunInstances(c, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Client().RunInstances(c, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.Instances[0].InstanceId) != aws.ToString(b.Instances[0].InstanceId) {
		t.Errorf("same ClientToken, two instances: %s and %s", aws.ToString(a.Instances[0].InstanceId), aws.ToString(b.Instances[0].InstanceId))
	}
	if _, err := p.Volume(c, strings.ToLower(v)); err != nil {
		t.Errorf("lower-case volume ID: %v", err)
	}
}

// TestConsolePlain: what a plain-mode guest writes comes back base64-decoded.
func TestConsolePlain(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	p := provider(t, srv, ec2.SignatureV4, "")
	c := ctx(t)
	out, err := p.Client().RegisterImage(c, &awsec2.RegisterImageInput{Name: aws.String("installer"), ImageLocation: aws.String("b/installer.manifest.xml")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Image(c, p, aws.ToString(out.ImageId), cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	inst, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: aws.ToString(out.ImageId)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AppendConsole(inst.ID, []byte("anaconda: Installing 42/300 packages\n")); err != nil {
		t.Fatal(err)
	}
	b, err := p.ConsoleOutput(c, inst.ID)
	if err != nil || !strings.Contains(string(b), "Installing 42/300 packages") || !strings.Contains(string(b), inst.ID+" pending") {
		t.Errorf("console output %q, %v", b, err)
	}
}

// TestAuthAWS: AWS has no replay cache (identical requests are both
// answered) and allows 15 minutes of clock difference either way.
func TestAuthAWS(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: ec2endpoint.DialectAWS})
	p := action("DescribeVolumes")
	for i := 0; i < 2; i++ {
		if st, c := raw(t, srv, p, srv.SecretKey()); st != 200 {
			t.Errorf("the same signed request, #%d: %d %s, want 200", i+1, st, c)
		}
	}
	for name, tc := range map[string]struct {
		at   time.Duration
		want string
	}{
		"14 minutes old": {-14 * time.Minute, ""}, "14 minutes ahead": {14 * time.Minute, ""},
		"16 minutes old": {-16 * time.Minute, "RequestExpired"}, "16 minutes ahead": {16 * time.Minute, "RequestExpired"},
	} {
		p := action("DescribeVolumes", "Timestamp", time.Now().Add(tc.at).UTC().Format("2006-01-02T15:04:05Z"))
		if _, c := raw(t, srv, p, srv.SecretKey()); c != tc.want {
			t.Errorf("timestamp %s: %q, want %q", name, c, tc.want)
		}
	}
}

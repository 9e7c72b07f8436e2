package ec2endpoint_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// TestDialectCreate: ClientToken and TagSpecification.N on CreateVolume
// and RunInstances, as each dialect binds them.
func TestDialectCreate(t *testing.T) {
	tagSpec := func(rt string) []types.TagSpecification {
		return []types.TagSpecification{{ResourceType: types.ResourceType(rt), Tags: []types.Tag{{Key: aws.String("made-by"), Value: aws.String("spec")}}}}
	}
	for _, tc := range []struct {
		d ec2endpoint.Dialect
		// volToken: CreateVolume with the SDK's ClientToken: "" answered, else the error code.
		volToken string
		// tagged: TagSpecifications honoured; specErr: the error code instead.
		tagged  bool
		specErr string
	}{
		{ec2endpoint.DialectAWS, "", true, ""},
		{ec2endpoint.DialectEucalyptus4, "UnknownParameter", false, "UnknownParameter"},
		{ec2endpoint.DialectEucalyptus3, "", false, ""},
	} {
		t.Run(string(tc.d), func(t *testing.T) {
			srv := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: tc.d, Delays: &fast})
			api := provider(t, srv, ec2.SignatureV4, "").Client()
			c := ctx(t)
			in := &awsec2.CreateVolumeInput{AvailabilityZone: aws.String("PARTI00"), Size: aws.Int32(1), ClientToken: aws.String("vol-token-1")}
			a, err := api.CreateVolume(c, in)
			wantCode(t, "CreateVolume with a ClientToken", err, tc.volToken)
			if err == nil {
				b, err := api.CreateVolume(c, in)
				if err != nil {
					t.Fatal(err)
				}
				same := aws.ToString(a.VolumeId) == aws.ToString(b.VolumeId)
				if want := tc.d == ec2endpoint.DialectAWS; same != want {
					t.Errorf("the same ClientToken twice: volumes %s and %s (same: %v, want %v)", aws.ToString(a.VolumeId), aws.ToString(b.VolumeId), same, want)
				}
				if tc.d == ec2endpoint.DialectAWS {
					in2 := *in
					in2.Size = aws.Int32(2)
					_, err := api.CreateVolume(c, &in2)
					wantCode(t, "the same ClientToken with another size", err, "IdempotentParameterMismatch")
				}
			}
			v, err := api.CreateVolume(c, &awsec2.CreateVolumeInput{AvailabilityZone: aws.String("PARTI00"), Size: aws.Int32(1), TagSpecifications: tagSpec("volume")}, noToken)
			wantCode(t, "CreateVolume with TagSpecifications", err, tc.specErr)
			if err == nil {
				if got := len(v.Tags) == 1; got != tc.tagged {
					t.Errorf("CreateVolume's answer carries the spec's tags: %v, want %v (%v)", got, tc.tagged, v.Tags)
				}
				d, err := api.DescribeVolumes(c, &awsec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("tag:made-by"), Values: []string{"spec"}}}})
				if err != nil || (len(d.Volumes) == 1) != tc.tagged {
					t.Errorf("volumes tagged made-by=spec: %d, %v (want tagged %v)", len(d.Volumes), err, tc.tagged)
				}
			}
			_, err = api.CreateVolume(c, &awsec2.CreateVolumeInput{AvailabilityZone: aws.String("PARTI00"), Size: aws.Int32(1), TagSpecifications: tagSpec("instance")}, noToken)
			if tc.d == ec2endpoint.DialectAWS {
				wantCode(t, "CreateVolume with an instance TagSpecification", err, "InvalidParameterValue")
			}
		})
	}
}

// TestMalformedIDs: an ID not of the kind's shape is *.Malformed with
// EC2's message, not *.NotFound.
func TestMalformedIDs(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	api := provider(t, srv, ec2.SignatureV4, "").Client()
	c := ctx(t)
	_, err := api.DescribeInstances(c, &awsec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}})
	wantCode(t, "DescribeInstances i-xyz", err, "InvalidInstanceID.Malformed")
	wantMessage(t, err, `Invalid id: "i-xyz"`)
	_, err = api.DescribeVolumes(c, &awsec2.DescribeVolumesInput{VolumeIds: []string{"vol-xyz"}})
	wantCode(t, "DescribeVolumes vol-xyz", err, "InvalidVolumeID.Malformed")
	wantMessage(t, err, `Invalid id: "vol-xyz" (expecting "vol-...")`)
	_, err = api.DescribeSnapshots(c, &awsec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-xyz"}})
	wantCode(t, "DescribeSnapshots snap-xyz", err, "InvalidSnapshotID.Malformed")
	_, err = api.DescribeImages(c, &awsec2.DescribeImagesInput{ImageIds: []string{"ami-xyz"}})
	wantCode(t, "DescribeImages ami-xyz", err, "InvalidAMIID.Malformed")
	_, err = api.DescribeVolumes(c, &awsec2.DescribeVolumesInput{VolumeIds: []string{"i-12345678"}})
	wantCode(t, "DescribeVolumes of an instance id", err, "InvalidVolumeID.Malformed")
	_, err = api.TerminateInstances(c, &awsec2.TerminateInstancesInput{InstanceIds: []string{"i-1234567"}})
	wantCode(t, "TerminateInstances i-1234567 (7 digits)", err, "InvalidInstanceID.Malformed")
	_, err = api.DescribeInstances(c, &awsec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, "DescribeInstances of a long unknown id", err, "InvalidInstanceID.NotFound")
}

func wantMessage(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !contains(err.Error(), want) {
		t.Errorf("error %v: want the message %q", err, want)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestInstanceDetails: the fields EC2 answers that clients read (groupSet,
// monitoring, DescribeInstanceAttribute userData), a terminated instance
// listed for about an hour by default, a root volume put back at
// /dev/sda1 on a stopped instance.
func TestInstanceDetails(t *testing.T) {
	if ec2endpoint.DefaultDelays.TerminatedRetention < 50*time.Minute {
		t.Errorf("a terminated instance is listed for %s: EC2 lists it for about an hour", ec2endpoint.DefaultDelays.TerminatedRetention)
	}
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	p := provider(t, srv, ec2.SignatureV4, "")
	api := p.Client()
	c := ctx(t)
	img := ebsImage(t, p)
	inst, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: img, UserData: []byte("#kickstart\n")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := api.DescribeInstances(c, &awsec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Reservations[0]
	x := r.Instances[0]
	if len(r.Groups) == 0 || len(x.SecurityGroups) == 0 || x.Monitoring == nil || x.Monitoring.State != types.MonitoringStateDisabled {
		t.Errorf("reservation groups %v, instance groups %v, monitoring %v", r.Groups, x.SecurityGroups, x.Monitoring)
	}
	attr, err := api.DescribeInstanceAttribute(c, &awsec2.DescribeInstanceAttributeInput{InstanceId: aws.String(inst.ID), Attribute: types.InstanceAttributeNameUserData})
	if err != nil || attr.UserData == nil || aws.ToString(attr.UserData.Value) != base64.StdEncoding.EncodeToString([]byte("#kickstart\n")) {
		t.Errorf("DescribeInstanceAttribute userData: %+v, %v", attr, err)
	}
	if _, err := fastWait.Instance(c, p, inst.ID, cloud.InstanceRunning); err != nil {
		t.Fatal(err)
	}
	root := x.BlockDeviceMappings[0]
	if _, err := api.StopInstances(c, &awsec2.StopInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Instance(c, p, inst.ID, cloud.InstanceStopped); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DetachVolume(c, &awsec2.DetachVolumeInput{VolumeId: root.Ebs.VolumeId}); err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Volume(c, p, aws.ToString(root.Ebs.VolumeId), cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	if _, err := api.AttachVolume(c, &awsec2.AttachVolumeInput{VolumeId: root.Ebs.VolumeId, InstanceId: aws.String(inst.ID), Device: aws.String("/dev/sda1")}); err != nil {
		t.Errorf("attach the root volume back at /dev/sda1: %v", err)
	}
}

// ebsImage registers an available EBS image from a new snapshot.
func ebsImage(t *testing.T, p *ec2.Provider) string {
	t.Helper()
	c := ctx(t)
	snap, err := p.CreateSnapshot(c, newVolume(t, p, 1), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Snapshot(c, p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	img, err := p.RegisterImage(c, cloud.ImageSpec{Name: "img-" + snap.ID, SnapshotID: snap.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Image(c, p, img.ID, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	return img.ID
}

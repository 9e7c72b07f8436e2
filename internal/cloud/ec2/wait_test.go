package ec2_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// slowVolumes is an endpoint whose volumes take d to become available.
func slowVolumes(t *testing.T, d time.Duration) *ec2endpoint.Server {
	delays := ec2endpoint.DefaultDelays
	delays.VolumeCreating = d
	return ec2endpoint.Start(t, ec2endpoint.Options{Delays: &delays})
}

// TestWaitBackoff counts the requests a default wait makes on a slow
// state: polls at about 0, 1, 3, 7 and 15 s (1 s doubling, ±20 %) for a
// volume that takes 12 s, so 5, and never more than 6 with jitter.
func TestWaitBackoff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 12 s of real time")
	}
	srv := slowVolumes(t, 12*time.Second)
	p := newProvider(t, srv, ec2.SignatureV4)
	ctx := context.Background()
	v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	start := time.Now()
	var seen []string
	got, err := ec2.Waiter{Progress: func(_, s string) { seen = append(seen, s) }}.Volume(ctx, p, v.ID, cloud.VolumeAvailable)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	n := srv.Count("DescribeVolumes")
	t.Logf("wait for a volume that takes 12 s: %d DescribeVolumes in %s (states %v)", n, took.Round(10*time.Millisecond), seen)
	if got.State != cloud.VolumeAvailable || len(seen) != 2 {
		t.Errorf("volume %+v, states %v: want creating then available", got, seen)
	}
	if n < 4 || n > 6 {
		t.Errorf("%d requests: want 4–6 (backoff 1 s doubling to 15 s)", n)
	}
	if took < 12*time.Second || took > 20*time.Second {
		t.Errorf("the wait took %s: want the poll after 12 s, at most ~18 s", took)
	}
}

// TestWaitTimeout: a wait bounded by Waiter.Timeout (or the context) ends
// with an error that names what it waited for and wraps the deadline, and
// makes few requests doing so.
func TestWaitTimeout(t *testing.T) {
	srv := slowVolumes(t, time.Hour)
	p := newProvider(t, srv, ec2.SignatureV2)
	v, err := p.CreateVolume(context.Background(), cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	start := time.Now()
	_, err = ec2.Waiter{Timeout: 2500 * time.Millisecond}.Volume(context.Background(), p, v.ID, cloud.VolumeAvailable)
	took := time.Since(start)
	want := "waiting for volume " + v.ID + " to be available: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `last state "creating"`) {
		t.Fatalf("err = %v; want %q… wrapping context.DeadlineExceeded and naming the last state", err, want)
	}
	if n := srv.Count("DescribeVolumes"); n < 2 || n > 4 {
		t.Errorf("%d requests in a 2.5 s wait: want 2–4", n)
	}
	if took < 2400*time.Millisecond || took > 3500*time.Millisecond {
		t.Errorf("the wait took %s, want about 2.5 s", took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = ec2.WaitVolume(ctx, p, v.ID, cloud.VolumeAvailable)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("context deadline: %v", err)
	}
}

// TestWaitNotFound: "not found" is retried during the grace period (EC2 is
// eventually consistent after a create), then ends the wait; with deleted
// wanted it is the answer.
func TestWaitNotFound(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{})
	p := newProvider(t, srv, ec2.SignatureV4)
	ctx := context.Background()
	start := time.Now()
	_, err := ec2.Waiter{Initial: 50 * time.Millisecond, NotFoundGrace: 400 * time.Millisecond}.Volume(ctx, p, "vol-0badf00d", cloud.VolumeAvailable)
	if !cloud.IsNotFound(err) || time.Since(start) < 400*time.Millisecond || !strings.HasPrefix(err.Error(), "waiting for volume vol-0badf00d to be available: ") {
		t.Errorf("missing volume: %v after %s; want not found after the 400 ms grace", err, time.Since(start))
	}
	v, err := ec2.WaitVolume(ctx, p, "vol-0badf00d", cloud.VolumeDeleted)
	if err != nil || v.State != cloud.VolumeDeleted {
		t.Errorf("waiting for a missing volume to be deleted: %+v, %v", v, err)
	}
	in, err := ec2.WaitInstance(ctx, p, "i-0badf00d", cloud.InstanceTerminated)
	if err != nil || in.State != cloud.InstanceTerminated {
		t.Errorf("waiting for a missing instance to be terminated: %+v, %v", in, err)
	}
}

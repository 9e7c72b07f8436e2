package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// TestCleanupReachesTheBuildsCloud: cleanup ID acts on the cloud the build
// was made on, recorded in its state file, whatever EC2_URL says now; an
// explicit --endpoint to another cloud is refused (there, every resource
// is "not found" and the build would be marked cleaned while its
// resources live on).
func TestCleanupReachesTheBuildsCloud(t *testing.T) {
	fast := ec2endpoint.Delays{VolumeCreating: 10 * time.Millisecond, VolumeDeleting: 10 * time.Millisecond}
	a := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	b := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	t.Setenv("EC2_ACCESS_KEY", a.AccessKey())
	t.Setenv("EC2_SECRET_KEY", a.SecretKey())
	t.Setenv("EUCARC", "")
	t.Setenv("EC2_URL", b.URL()) // the shell now points elsewhere
	ctx := context.Background()
	p, err := ec2.New(ctx, ec2.Config{Endpoint: a.URL()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := wait.Waiter{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	if _, err := w.Volume(ctx, p, v.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	g := global{provider: "ec2"}
	bld := install.NewBuild("bake", "ec2", install.Spec{})
	bld.Cloud = g.cloudRef(p)
	bld.Status = install.StatusFailed
	bld.Record(install.Resource{Kind: install.KindVolume, ID: v.ID, Role: "target"})
	if err := store.Save(bld); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runCLI("cleanup", bld.ID, "--state-dir", state, "--endpoint", b.URL())
	if code != 1 || !strings.Contains(stderr, "lives on endpoint "+a.URL()) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("cleanup against another endpoint: exit %d: %q", code, stderr)
	}
	if _, err := p.Volume(ctx, v.ID); err != nil {
		t.Fatalf("volume after the refused cleanup: %v", err)
	}
	if got, _ := store.Load(bld.ID); got.Status == install.StatusCleaned {
		t.Fatal("the refused cleanup marked the build cleaned")
	}

	code, _, stderr = runCLI("cleanup", bld.ID, "--state-dir", state)
	if code != 0 {
		t.Fatalf("cleanup: exit %d: %s", code, stderr)
	}
	if got, err := p.Volume(ctx, v.ID); err == nil && got.State != cloud.VolumeDeleting && got.State != cloud.VolumeDeleted {
		t.Errorf("volume on the build's cloud after cleanup: %+v", got)
	}
	if got, _ := store.Load(bld.ID); got.Status != install.StatusCleaned {
		t.Errorf("build status %s after cleanup", got.Status)
	}
}

// TestOrphanSweepTakesOnlyTemporaries: cleanup --orphans removes a
// build's temporaries no state file owns, never what a build made for its
// user (a run's disk here; its instance and images the same way).
func TestOrphanSweepTakesOnlyTemporaries(t *testing.T) {
	fast := ec2endpoint.Delays{VolumeCreating: 10 * time.Millisecond, VolumeDeleting: 10 * time.Millisecond}
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	t.Setenv("EC2_ACCESS_KEY", srv.AccessKey())
	t.Setenv("EC2_SECRET_KEY", srv.SecretKey())
	t.Setenv("EUCARC", "")
	t.Setenv("EC2_URL", srv.URL())
	ctx := context.Background()
	p, err := ec2.New(ctx, ec2.Config{Endpoint: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	w := wait.Waiter{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	vol := func(role string) string {
		v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1, Tags: cloud.Tags{cloud.TagCreator: "kscloud", cloud.TagBuild: "ks-gone", cloud.TagRole: role}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Volume(ctx, p, v.ID, cloud.VolumeAvailable); err != nil {
			t.Fatal(err)
		}
		return v.ID
	}
	target, root := vol("target"), vol("root")
	code, _, stderr := runCLI("cleanup", "--orphans", "--provider", "ec2", "--state-dir", t.TempDir())
	if code != 0 || !strings.Contains(stderr, "removed orphan volume "+target) || strings.Contains(stderr, root) {
		t.Fatalf("cleanup --orphans: exit %d:\n%s", code, stderr)
	}
	if v, err := p.Volume(ctx, root); err != nil || v.State != cloud.VolumeAvailable {
		t.Errorf("a run's disk after the sweep: %+v, %v: want it kept", v, err)
	}
}

func TestStatusShowsTheCloud(t *testing.T) {
	state := t.TempDir()
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	b := install.NewBuild("bake", "ec2", install.Spec{})
	b.Cloud = &install.CloudRef{Endpoint: "http://clc:8773/services/compute", Region: "eucalyptus", Signature: "v2"}
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("status", b.ID, "--state-dir", state)
	if code != 0 || !strings.Contains(stdout, "cloud\tendpoint http://clc:8773/services/compute (region eucalyptus)\n") {
		t.Fatalf("status: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestAWSBuildIgnoresEC2URL: a build made on AWS itself (no endpoint
// recorded) goes back to AWS even from a shell whose EC2_URL names a
// Eucalyptus cloud.
func TestAWSBuildIgnoresEC2URL(t *testing.T) {
	t.Setenv("EC2_ACCESS_KEY", "AKIDEXAMPLE")
	t.Setenv("EC2_SECRET_KEY", "secret")
	t.Setenv("EUCARC", "")
	t.Setenv("EC2_URL", "http://clc.example:8773/services/compute")
	b := install.NewBuild("bake", "ec2", install.Spec{})
	b.Cloud = &install.CloudRef{Region: "us-east-1", Signature: "v4"}
	var g global
	fs := newFlagSet("cleanup", "", io.Discard)
	g.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	g.useRecorded(fs, b)
	p, closeP, err := g.openProvider(context.Background(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer closeP()
	now := g.cloudRef(p)
	if now.Endpoint != "" || now.Region != "us-east-1" {
		t.Fatalf("reached %s, want AWS us-east-1", now.Where())
	}
	if err := sameCloud(b, now); err != nil {
		t.Fatal(err)
	}
}

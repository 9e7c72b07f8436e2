package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudec2 "github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/internal/userdata"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// ec2Env is a Eucalyptus-like cloud on this host: the EC2 test endpoint in
// node mode (it plays the NC on the test libvirtd, running the real hook
// from the node's nc-hooks directory), nchookd serve for that node, the
// test installer registered as an EKI/ERI, an installer EMI whose root is
// a small blank (EBS) disk, and a kscloud state directory.
type ec2Env struct {
	srv           *ec2endpoint.Server
	node          *node
	p             *cloudec2.Provider
	state         string
	eki, eri, emi string
}

// ec2Actions are the requests kscloud's EC2 workflows make.
var ec2Actions = []string{"RunInstances", "DescribeInstances", "GetConsoleOutput", "TerminateInstances",
	"DescribeVolumes", "DetachVolume", "DeleteVolume", "CreateSnapshot", "DescribeSnapshots", "DeleteSnapshot",
	"RegisterImage", "DescribeImages", "DeregisterImage", "CreateTags", "DescribeTags", "DescribeAvailabilityZones",
	"CreateVolume", "AttachVolume", "StopInstances", "StartInstances"}

func newEC2Env(t testing.TB, delays *ec2endpoint.Delays) *ec2Env {
	t.Helper()
	uri := testenv.Libvirt(t)
	k, i := testInstaller(t)
	n := newNode(t)
	n.serve(t)
	e := &ec2Env{node: n, state: t.TempDir()}
	// The node's directory holds the instances root nchookd watches.
	e.srv = ec2endpoint.Start(t, ec2endpoint.Options{Delays: delays, Node: &ec2endpoint.NodeOptions{
		LibvirtURI: uri, Dir: filepath.Dir(n.root), HooksDir: n.hooks, HookEnv: n.env, MemoryMB: 512,
	}})
	var err error
	if e.p, err = cloudec2.New(context.Background(), cloudec2.Config{Endpoint: e.srv.URL(), AccessKey: e.srv.AccessKey(), SecretKey: e.srv.SecretKey()}); err != nil {
		t.Fatal(err)
	}
	if e.eki, err = e.srv.AddKernel(k); err != nil {
		t.Fatal(err)
	}
	if e.eri, err = e.srv.AddRamdisk(i); err != nil {
		t.Fatal(err)
	}
	// The installer EMI: an EBS image from a snapshot of a blank 1 GiB
	// volume, with the installer as its EKI/ERI (seed 001's fake EMI).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w := wait.Waiter{Initial: 200 * time.Millisecond, Max: 2 * time.Second}
	v, err := e.p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Volume(ctx, e.p, v.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	snap, err := e.p.CreateSnapshot(ctx, v.ID, "blank installer root", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Snapshot(ctx, e.p, snap.ID, cloud.SnapshotCompleted); err != nil {
		t.Fatal(err)
	}
	if err := e.p.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Volume(ctx, e.p, v.ID, cloud.VolumeDeleted); err != nil {
		t.Fatal(err)
	}
	img, err := e.p.RegisterImage(ctx, cloud.ImageSpec{Name: "kscloud-test-installer", SnapshotID: snap.ID,
		KernelID: e.eki, RamdiskID: e.eri, Virtualization: "paravirtual"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Image(ctx, e.p, img.ID, cloud.ImageAvailable); err != nil {
		t.Fatal(err)
	}
	e.emi = img.ID
	return e
}

// cmd is kscloud with the endpoint, its keys (euca2ools' variables) and
// the env's state directory.
func (e *ec2Env) cmd(ctx context.Context, args ...string) *exec.Cmd {
	args = append(args, "--provider", "ec2", "--endpoint", e.srv.URL(), "--state-dir", e.state)
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, bins.kscloud, args...)
	} else {
		cmd = exec.Command(bins.kscloud, args...)
	}
	cmd.Env = append(os.Environ(), "EC2_ACCESS_KEY="+e.srv.AccessKey(), "EC2_SECRET_KEY="+e.srv.SecretKey(), "EC2_URL=", "EUCARC=")
	return cmd
}

func (e *ec2Env) kscloud(t testing.TB, ctx context.Context, args ...string) result {
	t.Helper()
	cmd := e.cmd(ctx, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// bakeArgs are the arguments of a bake of ks on the installer EMI, the
// target volume at /dev/sdb.
func (e *ec2Env) bakeArgs(ks, name string) []string {
	return []string{"bake", "--ks", ks, "--installer-image", e.emi, "--kernel", e.eki, "--initrd", e.eri,
		"--disk", "2", "--target-device", "/dev/sdb", "--name", name, "--extra-args", "no_timer_check",
		"--timeout", "30m", "--inactivity", "10m"}
}

// counts returns the requests per action since the last ResetCounts.
func (e *ec2Env) counts() (map[string]int, int) {
	m := map[string]int{}
	total := 0
	for _, a := range ec2Actions {
		if n := e.srv.Count(a); n > 0 {
			m[a] = n
			total += n
		}
	}
	return m, total
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// leftovers lists what the endpoint still holds for build: anything
// tagged with it but an instance that is terminated (EC2 lists those for
// a while) or a volume being deleted, and any volume at all (the env's
// tests leave none).
func (e *ec2Env) leftovers(t *testing.T, build string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var left []string
	res, err := e.p.FindTagged(ctx, cloud.TagBuild, build)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Kind == "instance" {
			in, err := e.p.Instance(ctx, r.ID)
			if cloud.IsNotFound(err) || err == nil && in.State == cloud.InstanceTerminated {
				continue
			}
			left = append(left, fmt.Sprintf("instance %s (%s)", r.ID, in.State))
			continue
		}
		if r.Kind == "volume" {
			v, err := e.p.Volume(ctx, r.ID)
			if cloud.IsNotFound(err) || err == nil && v.State == cloud.VolumeDeleting {
				continue // deleted, on its way out (its tags go with it)
			}
		}
		left = append(left, r.Kind+" "+r.ID)
	}
	out, err := e.p.Client().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Volumes {
		if v.State != "deleting" { // deleted, on its way out
			left = append(left, fmt.Sprintf("volume %s (%s)", *v.VolumeId, v.State))
		}
	}
	return left
}

func (e *ec2Env) loadBuild(t *testing.T, id string) *install.Build {
	t.Helper()
	st, err := install.OpenStore(e.state)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ec2KS is the bake kickstart: the installer's own disk is sda, the target
// volume sdb; the installed system powers off after its marker.
const ec2KS = `text
zerombr
ignoredisk --only-use=sdb
clearpart --all --initlabel --drives=sdb
part / --fstype=ext4 --size=64 --grow
bootloader --location=mbr
rootpw --plaintext kscloud
%post
touch /etc/kscloud-poweroff-after-boot
%end
poweroff
`

type bakeOutput struct {
	Build  string
	Result install.Result
}

// TestE2EEC2BakeAndRun: kscloud bake --provider ec2 on the endpoint in
// node mode, with slow EC2 states and injected throttling and server
// errors: the installer EMI boots the test installer (EKI/ERI) with the
// kickstart inline in user-data (nchookd injects it), the target volume is
// created by the launch's block-device mapping at /dev/sdb and recorded at
// once, the install powers off, the volume is detached, snapshotted and
// registered; the requests per action stay bounded. Then kscloud run
// --image boots that image and returns at the installed system's marker.
func TestE2EEC2BakeAndRun(t *testing.T) {
	// Slow enough that a fixed 1 s poll would make ~80 requests on the
	// waits alone (launch 5 s, detach 10 s, snapshot 30 s, image 10 s,
	// terminate 10 s, volume delete 2 s).
	slow := ec2endpoint.Delays{
		InstancePending: 5 * time.Second, InstanceStopping: 3 * time.Second, InstanceShuttingDown: 10 * time.Second,
		VolumeCreating: 2 * time.Second, VolumeDeleting: 2 * time.Second, Attaching: 2 * time.Second, Detaching: 10 * time.Second,
		SnapshotStep: time.Second, SnapshotSteps: 30, ImagePending: 10 * time.Second, TerminatedRetention: 5 * time.Minute,
	}
	e := newEC2Env(t, &slow)
	ks := writeKS(t, ec2KS)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()

	e.srv.ResetCounts()
	// Errors the SDK retries (at most two in a row: it makes three attempts).
	e.srv.FailNext("DescribeInstances", 2, "RequestLimitExceeded")
	e.srv.FailNext("DescribeVolumes", 1, "Unavailable")
	e.srv.FailNext("CreateSnapshot", 1, "InternalError")
	e.srv.FailNext("DescribeSnapshots", 2, "InternalError")
	e.srv.FailNext("RegisterImage", 1, "Unavailable")
	start := time.Now()
	r := e.kscloud(t, ctx, append(e.bakeArgs(ks, "e2e-ec2"), "--output", "json", "-v")...)
	wall := time.Since(start)
	if r.code != 0 {
		t.Fatalf("bake: exit %d\n%s", r.code, r.stderr)
	}
	var out bakeOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("bake output %q: %v", r.stdout, err)
	}
	res := out.Result
	if !strings.HasPrefix(res.ImageID, "emi-") || res.Provenance == nil || res.Provenance.KickstartSHA256 != sha(ec2KS) {
		t.Fatalf("bake result: %+v", res)
	}
	if !strings.Contains(r.stderr, "ec2 provider") || !strings.Contains(r.stderr, "endpoint="+e.srv.URL()) || !strings.Contains(r.stderr, "credentials=\"env EC2_ACCESS_KEY\"") {
		t.Errorf("-v does not show the effective ec2 configuration:\n%s", r.stderr)
	}
	counts, total := e.counts()
	t.Logf("bake %s: %.0f s wall, install %.1f s, after the installer's power-off %.1f s; %d requests: %s",
		out.Build, wall.Seconds(), res.InstallSeconds, res.OverheadSeconds, total, fmtCounts(counts))

	// What the build recorded: the target volume from the launch's mapping,
	// by the launch step, right after the installer; all of it removed but
	// the snapshot and the image.
	b := e.loadBuild(t, out.Build)
	var kinds []string
	for _, rs := range b.Resources {
		kinds = append(kinds, rs.Kind+"/"+rs.Role)
		switch rs.Role {
		case "target":
			if rs.Step != "launch-installer" || rs.Kind != install.KindVolume || !rs.Deleted {
				t.Errorf("target volume record %+v: want a volume recorded by launch-installer, deleted at the end", rs)
			}
		case "installer":
			if !rs.Deleted {
				t.Errorf("installer %s not removed", rs.ID)
			}
		case "snapshot", "image":
			if rs.Deleted || !rs.Keep {
				t.Errorf("%s %s: want it kept", rs.Kind, rs.ID)
			}
		}
	}
	if got := strings.Join(kinds, " "); got != "instance/installer volume/target snapshot/snapshot image/image" {
		t.Errorf("build resources in order: %s", got)
	}
	if ud, err := userdataOf(b); err != nil || ud.Mode != userdata.ModeBake || string(ud.Kickstart) != ec2KS || !strings.Contains(ud.BootParams, "inst.ks=file:/ks.cfg") {
		t.Errorf("user-data %+v (%v): want a bake with the kickstart inline", ud, err)
	}
	if left := e.leftovers(t, out.Build); len(left) != 2 {
		t.Errorf("endpoint holds %v for the build: want only its snapshot and image", left)
	}
	snap, err := e.p.Snapshot(ctx, b.Resources[2].ID)
	if err != nil || snap.State != cloud.SnapshotCompleted {
		t.Errorf("snapshot: %+v, %v", snap, err)
	}

	// Requests: each retried failure shows; no action is hammered.
	for action, want := range map[string]int{"RunInstances": 1, "CreateSnapshot": 2, "RegisterImage": 2, "DetachVolume": 1, "TerminateInstances": 1} {
		if counts[action] != want {
			t.Errorf("%s: %d requests, want %d", action, counts[action], want)
		}
	}
	// Following the install reads the console and the state with a 2→10 s
	// backoff (jittered to 1–2 s after a reset) that restarts when the
	// console grows: even with the console growing all the time that is
	// ≤ 1.33 requests per second of install, where a fixed 1 s poll makes 2.
	// The rest: the launch, the waits for the end of the install and the
	// terminate (each ≤ 5 describes), the injected failures.
	if follow := counts["DescribeInstances"] + counts["GetConsoleOutput"]; float64(follow) > 1.4*res.InstallSeconds+25 {
		t.Errorf("%d DescribeInstances+GetConsoleOutput for a %.0f s install: the console is polled too often", follow, res.InstallSeconds)
	}
	// Everything else is one call per change and the waits on EC2's slow
	// states with a 1→15 s backoff (a 30 s snapshot: ~5 describes).
	if other := total - counts["DescribeInstances"] - counts["GetConsoleOutput"]; other > 55 {
		t.Errorf("%d requests besides following the install: the waits poll too often (%s)", other, fmtCounts(counts))
	}
	if rate := float64(total) / wall.Seconds(); rate > 1.2 {
		t.Errorf("%.2f requests/s over the bake: too many", rate)
	}

	// (b) Boot the image: the installed system prints its marker.
	r = e.kscloud(t, ctx, "run", "--image", res.ImageID, "--output", "json", "--timeout", "20m")
	if r.code != 0 {
		t.Fatalf("run --image: exit %d\n%s", r.code, r.stderr)
	}
	var run bakeOutput
	if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
		t.Fatalf("run output %q: %v", r.stdout, err)
	}
	if run.Result.Marker != "kscloud-installed sha256="+sha(ec2KS) || !strings.HasPrefix(run.Result.InstanceID, "i-") || len(run.Result.Addresses) == 0 {
		t.Fatalf("run --image result %+v\n%s", run.Result, r.stderr)
	}
	inst, err := e.p.Instance(ctx, run.Result.InstanceID)
	if err != nil || inst.ImageID != res.ImageID {
		t.Fatalf("instance %s: %+v, %v: want one of image %s", run.Result.InstanceID, inst, err, res.ImageID)
	}
	if err := e.p.TerminateInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
}

// TestE2EEC2BakeResume: a bake killed with SIGKILL while its snapshot is
// pending (a slow snapshot makes the window wide) resumes with kscloud
// bake --resume: the recorded snapshot is waited for, not retaken, the
// installer (already stopped) is not launched again, and the build ends
// with its image and nothing else left.
func TestE2EEC2BakeResume(t *testing.T) {
	d := ec2endpoint.DefaultDelays
	d.SnapshotStep, d.SnapshotSteps = time.Second, 45
	e := newEC2Env(t, &d)
	ks := writeKS(t, ec2KS)
	e.srv.ResetCounts()
	cmd := e.cmd(nil, e.bakeArgs(ks, "e2e-resume")...)
	se := new(testenv.Buffer)
	cmd.Stderr = se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Minute)
	for !strings.Contains(se.String(), "snapshot snap-") {
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			cmd.Process.Kill()
			t.Fatalf("the snapshot never started:\n%s", se.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	id := buildID(t, se.String())
	b := e.loadBuild(t, id)
	snap, ok := b.Resource("snapshot")
	if !ok || b.Status != install.StatusRunning {
		t.Fatalf("killed build %s: status %s, resources %s: want running with a snapshot recorded", id, b.Status, b.ResourceSummary())
	}
	s, err := e.p.Snapshot(context.Background(), snap.ID)
	if err != nil || s.State != cloud.SnapshotPending {
		t.Fatalf("snapshot %s after the kill: %+v, %v: want it still pending", snap.ID, s, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r := e.kscloud(t, ctx, "bake", "--resume", id, "--output", "json")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	var out bakeOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || !strings.HasPrefix(out.Result.ImageID, "emi-") {
		t.Fatalf("resume result %q: %v", r.stdout, err)
	}
	im, err := e.p.Image(ctx, out.Result.ImageID)
	if err != nil || im.SnapshotID != snap.ID || im.State != cloud.ImageAvailable {
		t.Fatalf("image %+v, %v: want it available, from the snapshot %s taken before the kill", im, err, snap.ID)
	}
	if n, m := e.srv.Count("CreateSnapshot"), e.srv.Count("RunInstances"); n != 1 || m != 1 {
		t.Errorf("%d CreateSnapshot and %d RunInstances over the bake and its resume: want 1 and 1", n, m)
	}
	if left := e.leftovers(t, id); len(left) != 2 {
		t.Errorf("after the resumed bake the endpoint holds %v: want only the snapshot and the image", left)
	}
	counts, total := e.counts()
	t.Logf("bake + resume: %d requests: %s", total, fmtCounts(counts))
}

// TestE2EEC2RunInPlace: kscloud run --provider ec2 --ks URL installs in
// place: the user-data says kscloud.mode=in-place, the installer fetches
// the kickstart from the host (10.0.2.2) and installs onto the instance's
// own root disk (sda), reboots, nchookd boots that disk under the same
// instance, and kscloud returns at the marker with the instance and its
// address.
func TestE2EEC2RunInPlace(t *testing.T) {
	e := newEC2Env(t, nil)
	// %pre waits a little: the VNC console is checked during the install.
	ksText := strings.NewReplacer("sdb", "sda", "poweroff\n", "reboot\n").Replace(ec2KS) + "%pre\nsleep 20\n%end\n"
	url := serveKS(t, ksText)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := e.cmd(ctx, "run", "--ks", url, "--installer-image", e.emi, "--kernel", e.eki, "--initrd", e.eri, "--vnc",
		"--extra-args", "no_timer_check", "--timeout", "30m", "--inactivity", "10m", "--output", "json")
	var so bytes.Buffer
	se := new(testenv.Buffer)
	cmd.Stdout, cmd.Stderr = &so, se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// kscloud announces the VNC console nchookd noted in the console
	// output; kscloud vnc gives its location and password, the ones
	// nchookd on the node reports, and a VNC server answers there.
	deadline := time.Now().Add(10 * time.Minute)
	for !strings.Contains(se.String(), "VNC console: vnc://") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no VNC console announced:\n%s", se.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	id := buildID(t, se.String())
	vr := e.kscloud(t, ctx, "vnc", id, "--output", "json")
	var v consolenote.VNC
	if vr.code != 0 || json.Unmarshal([]byte(vr.stdout), &v) != nil {
		cmd.Process.Kill()
		t.Fatalf("kscloud vnc during the install: exit %d %q\n%s", vr.code, vr.stdout, vr.stderr)
	}
	host, _ := os.Hostname()
	if v.Host != "127.0.0.1" || v.Node != host || len(v.Password) != 8 || !strings.HasPrefix(v.Instance, "i-") {
		t.Errorf("kscloud vnc: %+v: want loopback on node %s with an 8-character password", v, host)
	}
	if st, err := status(t, e.node, v.Instance); err != nil || st.VNC == nil || st.VNC.Port != v.Port || st.VNC.Password != v.Password {
		t.Errorf("nchookd status %+v (%v): kscloud vnc says port %d password %s", st.VNC, err, v.Port, v.Password)
	}
	if banner, err := rfbBanner(v.Host, v.Port); err != nil || !strings.HasPrefix(banner, "RFB 003.") {
		t.Errorf("no VNC server at %s: %q, %v", v.URL(), banner, err)
	}
	if vt := e.kscloud(t, ctx, "vnc", id); vt.code != 0 || !strings.Contains(vt.stdout, "tunnel\tssh -N -L") {
		t.Errorf("kscloud vnc (text): exit %d\n%s%s", vt.code, vt.stdout, vt.stderr)
	} else {
		t.Logf("kscloud vnc during the install:\n%s", vt.stdout)
	}
	err := cmd.Wait()
	r := result{stdout: so.String(), stderr: se.String()}
	if err != nil {
		t.Fatalf("run: %v\n%s", err, r.stderr)
	}
	if strings.Contains(r.stderr, v.Password) {
		t.Errorf("kscloud run printed the VNC password on stderr:\n%s", r.stderr)
	}
	// After the install the console is gone, and kscloud vnc says so.
	if vr := e.kscloud(t, ctx, "vnc", id); vr.code != 1 || !strings.Contains(vr.stderr, "install has ended") || strings.Count(vr.stderr, "\n") != 1 {
		t.Errorf("kscloud vnc after the install: exit %d, want 1 and one line saying it ended:\n%s", vr.code, vr.stderr)
	}
	var out bakeOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("run output %q: %v", r.stdout, err)
	}
	res := out.Result
	if res.Marker != "kscloud-installed sha256="+sha(ksText) || !strings.HasPrefix(res.InstanceID, "i-") || !contains(res.Addresses, "10.0.2.15") {
		t.Fatalf("run result %+v\n%s", res, r.stderr)
	}
	b := e.loadBuild(t, out.Build)
	ud, err := userdataOf(b)
	if err != nil || ud.Mode != userdata.ModeInPlace || !ud.VNC || !strings.Contains(ud.BootParams, "inst.ks="+url) || ud.Kickstart != nil {
		t.Errorf("user-data %+v (%v): want kscloud.mode=in-place, kscloud.vnc=yes and inst.ks=%s, no inline kickstart", ud, err, url)
	}
	st := waitPhase(t, e.node, res.InstanceID, "final", 2*time.Minute)
	if st.Mode != "in-place" {
		t.Errorf("nchookd record: %+v", st)
	}
	inst, err := e.p.Instance(ctx, res.InstanceID)
	if err != nil || inst.State == cloud.InstanceTerminated || inst.State == cloud.InstanceShuttingDown {
		t.Errorf("instance after the install in place: %+v, %v: want it kept", inst, err)
	}
	if err := e.p.TerminateInstance(ctx, res.InstanceID); err != nil {
		t.Fatal(err)
	}
}

// rfbBanner reads the protocol version a VNC server sends first.
func rfbBanner(host string, port int) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 12)
	_, err = io.ReadFull(c, b)
	return string(b), err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// userdataOf parses the user-data a build launched with, as nchookd does.
func userdataOf(b *install.Build) (*userdata.Request, error) {
	if b.Plan == nil {
		return nil, errors.New("build " + b.ID + " has no plan")
	}
	return userdata.Parse(b.Plan.UserData, userdata.Limits{})
}

// TestE2EEC2Interrupt: a bake interrupted before its snapshot leaves
// nothing on the cloud, whether SIGINT lets it clean up or SIGKILL leaves
// it to kscloud cleanup ID; kscloud cleanup --orphans removes what a
// killed bake whose state file is gone left, by its tags.
func TestE2EEC2Interrupt(t *testing.T) {
	e := newEC2Env(t, nil)
	ks := writeKS(t, ec2KS)
	start := func() (*exec.Cmd, *testenv.Buffer) {
		cmd := e.cmd(nil, e.bakeArgs(ks, "e2e-int")...)
		se := new(testenv.Buffer)
		cmd.Stderr = se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Minute)
		for !strings.Contains(se.String(), "following the install") {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("the install never started:\n%s", se.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		return cmd, se
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cleanup := func(t *testing.T, id string) {
		t.Helper()
		if r := e.kscloud(t, ctx, "cleanup", id); r.code != 0 {
			t.Fatalf("cleanup %s: exit %d\n%s", id, r.code, r.stderr)
		}
	}
	t.Run("sigint", func(t *testing.T) {
		cmd, se := start()
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Fatalf("exit: %v\n%s", err, se)
		}
		id := buildID(t, se.String())
		b := e.loadBuild(t, id)
		if _, ok := b.Resource("target"); ok {
			t.Errorf("the interrupted bake's cleanup left its target volume recorded as live: %s", b.ResourceSummary())
		}
		if left := e.leftovers(t, id); len(left) != 0 {
			t.Errorf("SIGINT left %v\n%s", left, se)
		}
		cleanup(t, id)
		if left := e.leftovers(t, id); len(left) != 0 {
			t.Errorf("cleanup after SIGINT: %v", left)
		}
	})
	t.Run("sigkill-cleanup", func(t *testing.T) {
		cmd, se := start()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		id := buildID(t, se.String())
		b := e.loadBuild(t, id)
		if _, ok := b.Resource("target"); !ok {
			t.Errorf("the killed bake had not recorded its target volume before following the install: %s", b.ResourceSummary())
		}
		if left := e.leftovers(t, id); len(left) == 0 {
			t.Fatal("the killed bake left nothing: the test does not test cleanup")
		}
		cleanup(t, id)
		if left := e.leftovers(t, id); len(left) != 0 {
			t.Errorf("kscloud cleanup %s left %v", id, left)
		}
		if b := e.loadBuild(t, id); b.Status != install.StatusCleaned {
			t.Errorf("build status after cleanup: %s", b.Status)
		}
	})
	t.Run("orphans", func(t *testing.T) {
		cmd, se := start()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		id := buildID(t, se.String())
		if err := os.Remove(filepath.Join(e.state, "builds", id+".json")); err != nil {
			t.Fatal(err)
		}
		if left := e.leftovers(t, id); len(left) == 0 {
			t.Fatal("the killed bake left nothing: the test does not test the sweep")
		}
		r := e.kscloud(t, ctx, "cleanup", "--orphans")
		if r.code != 0 || !strings.Contains(r.stderr, "removed orphan volume") {
			t.Fatalf("cleanup --orphans: exit %d\n%s", r.code, r.stderr)
		}
		if left := e.leftovers(t, id); len(left) != 0 {
			t.Errorf("cleanup --orphans left %v\n%s", left, r.stderr)
		}
	})
}

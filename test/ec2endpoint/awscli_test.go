package ec2endpoint_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// awsBin is Debian's awscli. Always this path: a pyenv or pip "aws" found
// first on PATH is another client (and another version).
const awsBin = "/usr/bin/aws"

// awsWaiters is where Debian's awscli keeps EC2's waiter definitions.
const awsWaiters = "/usr/lib/python3/dist-packages/awscli/botocore/data/ec2/2016-11-15/waiters-2.json"

// awsCLI runs Debian's awscli against an endpoint through a capturing
// proxy, configured by environment only (no ~/.aws).
type awsCLI struct {
	t        *testing.T
	env      []string
	endpoint string
	proxy    *capture
}

// exchange is one request awscli sent and the endpoint's answer.
type exchange struct {
	action string
	status int
	body   []byte
}

// capture is a reverse proxy on 127.0.0.1 that keeps every answer, so the
// test can check what awscli read against EC2's shape.
type capture struct {
	mu  sync.Mutex
	log []exchange
	url string
}

func startCapture(t *testing.T, target string) *capture {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		action := ""
		if resp.Request != nil {
			action = resp.Request.Header.Get("X-Capture-Action")
		}
		c.mu.Lock()
		c.log = append(c.log, exchange{action: action, status: resp.StatusCode, body: body})
		c.mu.Unlock()
		return nil
	}
	director := rp.Director
	rp.Director = func(r *http.Request) {
		// The action, for the log: awscli POSTs a form body.
		if b, err := io.ReadAll(r.Body); err == nil {
			r.Body = io.NopCloser(bytes.NewReader(b))
			if q, err := url.ParseQuery(string(b)); err == nil {
				r.Header.Set("X-Capture-Action", q.Get("Action"))
			}
		}
		host := r.Host
		director(r)
		r.Host = host // signed by awscli: the endpoint verifies this Host
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c.url = "http://" + ln.Addr().String() + u.Path
	return c
}

func (c *capture) take() []exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.log
	c.log = nil
	return out
}

// requireAWSCLI skips (off CI) or fails (CI) without Debian's awscli.
func requireAWSCLI(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(awsBin); err == nil {
		if _, err := os.Stat(awsWaiters); err == nil {
			return
		}
	}
	msg := "needs Debian's awscli at " + awsBin + " (apt-get install awscli, or scripts/deps.sh); an aws elsewhere on PATH (pyenv, pip) is not used"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func newAWSCLI(t *testing.T, srv *ec2endpoint.Server, secret string) *awsCLI {
	t.Helper()
	requireAWSCLI(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	// No retries: every answer is the endpoint's first.
	if err := os.WriteFile(cfg, []byte("[default]\nretry_mode = standard\nmax_attempts = 1\ncli_pager =\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// EC2's own waiter definitions (acceptors, max attempts), polling
	// every second instead of 15: the endpoint's delays are short.
	w, err := os.ReadFile(awsWaiters)
	if err != nil {
		t.Fatal(err)
	}
	w = regexp.MustCompile(`"delay":\s*\d+`).ReplaceAll(w, []byte(`"delay": 1`))
	wdir := filepath.Join(dir, "models", "ec2", "2016-11-15")
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wdir, "waiters-2.json"), w, 0o600); err != nil {
		t.Fatal(err)
	}
	if secret == "" {
		secret = srv.SecretKey()
	}
	proxy := startCapture(t, srv.URL())
	env := []string{
		"PATH=/usr/bin:/bin", "HOME=" + dir, "LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey(), "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=" + cfg,
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_DATA_PATH=" + filepath.Join(dir, "models"), "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true",
	}
	return &awsCLI{t: t, env: env, endpoint: proxy.url, proxy: proxy}
}

// run runs aws ec2 ARGS and returns stdout, stderr and the exit code.
func (a *awsCLI) run(args ...string) ([]byte, string, int) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{"--endpoint-url", a.endpoint, "--output", "json", "--no-cli-pager", "ec2"}, args...)
	cmd := exec.CommandContext(ctx, awsBin, full...)
	cmd.Env = a.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			a.t.Fatalf("aws ec2 %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return out.Bytes(), errb.String(), code
}

// ok runs a command that must succeed and decodes its JSON into v (nil: ignore).
func (a *awsCLI) ok(v any, args ...string) {
	a.t.Helper()
	out, stderr, code := a.run(args...)
	if code != 0 {
		a.t.Fatalf("aws ec2 %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			a.t.Fatalf("aws ec2 %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// fails runs a command that must fail with EC2 error code.
func (a *awsCLI) fails(code string, args ...string) {
	a.t.Helper()
	_, stderr, exit := a.run(args...)
	want := "An error occurred (" + code + ")"
	if exit == 0 || !strings.Contains(stderr, want) {
		a.t.Errorf("aws ec2 %s: exit %d, stderr %q; want %q", strings.Join(args, " "), exit, strings.TrimSpace(stderr), want)
	}
}

// checkShape checks every captured answer: a success is ACTIONResponse in
// the 2016-11-15 namespace with a requestId; an error is EC2's
// <Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors><RequestID>.
func (a *awsCLI) checkShape() int {
	a.t.Helper()
	n := 0
	for _, x := range a.proxy.take() {
		n++
		if x.status == http.StatusOK {
			want := xml.Name{Space: "http://ec2.amazonaws.com/doc/2016-11-15/", Local: x.action + "Response"}
			if got := rootOf(a.t, x.body); got != want {
				a.t.Errorf("%s: root {%s}%s, want {%s}%s", x.action, got.Space, got.Local, want.Space, want.Local)
			}
			var h struct {
				RequestID string `xml:"requestId"`
			}
			if xml.Unmarshal(x.body, &h); h.RequestID == "" {
				a.t.Errorf("%s: no requestId\n%s", x.action, x.body)
			}
			continue
		}
		var e struct {
			XMLName xml.Name
			Errors  []struct{ Code, Message string } `xml:"Errors>Error"`
			ReqID   string                           `xml:"RequestID"`
		}
		if err := xml.Unmarshal(x.body, &e); err != nil || e.XMLName.Local != "Response" || len(e.Errors) != 1 || e.Errors[0].Code == "" || e.ReqID == "" {
			a.t.Errorf("%s: HTTP %d error not in EC2's shape (%v)\n%s", x.action, x.status, err, x.body)
		}
	}
	return n
}

// TestAWSCLIBakeFlow: Debian's awscli (a real EC2 client nobody here
// wrote) drives the endpoint through kscloud's bake flow with EC2's own
// waiters, then through the documented mistakes.
func TestAWSCLIBakeFlow(t *testing.T) {
	requireAWSCLI(t)
	start := time.Now()
	d := fast
	d.SnapshotStep, d.SnapshotSteps = 200*time.Millisecond, 5
	d.InstancePending = 1500 * time.Millisecond // at least one waiter poll sees pending
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: ec2endpoint.DialectAWS, Delays: &d, Zones: []string{"us-east-1a"}})
	aws := newAWSCLI(t, srv, "")
	kernel, err := srv.AddKernel("/boot/vmlinuz-test")
	if err != nil {
		t.Fatal(err)
	}
	ramdisk, err := srv.AddRamdisk("/boot/initrd-test")
	if err != nil {
		t.Fatal(err)
	}

	var zones struct {
		AvailabilityZones []struct{ ZoneName, State, RegionName string }
	}
	aws.ok(&zones, "describe-availability-zones")
	if len(zones.AvailabilityZones) != 1 || zones.AvailabilityZones[0].ZoneName != "us-east-1a" || zones.AvailabilityZones[0].State != "available" {
		t.Fatalf("zones %+v", zones)
	}

	// A root snapshot: volume, snapshot with progress, image.
	var vol struct{ VolumeId, State string }
	aws.ok(&vol, "create-volume", "--availability-zone", "us-east-1a", "--size", "1",
		"--tag-specifications", "ResourceType=volume,Tags=[{Key=kscloud,Value=root}]")
	if vol.State != "creating" {
		t.Errorf("create-volume: state %q, want creating", vol.State)
	}
	aws.ok(nil, "wait", "volume-available", "--volume-ids", vol.VolumeId)
	var snap struct{ SnapshotId, State, Progress string }
	srv.HoldSnapshots()
	aws.ok(&snap, "create-snapshot", "--volume-id", vol.VolumeId, "--description", "kscloud root")
	var ds struct {
		Snapshots []struct{ State, Progress string }
	}
	aws.ok(&ds, "describe-snapshots", "--snapshot-ids", snap.SnapshotId)
	if len(ds.Snapshots) != 1 || ds.Snapshots[0].State != "pending" || !regexp.MustCompile(`^[1-9][0-9]?%$`).MatchString(ds.Snapshots[0].Progress) {
		t.Errorf("describe-snapshots while pending: %+v, want pending with a progress of 1%%-99%%", ds)
	}
	srv.ReleaseSnapshots()
	aws.ok(nil, "wait", "snapshot-completed", "--snapshot-ids", snap.SnapshotId)
	aws.ok(&ds, "describe-snapshots", "--snapshot-ids", snap.SnapshotId)
	if ds.Snapshots[0].State != "completed" || ds.Snapshots[0].Progress != "100%" {
		t.Errorf("describe-snapshots once completed: %+v", ds)
	}
	var img struct{ ImageId string }
	aws.ok(&img, "register-image", "--name", "kscloud-awscli", "--root-device-name", "/dev/sda1",
		"--architecture", "x86_64", "--kernel-id", kernel, "--ramdisk-id", ramdisk,
		"--block-device-mappings", `[{"DeviceName":"/dev/sda1","Ebs":{"SnapshotId":"`+snap.SnapshotId+`","DeleteOnTermination":true}},{"DeviceName":"/dev/sdc","VirtualName":"ephemeral0"}]`)
	aws.ok(nil, "wait", "image-available", "--image-ids", img.ImageId)
	var imgs struct {
		Images []struct {
			ImageId, State, KernelId, RamdiskId, RootDeviceName, RootDeviceType string
			BlockDeviceMappings                                                 []struct {
				DeviceName, VirtualName string
				Ebs                     *struct{ SnapshotId string }
			}
		}
	}
	aws.ok(&imgs, "describe-images", "--image-ids", img.ImageId)
	if len(imgs.Images) != 1 || imgs.Images[0].KernelId != kernel || imgs.Images[0].RamdiskId != ramdisk || imgs.Images[0].RootDeviceType != "ebs" ||
		len(imgs.Images[0].BlockDeviceMappings) == 0 || imgs.Images[0].BlockDeviceMappings[0].Ebs == nil || imgs.Images[0].BlockDeviceMappings[0].Ebs.SnapshotId != snap.SnapshotId {
		t.Errorf("describe-images: %+v", imgs)
	}

	// The installer instance: a new EBS volume, user-data, tags at launch.
	userData := "#kscloud\nbootparams=inst.ks=file:/ks.cfg\n"
	var run struct {
		ReservationId string
		Groups        []struct{ GroupName string }
		Instances     []struct {
			InstanceId string
			State      struct{ Name string }
			Tags       []struct{ Key, Value string }
		}
	}
	aws.ok(&run, "run-instances", "--image-id", img.ImageId, "--count", "1", "--instance-type", "m1.small",
		"--user-data", userData,
		"--block-device-mappings", `[{"DeviceName":"/dev/sdb","Ebs":{"VolumeSize":2,"DeleteOnTermination":true}}]`,
		"--tag-specifications", "ResourceType=instance,Tags=[{Key=kscloud,Value=installer}]", "ResourceType=volume,Tags=[{Key=kscloud,Value=installer}]")
	if len(run.Instances) != 1 || run.Instances[0].State.Name != "pending" || len(run.Groups) == 0 {
		t.Fatalf("run-instances: %+v", run)
	}
	id := run.Instances[0].InstanceId
	if len(run.Instances[0].Tags) != 1 {
		t.Errorf("run-instances: tags %+v, want kscloud=installer from the tag specification", run.Instances[0].Tags)
	}
	aws.ok(nil, "wait", "instance-running", "--instance-ids", id)
	var di struct {
		Reservations []struct {
			Instances []struct {
				InstanceId, KernelId, RamdiskId, RootDeviceName string
				State                                           struct{ Name string }
				Monitoring                                      struct{ State string }
				SecurityGroups                                  []struct{ GroupName string }
				BlockDeviceMappings                             []struct {
					DeviceName string
					Ebs        struct {
						VolumeId, Status    string
						DeleteOnTermination bool
					}
				}
			}
		}
	}
	aws.ok(&di, "describe-instances", "--instance-ids", id)
	x := di.Reservations[0].Instances[0]
	if x.State.Name != "running" || x.KernelId != kernel || x.RamdiskId != ramdisk || x.Monitoring.State != "disabled" || len(x.SecurityGroups) == 0 || len(x.BlockDeviceMappings) != 2 {
		t.Errorf("describe-instances: %+v", x)
	}
	var ud struct{ UserData struct{ Value string } }
	aws.ok(&ud, "describe-instance-attribute", "--instance-id", id, "--attribute", "userData")
	if got, _ := decodeB64(ud.UserData.Value); got != userData {
		t.Errorf("describe-instance-attribute userData: %q, want %q", got, userData)
	}
	var vols struct{ Volumes []struct{ VolumeId string } }
	aws.ok(&vols, "describe-volumes", "--filters", "Name=tag:kscloud,Values=installer", "Name=attachment.instance-id,Values="+id)
	if len(vols.Volumes) != 2 {
		t.Errorf("volumes tagged at launch and attached to %s: %d, want 2 (root and /dev/sdb)", id, len(vols.Volumes))
	}

	// The console, as the guest wrote it.
	if err := srv.AppendConsole(id, []byte("anaconda: Installing 42/300 packages\n")); err != nil {
		t.Fatal(err)
	}
	var con struct{ InstanceId, Output string }
	aws.ok(&con, "get-console-output", "--instance-id", id)
	if !strings.Contains(con.Output, "Installing 42/300 packages") {
		t.Errorf("get-console-output: %q", con.Output)
	}

	// Tags and filters.
	aws.ok(nil, "create-tags", "--resources", id, vol.VolumeId, "--tags", "Key=build,Value=b-1", "Key=Name,Value=awscli")
	var tagged struct {
		Reservations []struct{ Instances []struct{ InstanceId string } }
	}
	aws.ok(&tagged, "describe-instances", "--filters", "Name=tag:build,Values=b-*", "Name=instance-state-name,Values=running")
	if len(tagged.Reservations) != 1 || tagged.Reservations[0].Instances[0].InstanceId != id {
		t.Errorf("describe-instances by tag: %+v", tagged)
	}
	var tags struct {
		Tags []struct{ ResourceId, ResourceType, Key, Value string }
	}
	aws.ok(&tags, "describe-tags", "--filters", "Name=key,Values=build")
	if len(tags.Tags) != 2 {
		t.Errorf("describe-tags key=build: %+v", tags.Tags)
	}

	// A data volume: attach, detach, delete.
	var data struct{ VolumeId string }
	aws.ok(&data, "create-volume", "--availability-zone", "us-east-1a", "--size", "1")
	aws.ok(nil, "wait", "volume-available", "--volume-ids", data.VolumeId)
	var att struct{ State, Device string }
	aws.ok(&att, "attach-volume", "--volume-id", data.VolumeId, "--instance-id", id, "--device", "/dev/sdf")
	if att.State != "attaching" || att.Device != "/dev/sdf" {
		t.Errorf("attach-volume: %+v", att)
	}
	aws.ok(nil, "wait", "volume-in-use", "--volume-ids", data.VolumeId)
	aws.fails("VolumeInUse", "delete-volume", "--volume-id", data.VolumeId)
	aws.ok(nil, "detach-volume", "--volume-id", data.VolumeId)
	aws.ok(nil, "wait", "volume-available", "--volume-ids", data.VolumeId)
	aws.fails("IncorrectState", "detach-volume", "--volume-id", data.VolumeId)
	aws.ok(nil, "delete-volume", "--volume-id", data.VolumeId)
	aws.ok(nil, "wait", "volume-deleted", "--volume-ids", data.VolumeId)

	// The installer powers off: stopped; then terminated.
	if err := srv.PowerOff(id); err != nil {
		t.Fatal(err)
	}
	aws.ok(nil, "wait", "instance-stopped", "--instance-ids", id)
	var reason struct {
		Reservations []struct {
			Instances []struct{ StateReason struct{ Code string } }
		}
	}
	aws.ok(&reason, "describe-instances", "--instance-ids", id)
	if c := reason.Reservations[0].Instances[0].StateReason.Code; c != "Client.InstanceInitiatedShutdown" {
		t.Errorf("state reason after a guest power-off: %q", c)
	}
	var term struct {
		TerminatingInstances []struct {
			InstanceId                  string
			CurrentState, PreviousState struct{ Name string }
		}
	}
	aws.ok(&term, "terminate-instances", "--instance-ids", id)
	if len(term.TerminatingInstances) != 1 || term.TerminatingInstances[0].PreviousState.Name != "stopped" || term.TerminatingInstances[0].CurrentState.Name != "shutting-down" {
		t.Errorf("terminate-instances: %+v", term)
	}
	aws.ok(nil, "wait", "instance-terminated", "--instance-ids", id)
	aws.fails("IncorrectInstanceState", "start-instances", "--instance-ids", id)
	aws.ok(nil, "deregister-image", "--image-id", img.ImageId)
	var none struct{ Images []any }
	aws.ok(&none, "describe-images", "--owners", "self", "--filters", "Name=name,Values=kscloud-awscli")
	if len(none.Images) != 0 {
		t.Errorf("describe-images after deregister-image: %+v", none.Images)
	}
	aws.ok(nil, "delete-snapshot", "--snapshot-id", snap.SnapshotId)
	aws.ok(nil, "delete-volume", "--volume-id", vol.VolumeId)

	// The documented mistakes, a few at a time (each awscli call starts
	// a Python interpreter).
	parallel(
		func() { aws.fails("InvalidInstanceID.NotFound", "describe-instances", "--instance-ids", "i-12345678") },
		func() { aws.fails("InvalidInstanceID.Malformed", "describe-instances", "--instance-ids", "i-xyz") },
		func() { aws.fails("InvalidVolume.NotFound", "describe-volumes", "--volume-ids", "vol-12345678") },
		func() { aws.fails("InvalidVolumeID.Malformed", "describe-volumes", "--volume-ids", "vol-xyz") },
		func() { aws.fails("InvalidSnapshot.NotFound", "describe-snapshots", "--snapshot-ids", "snap-12345678") },
		func() { aws.fails("InvalidSnapshotID.Malformed", "describe-snapshots", "--snapshot-ids", "snap-xyz") },
		func() { aws.fails("InvalidAMIID.Malformed", "describe-images", "--image-ids", "ami-xyz") },
		func() { aws.fails("InvalidAMIID.NotFound", "run-instances", "--image-id", "ami-12345678") },
		func() { aws.fails("InvalidParameterValue", "describe-volumes", "--filters", "Name=colour,Values=red") },
	)
	aws.ok(nil, "describe-volumes") // twice in a row: AWS has no replay check
	aws.ok(nil, "describe-volumes")
	flow := aws.checkShape()
	t.Logf("awscli flow: %d requests in %s", flow, time.Since(start).Round(time.Millisecond))

	wrong := newAWSCLI(t, srv, "not-the-secret")
	other := newAWSCLI(t, srv, "")
	other.env = append(other.env, "AWS_ACCESS_KEY_ID=AKIAUNKNOWN000000000")
	skewed := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: ec2endpoint.DialectAWS, Now: func() time.Time { return time.Now().Add(20 * time.Minute) }})
	late := newAWSCLI(t, skewed, "")
	// Eucalyptus 4.x binds no ClientToken on CreateVolume, which awscli
	// always sends: a real 4.x refuses awscli's create-volume so.
	euca := newAWSCLI(t, ec2endpoint.Start(t, ec2endpoint.Options{Dialect: ec2endpoint.DialectEucalyptus4}), "")
	parallel(
		func() {
			euca.fails("UnknownParameter", "create-volume", "--availability-zone", "PARTI00", "--size", "1")
		},
		func() { wrong.fails("SignatureDoesNotMatch", "describe-instances") },
		func() { other.fails("AuthFailure", "describe-instances") },
		func() { late.fails("RequestExpired", "describe-instances") }, // the client's clock 20 min behind
	)
	wrong.checkShape()
	other.checkShape()
	late.checkShape()
	euca.checkShape()
	t.Logf("awscli test: %s in all", time.Since(start).Round(time.Millisecond))
}

func decodeB64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

// parallel runs fns at most three at a time and waits for them all.
func parallel(fns ...func()) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for _, fn := range fns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn()
		}()
	}
	wg.Wait()
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// oneEnv is an OpenNebula on this host: the oned test endpoint in node
// mode (transient one-<ID> domains on the test libvirtd), the test
// installer, a one_auth file and a kscloud state directory.
type oneEnv struct {
	srv    *oneendpoint.Server
	p      *opennebula.Provider
	auth   string
	state  string
	kernel string
	initrd string
}

func newOneEnv(t *testing.T, deployFail ...string) *oneEnv {
	t.Helper()
	uri := testenv.Libvirt(t)
	k, i := testInstaller(t)
	e := &oneEnv{state: t.TempDir(), kernel: k, initrd: i}
	// Short scheduler and probe (oned's defaults: 10–30 s and 5 s × 5).
	e.srv = oneendpoint.Start(t, oneendpoint.Options{
		Node: &oneendpoint.Node{LibvirtURI: uri, ConsoleLog: os.Getenv("KSCLOUD_ONE_CONSOLE") != ""}, VNCStart: 20000 + rand.IntN(20000),
		Sched: 2 * time.Second, Prolog: time.Second, Boot: 500 * time.Millisecond,
		Monitor: 2 * time.Second, Misses: 3, Epilog: time.Second, Image: time.Second,
		DeployFail: strings.Join(deployFail, ""),
	})
	e.auth = filepath.Join(t.TempDir(), "one_auth")
	if err := os.WriteFile(e.auth, []byte(e.srv.Session()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.p, err = opennebula.New(context.Background(), opennebula.Config{Endpoint: e.srv.URL(), Session: e.srv.Session()}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *oneEnv) cmd(ctx context.Context, args ...string) *exec.Cmd {
	args = append(args, "--provider", "opennebula", "--state-dir", e.state)
	cmd := exec.CommandContext(ctx, bins.kscloud, args...)
	cmd.Env = append(os.Environ(), "ONE_XMLRPC="+e.srv.URL(), "ONE_AUTH="+e.auth)
	return cmd
}

func (e *oneEnv) kscloud(t *testing.T, ctx context.Context, args ...string) result {
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

// waitStopped waits for a VM to power itself off (POWEROFF): the
// installed system of minimal.ks does so after its marker, an empty disk
// or the installer looping would not.
func (e *oneEnv) waitStopped(t *testing.T, id string, within time.Duration) {
	t.Helper()
	w := opennebulaWaiter
	w.Timeout = within
	if _, err := w.Instance(context.Background(), e.p, id, cloud.InstanceStopped); err != nil {
		t.Fatalf("%s did not power itself off (the installed system's marker then poweroff): %v", id, err)
	}
}

// TestE2EOpenNebula: with the test installer on real guests and the
// kickstart delivered on the CONTEXT CD-ROM (inst.ks=hd:LABEL=CONTEXT:…):
// bake → an image carrying the provenance → run --image boots the
// installed system; a bake killed (SIGKILL) while the installer runs is
// finished by --resume; run in place installs and boots the disk.
func TestE2EOpenNebula(t *testing.T) {
	e := newOneEnv(t)
	ks := writeKS(t, minimalKS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	start := time.Now()
	r := e.kscloud(t, ctx, "bake", "--ks", ks, "--kernel", e.kernel, "--initrd", e.initrd, "--name", "e2e-one", "--disk", "1", "--memory", "512", "--output", "json")
	if r.code != 0 {
		t.Fatalf("bake: exit %d\n%s", r.code, r.stderr)
	}
	var out bakeOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || !strings.HasPrefix(out.Result.ImageID, "img-") {
		t.Fatalf("bake output %q: %v", r.stdout, err)
	}
	t.Logf("bake: %s wall, install %.1f s, %.1f s beyond the installer's power-off (POWEROFF seen %s after the guest halts as configured)",
		time.Since(start).Round(time.Second), out.Result.InstallSeconds, out.Result.OverheadSeconds, e.srv.PowerOffDelay())
	n, _ := strconv.Atoi(strings.TrimPrefix(out.Result.ImageID, "img-"))
	attrs := e.srv.ImageAttrs(n)
	sum := install.SHA256(mustRead(t, ks))
	if attrs["KSCLOUD_KS_SHA256"] != sum || attrs["KSCLOUD_BUILD"] != out.Build || !strings.Contains(attrs["DESCRIPTION"], "Source: test.ks") || attrs["KSCLOUD_KERNEL_SHA256"] == "" {
		t.Errorf("image %s provenance %v: want ks sha256 %s, build %s, DESCRIPTION as seed 003", out.Result.ImageID, attrs, sum, out.Build)
	}

	r = e.kscloud(t, ctx, "run", "--image", out.Result.ImageID, "--output", "json")
	if r.code != 0 {
		t.Fatalf("run --image: exit %d\n%s", r.code, r.stderr)
	}
	var run bakeOutput
	json.Unmarshal([]byte(r.stdout), &run)
	e.waitStopped(t, run.Result.InstanceID, 5*time.Minute)

	// SIGKILL mid-bake, then --resume.
	cmd := e.cmd(ctx, "bake", "--ks", ks, "--kernel", e.kernel, "--initrd", e.initrd, "--name", "e2e-one-kill", "--disk", "1", "--memory", "512", "--output", "json")
	se := new(testenv.Buffer)
	cmd.Stderr = se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for !strings.Contains(se.String(), "RUNNING") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the installer never ran:\n%s", se.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	id := buildID(t, se.String())
	r = e.kscloud(t, ctx, "bake", "--resume", id, "--output", "json")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || !strings.HasPrefix(out.Result.ImageID, "img-") {
		t.Fatalf("resume output %q: %v", r.stdout, err)
	}
	if found, err := e.p.FindTagged(ctx, cloud.TagBuild, id); err != nil || len(found) != 1 || found[0].ID != out.Result.ImageID {
		t.Errorf("after the resumed bake, build %s holds %+v, %v: want only its image", id, found, err)
	}

	testOneInPlace(t, e, ks)
	counts := e.srv.Calls()
	t.Logf("calls over the whole test: %v", counts)
}

// testOneInPlace: the installer powers off, kscloud drops it and resumes
// the VM from its disk; the installed system then powers off itself.
func testOneInPlace(t *testing.T, e *oneEnv, ks string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var run bakeOutput
	r := e.kscloud(t, ctx, "run", "--ks", ks, "--kernel", e.kernel, "--initrd", e.initrd, "--disk", "1", "--memory", "512", "--output", "json", "--vnc")
	if r.code != 0 {
		for i := 0; i < 6; i++ {
			if b, err := os.ReadFile(filepath.Join(e.srv.VMDir(i), "console.log")); err == nil {
				t.Logf("console of vm-%d:\n%s", i, b)
			}
		}
		t.Fatalf("run in place: exit %d\n%s", r.code, r.stderr)
	}
	json.Unmarshal([]byte(r.stdout), &run)
	e.waitStopped(t, run.Result.InstanceID, 5*time.Minute)
}

var opennebulaWaiter = cloudWaiter()

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// minimalKS is the test installer's minimal.ks.
func minimalKS(t *testing.T) string {
	return string(mustRead(t, "../installer/examples/minimal.ks"))
}

func cloudWaiter() (w wait.Waiter) {
	w.Initial, w.Max = time.Second, 5*time.Second
	return w
}

// TestE2EOpenNebulaCleanup: a bake killed (SIGKILL) right after its
// installer VM was released is removed by kscloud cleanup ID (VM, target,
// kickstart file; no one-<ID> domain left); cleanup --orphans then finds
// nothing of it; a deploy that fails reports oned's reason
// (USER_TEMPLATE/ERROR on BOOT_FAILURE) and leaves nothing.
func TestE2EOpenNebulaCleanup(t *testing.T) {
	e := newOneEnv(t)
	ks := writeKS(t, minimalKS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := e.cmd(ctx, "bake", "--ks", ks, "--kernel", e.kernel, "--initrd", e.initrd, "--name", "e2e-one-clean", "--disk", "1", "--memory", "512")
	se := new(testenv.Buffer)
	cmd.Stderr = se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(se.String(), " released: ") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the installer was never released:\n%s", se.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	id := buildID(t, se.String())
	if found, _ := e.p.FindTagged(ctx, cloud.TagBuild, id); len(found) < 3 {
		t.Fatalf("killed build %s holds %+v: want its VM, target and kickstart file", id, found)
	}
	r := e.kscloud(t, ctx, "cleanup", id)
	if r.code != 0 {
		t.Fatalf("cleanup %s: exit %d\n%s", id, r.code, r.stderr)
	}
	if found, err := e.p.FindTagged(ctx, cloud.TagBuild, id); err != nil || len(found) != 0 {
		t.Errorf("after cleanup, build %s holds %+v, %v", id, found, err)
	}
	if out, _ := exec.Command("virsh", "-c", testenv.Libvirt(t), "list", "--name").Output(); strings.Contains(string(out), "one-0\n") {
		t.Errorf("domain one-0 still runs after cleanup: %s", out)
	}
	if r := e.kscloud(t, ctx, "cleanup", "--orphans"); r.code != 0 || strings.Contains(r.stderr, "removed orphan") {
		t.Errorf("cleanup --orphans after cleanup: exit %d\n%s", r.code, r.stderr)
	}

	f := newOneEnv(t, "Cannot open kernel: No such file or directory")
	r = f.kscloud(t, ctx, "bake", "--ks", ks, "--kernel", f.kernel, "--initrd", f.initrd, "--name", "e2e-one-fail", "--disk", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "BOOT_FAILURE") || !strings.Contains(r.stderr, "Error deploying virtual machine: Cannot open kernel") {
		t.Fatalf("failed deploy: exit %d\n%s", r.code, r.stderr)
	}
	id = buildID(t, r.stderr)
	if found, err := f.p.FindTagged(ctx, cloud.TagBuild, id); err != nil || len(found) != 0 {
		t.Errorf("after the failed bake, build %s holds %+v, %v", id, found, err)
	}
}

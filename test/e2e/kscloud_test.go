package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/testenv"
)

// installer builds the project's test installer once per test binary.
var installerDir string

func testInstaller(t testing.TB) (kernel, initrd string) {
	t.Helper()
	if installerDir == "" {
		dir := filepath.Join(bins.dir, "test-installer")
		cmd := exec.Command("../installer/build.sh", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("test installer: %v\n%s", err, out)
		}
		installerDir = dir
	}
	return filepath.Join(installerDir, "vmlinuz"), filepath.Join(installerDir, "initrd.img")
}

// ksEnv is one kscloud user on the host: a state directory, the pools
// that come with it (removed at the end).
type ksEnv struct {
	state string
	uri   string
}

func newKsEnv(t *testing.T) *ksEnv {
	t.Helper()
	e := &ksEnv{state: t.TempDir(), uri: testenv.Libvirt(t)}
	t.Cleanup(func() {
		// Remove what a failing test may have left, then the pools.
		out, _ := exec.Command("virsh", "-c", e.uri, "list", "--all", "--name").Output()
		for _, name := range strings.Fields(string(out)) {
			reg := filepath.Join(e.state, "local", name+".json")
			if _, err := os.Stat(reg); err == nil {
				exec.Command("virsh", "-c", e.uri, "destroy", name).Run()
				exec.Command("virsh", "-c", e.uri, "undefine", name).Run()
			}
		}
		pools, _ := exec.Command("virsh", "-c", e.uri, "pool-list", "--all", "--name").Output()
		for _, p := range strings.Fields(string(pools)) {
			xml, _ := exec.Command("virsh", "-c", e.uri, "pool-dumpxml", p).Output()
			if bytes.Contains(xml, []byte(e.state)) {
				exec.Command("virsh", "-c", e.uri, "pool-destroy", p).Run()
				exec.Command("virsh", "-c", e.uri, "pool-undefine", p).Run()
			}
		}
	})
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *ksEnv) kscloud(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, bins.kscloud, append(args, "--state-dir", e.state, "--connect", e.uri)...)
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

// leftovers lists domains and volumes the env still holds.
func (e *ksEnv) leftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	ents, _ := os.ReadDir(filepath.Join(e.state, "volumes"))
	for _, en := range ents {
		left = append(left, "volume "+en.Name())
	}
	recs, _ := os.ReadDir(filepath.Join(e.state, "local"))
	for _, r := range recs {
		if !strings.HasPrefix(r.Name(), "i-") {
			continue
		}
		name := strings.TrimSuffix(r.Name(), ".json")
		if exec.Command("virsh", "-c", e.uri, "dominfo", name).Run() == nil {
			left = append(left, "domain "+name)
		}
	}
	return left
}

func writeKS(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.ks")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const baseKS = `text
zerombr
clearpart --all --initlabel
part / --fstype=ext4 --size=64 --grow
bootloader --location=mbr
rootpw --plaintext kscloud
%post
touch /etc/kscloud-poweroff-after-boot
%end
`

// tcgArgs: under software emulation on a busy host the kernel's timer
// check can fail ("IO-APIC + timer doesn't work!"); skip it.
const tcgArgs = "no_timer_check"

func sha(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// TestE2EKscloudBakeAndBoot: bake a kickstart into an image, then boot the
// image: the installed system prints the kickstart's sha256.
func TestE2EKscloudBakeAndBoot(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	ksText := baseKS + "poweroff\n"
	ks := writeKS(t, ksText)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := e.kscloud(t, ctx, "bake", "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--name", "e2e", "--output", "json")
	if r.code != 0 {
		t.Fatalf("bake: exit %d\n%s", r.code, r.stderr)
	}
	var out struct {
		Build  string
		Result install.Result
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("bake output %q: %v", r.stdout, err)
	}
	if out.Result.ImageID == "" || out.Result.Provenance == nil || out.Result.Provenance.KickstartSHA256 != sha(ksText) {
		t.Fatalf("bake result: %+v", out.Result)
	}
	// Sparse: the qcow2 holds far less than the 1 GiB volume.
	st, err := os.Stat(out.Result.ImagePath)
	if err != nil || st.Size() > 200<<20 {
		t.Fatalf("image %s: %v, size %d", out.Result.ImagePath, err, st.Size())
	}
	prov, err := os.ReadFile(strings.TrimSuffix(out.Result.ImagePath, ".qcow2") + ".provenance.json")
	if err != nil || !bytes.Contains(prov, []byte(sha(ksText))) || !bytes.Contains(prov, []byte("installer_kernel_sha256")) {
		t.Fatalf("provenance: %v\n%s", err, prov)
	}
	if left := e.leftovers(t); len(left) != 0 {
		t.Fatalf("bake left temporary resources: %v", left)
	}
	r = e.kscloud(t, ctx, "run", "--image", out.Result.ImageName)
	if r.code != 0 {
		t.Fatalf("run --image: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "kscloud-installed sha256="+sha(ksText)) {
		t.Fatalf("booted image did not print its marker:\n%s\n%s", r.stdout, r.stderr)
	}
	if r := e.kscloud(t, ctx, "images", "list"); !strings.Contains(r.stdout, out.Result.ImageName) {
		t.Fatalf("images list: %s", r.stdout)
	}
}

// TestE2EKscloudRunInPlace: install in place; the instance comes back from
// its disk (kscloud switches it; no nchookd here) and prints its marker.
func TestE2EKscloudRunInPlace(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	ksText := baseKS + "reboot\n"
	ks := writeKS(t, ksText)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := e.kscloud(t, ctx, "run", "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--ks-delivery", "http")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "kscloud-installed sha256="+sha(ksText)) {
		t.Fatalf("no marker:\n%s\n%s", r.stdout, r.stderr)
	}
}

// TestE2EKscloudKickstart404: the installer cannot fetch its kickstart: a
// clear error naming it, the last console lines, nothing left behind.
func TestE2EKscloudKickstart404(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	url := "http://10.0.2.2:" + port + "/missing.ks"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// From kscloud's side the URL is not reachable as 10.0.2.2: the
	// installer fetches it itself (--ks-delivery url) and lint is skipped.
	r := e.kscloud(t, ctx, "bake", "--ks", url, "--ks-delivery", "url", "--no-lint", "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs)
	if r.code == 0 {
		t.Fatalf("bake with a 404 kickstart succeeded:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "kickstart file not found") || !strings.Contains(r.stderr, "last console lines") {
		t.Fatalf("error does not say what happened:\n%s", r.stderr)
	}
	if left := e.leftovers(t); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	// kscloud fetching it itself (default delivery) fails before launching.
	r = e.kscloud(t, ctx, "bake", "--ks", "http://"+ln.Addr().String()+"/missing.ks", "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs)
	if r.code == 0 || !strings.Contains(r.stderr, "404") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 2 {
		t.Fatalf("local 404: exit %d\n%s", r.code, r.stderr)
	}
}

// TestE2EKscloudWatchdog: an installer that hangs (a %pre that sleeps)
// trips the inactivity watchdog; the error shows the last console lines.
func TestE2EKscloudWatchdog(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	ks := writeKS(t, "%pre\nsleep 100000\n%end\n"+baseKS+"poweroff\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := e.kscloud(t, ctx, "bake", "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--inactivity", "30s")
	if r.code == 0 {
		t.Fatal("a hanging install succeeded")
	}
	if !strings.Contains(r.stderr, "inactivity watchdog") || !strings.Contains(r.stderr, "pre-installation") {
		t.Fatalf("watchdog error without reason or console lines:\n%s", r.stderr)
	}
	if left := e.leftovers(t); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestE2EKscloudInterrupt: SIGINT during a bake cleans up (or keeps with
// --keep-on-error); a bake killed with SIGKILL resumes and finishes.
func TestE2EKscloudInterrupt(t *testing.T) {
	k, i := testInstaller(t)
	ks := writeKS(t, baseKS+"poweroff\n")
	start := func(e *ksEnv, extra ...string) (*exec.Cmd, *testenv.Buffer) {
		args := append([]string{"bake", "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--state-dir", e.state, "--connect", e.uri}, extra...)
		cmd := exec.Command(bins.kscloud, args...)
		se := new(testenv.Buffer)
		cmd.Stderr = se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, se
	}
	waitFor := func(se *testenv.Buffer, s string) {
		deadline := time.Now().Add(5 * time.Minute)
		for !strings.Contains(se.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("never saw %q:\n%s", s, se.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Run("sigint", func(t *testing.T) {
		e := newKsEnv(t)
		cmd, se := start(e)
		waitFor(se, "following the install")
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Fatalf("exit: %v\n%s", err, se)
		}
		if left := e.leftovers(t); len(left) != 0 {
			t.Fatalf("SIGINT left: %v\n%s", left, se)
		}
	})
	t.Run("sigint-keep", func(t *testing.T) {
		e := newKsEnv(t)
		cmd, se := start(e, "--keep-on-error")
		waitFor(se, "following the install")
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		left := e.leftovers(t)
		if len(left) < 2 || !strings.Contains(se.String(), "kept") {
			t.Fatalf("--keep-on-error kept %v\n%s", left, se)
		}
		id := buildID(t, se.String())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if r := e.kscloud(t, ctx, "cleanup", id); r.code != 0 {
			t.Fatalf("cleanup: %s", r.stderr)
		}
		if left := e.leftovers(t); len(left) != 0 {
			t.Fatalf("cleanup left %v", left)
		}
	})
	t.Run("sigkill-resume", func(t *testing.T) {
		e := newKsEnv(t)
		cmd, se := start(e)
		waitFor(se, "following the install")
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		id := buildID(t, se.String())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		r := e.kscloud(t, ctx, "bake", "--resume", id, "--output", "json")
		if r.code != 0 {
			t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, `"image_id"`) {
			t.Fatalf("resume result: %s", r.stdout)
		}
		if left := e.leftovers(t); len(left) != 0 {
			t.Fatalf("resume left %v", left)
		}
	})
}

func buildID(t *testing.T, stderr string) string {
	t.Helper()
	i := strings.Index(stderr, "build ks-")
	if i < 0 {
		t.Fatalf("no build id in:\n%s", stderr)
	}
	f := strings.Fields(stderr[i+len("build "):])
	return f[0]
}

// TestE2EKscloudWithNchookd: kscloud run in place on a host where nchookd
// runs: nchookd adopts the installer from its metadata and either of them
// boots the disk; the VNC console is there during the install (kscloud
// vnc) and gone after; the installer comes from an install tree
// (--location with a .treeinfo).
func TestE2EKscloudWithNchookd(t *testing.T) {
	e := newKsEnv(t)
	n := newNode(t)
	n.serve(t)
	k, i := testInstaller(t)
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "images", "pxeboot"), 0o755)
	for src, dst := range map[string]string{k: "images/pxeboot/vmlinuz", i: "images/pxeboot/initrd.img"} {
		b, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(tree, dst), b, 0o644)
	}
	os.WriteFile(filepath.Join(tree, ".treeinfo"), []byte("[general]\nfamily = kscloud-test\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n"), 0o644)
	ksText := baseKS + "reboot\n"
	ks := writeKS(t, ksText)
	cmd := exec.Command(bins.kscloud, "run", "--ks", ks, "--location", tree, "--disk", "1", "--extra-args", tcgArgs, "--vnc", "--state-dir", e.state, "--connect", e.uri)
	var so bytes.Buffer
	se := new(testenv.Buffer)
	cmd.Stdout, cmd.Stderr = &so, se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(se.String(), "launched") {
		if time.Now().After(deadline) {
			t.Fatalf("not launched:\n%s", se.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	id := buildID(t, se.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if r := e.kscloud(t, ctx, "vnc", id); r.code != 0 || !strings.Contains(r.stdout, "vnc://127.0.0.1:") {
		t.Fatalf("kscloud vnc during the install: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, se.String())
	}
	if !strings.Contains(so.String(), "kscloud-installed sha256="+sha(ksText)) {
		t.Fatalf("no marker:\n%s\n%s", so.String(), se.String())
	}
	inst := ""
	for _, l := range strings.Split(so.String(), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "instance" {
			inst = f[1]
		}
	}
	st := waitPhase(t, n, inst, "final", time.Minute)
	if st.Mode != "in-place" {
		t.Fatalf("nchookd record: %+v", st)
	}
	if r := e.kscloud(t, ctx, "vnc", inst); r.code == 0 {
		t.Fatalf("the installed system still has a VNC console: %s", r.stdout)
	}
}

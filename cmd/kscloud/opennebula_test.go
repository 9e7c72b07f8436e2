package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// oneCLIFiles writes the endpoint's credentials (an ONE_AUTH file) and a
// kickstart ending in poweroff into a new directory.
func oneCLIFiles(t *testing.T, srv *oneendpoint.Server) (dir, auth, ks string) {
	dir = t.TempDir()
	auth = filepath.Join(dir, "one_auth")
	ks = filepath.Join(dir, "base.ks")
	if err := os.WriteFile(auth, []byte(srv.Session()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ks, []byte("text\nrootpw --lock\npoweroff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, auth, ks
}

// TestOpenNebulaCLI drives kscloud itself against the OpenNebula test
// endpoint (plain mode, installer played): bake → image with provenance,
// run --image boots it, run in place, cleanup --orphans.
func TestOpenNebulaCLI(t *testing.T) {
	srv := oneendpoint.Start(t, oneendpoint.Options{Install: 300 * time.Millisecond})
	dir, auth, ks := oneCLIFiles(t, srv)
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, []byte("kernel"), 0o644)
	os.WriteFile(i, []byte("initrd"), 0o644)
	state := filepath.Join(dir, "state")
	common := []string{"--provider", "opennebula", "--one-endpoint", srv.URL(), "--one-auth", auth, "--state-dir", state, "--output", "json"}
	launch := append([]string{"--no-lint"}, common...)

	code, out, stderr := runCLI(append([]string{"bake", "--ks", ks, "--kernel", k, "--initrd", i, "--name", "base", "--disk", "1"}, launch...)...)
	if code != 0 {
		t.Fatalf("bake: exit %d: %s", code, stderr)
	}
	var res struct {
		Build  string `json:"build"`
		Result struct {
			ImageID    string `json:"image_id"`
			InstanceID string `json:"instance_id"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !strings.HasPrefix(res.Result.ImageID, "img-") {
		t.Fatalf("bake output %q: %v", out, err)
	}
	var n int
	fmtSscan(strings.TrimPrefix(res.Result.ImageID, "img-"), &n)
	if a := srv.ImageAttrs(n); a["KSCLOUD_BUILD"] != res.Build || !strings.Contains(a["DESCRIPTION"], "Source: base.ks") || a["KSCLOUD_KS_SHA256"] == "" {
		t.Errorf("image %s attributes %v: want the build, DESCRIPTION as seed 003, the kickstart's sha256", res.Result.ImageID, a)
	}

	code, out, stderr = runCLI(append([]string{"run", "--image", res.Result.ImageID}, launch...)...)
	if code != 0 {
		t.Fatalf("run --image: exit %d: %s", code, stderr)
	}
	json.Unmarshal([]byte(out), &res)
	if !strings.HasPrefix(res.Result.InstanceID, "vm-") {
		t.Fatalf("run --image output %q", out)
	}

	code, out, stderr = runCLI(append([]string{"run", "--ks", ks, "--kernel", k, "--initrd", i, "--vnc"}, launch...)...)
	if code != 0 {
		t.Fatalf("run in place: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "resumed from its disk") || !strings.Contains(out, `"vnc": "vnc://node1:59`) {
		t.Errorf("run in place said: %s\n%s", stderr, out)
	}

	// An orphan: a target volume tagged by kscloud that no state file owns.
	p, err := opennebula.New(context.Background(), opennebula.Config{Endpoint: srv.URL(), Session: srv.Session()})
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := p.CreateVolume(context.Background(), cloud.VolumeSpec{SizeGiB: 1, Tags: cloud.Tags{cloud.TagBuild: "ks-gone", cloud.TagCreator: "kscloud", cloud.TagRole: "target"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // LOCKED → READY
	code, _, stderr = runCLI(append([]string{"cleanup", "--orphans"}, common...)...)
	if code != 0 || !strings.Contains(stderr, "removed orphan volume "+orphan.ID) {
		t.Fatalf("cleanup --orphans: exit %d: %s", code, stderr)
	}
	if imgs, _ := p.Images(context.Background(), cloud.Tags{cloud.TagRole: "image"}); len(imgs) != 1 {
		t.Errorf("after --orphans: images %+v: want the baked one kept", imgs)
	}

	// Bad credentials: one clear line.
	os.WriteFile(auth, []byte("kscloud:wrong\n"), 0o600)
	code, _, stderr = runCLI(append([]string{"run", "--image", res.Result.ImageID}, launch...)...)
	if code == 0 || !strings.Contains(stderr, "User couldn't be authenticated") || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
		t.Errorf("bad credentials: exit %d: %q", code, stderr)
	}
}

// TestOpenNebulaCLIInstaller: --installer NAME boots the operator's
// catalog (KERNEL and RAMDISK images marked KSCLOUD_INSTALLER): a bake
// registers no kernel or initrd, puts KSCLOUD_CMDLINE first and the
// images' KSCLOUD_SHA256 in the provenance; a resume boots the ids the
// build recorded even when the catalog changed since; misuse is exit 2,
// a catalog miss one line and exit 1.
func TestOpenNebulaCLIInstaller(t *testing.T) {
	srv := oneendpoint.Start(t, oneendpoint.Options{Install: 2 * time.Second})
	dir, auth, ks := oneCLIFiles(t, srv)
	op, err := srv.Operator()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	register := func(name, typ, data, attrs string) int {
		t.Helper()
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(data), 0o644)
		sum := sha256.Sum256([]byte(data))
		files[name] = hex.EncodeToString(sum[:])
		n, err := op.CreateImage(fmt.Sprintf("NAME=%q\nTYPE=%q\nPATH=%q\n", name, typ, path), 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.UpdateImage(n, attrs+fmt.Sprintf("\nKSCLOUD_SHA256=%q\n", files[name])); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const prefix = "inst.stage2=hd:LABEL=CentOS-Stream-9"
	k := register("c9-vmlinuz", "KERNEL", "centos kernel", `KSCLOUD_INSTALLER="centos9" KSCLOUD_CMDLINE="`+prefix+`"`)
	i := register("c9-initrd", "RAMDISK", "centos initrd", `KSCLOUD_INSTALLER="centos9"`)
	time.Sleep(300 * time.Millisecond) // LOCKED → READY
	state := filepath.Join(dir, "state")
	common := []string{"--provider", "opennebula", "--one-endpoint", srv.URL(), "--one-auth", auth, "--state-dir", state, "--output", "json", "--no-lint"}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bake", "--ks", ks, "--installer", "centos9", "--kernel", "img-1", "--initrd", "img-2"}, "--installer NAME and --kernel/--initrd/--location exclude each other"},
		{[]string{"run", "--ks", ks, "--installer", "centos9", "--location", "http://mirror/os"}, "exclude each other"},
		{[]string{"bake", "--ks", ks, "--installer", "../etc"}, `--installer: installer name "../etc" must be`},
		{[]string{"run", "--image", "img-4", "--installer", "centos9"}, "it takes no --ks, --kernel, --location or --installer"},
	} {
		code, _, stderr := runCLI(append(c.args, common...)...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q: want 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}
	code, _, stderr := runCLI(append([]string{"bake", "--ks", ks, "--installer", "fedora40"}, common...)...)
	if code != 1 || !strings.Contains(stderr, `installer "fedora40": no KERNEL nor RAMDISK image carries KSCLOUD_INSTALLER="fedora40"`) ||
		!strings.Contains(stderr, "catalog installers here: centos9") || strings.Count(stderr, "kscloud bake:") != 1 {
		t.Errorf("unknown installer: exit %d: %s", code, stderr)
	}
	if vms, err := op.Call("one.vmpool.info", -2, -1, -1, -2); err != nil || !strings.Contains(fmt.Sprint(vms), "VM_POOL") || strings.Contains(fmt.Sprint(vms), "<VM>") {
		t.Errorf("VM pool after a catalog miss: %v, %v: want no VM", vms, err)
	}

	// A bake that gives up following (--timeout 1s, the install takes 2 s),
	// kept; the catalog then changes (a second kernel marked centos9: a new
	// resolution would fail); the resume boots what the build recorded.
	before := srv.Calls()["one.image.allocate"]
	code, _, stderr = runCLI(append([]string{"bake", "--ks", ks, "--installer", "centos9", "--name", "c9", "--disk", "1", "--timeout", "1s", "--keep-on-error"}, common...)...)
	if code != 1 || !strings.Contains(stderr, "not POWEROFF after 1s") {
		t.Fatalf("bake --timeout 1s: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("installer centos9: kernel img-%d, initrd img-%d", k, i)) {
		t.Errorf("bake did not say what it resolved: %s", stderr)
	}
	id := regexp.MustCompile(`resume with: kscloud bake --resume (\S+);`).FindStringSubmatch(stderr)
	if id == nil {
		t.Fatalf("no resume hint in %s", stderr)
	}
	newK := register("c9-vmlinuz-new", "KERNEL", "centos kernel, rebuilt", `KSCLOUD_INSTALLER="centos9"`)
	time.Sleep(2*time.Second + srv.PowerOffDelay()) // the installer powers off meanwhile
	code, _, stderr = runCLI(append([]string{"bake", "--ks", ks, "--installer", "centos9"}, common...)...)
	if code != 1 || !strings.Contains(stderr, `installer "centos9": 2 KERNEL images carry`) {
		t.Errorf("ambiguous catalog: exit %d: %s", code, stderr)
	}
	code, out, stderr := runCLI(append([]string{"bake", "--resume", id[1]}, common...)...)
	if code != 0 {
		t.Fatalf("bake --resume %s: exit %d: %s", id[1], code, stderr)
	}
	if got := srv.Calls()["one.image.allocate"] - before; got != 3 {
		t.Errorf("the bake allocated %d images, want 3 (target, kickstart file, the operator's new kernel): no kernel or initrd of kscloud's", got)
	}
	var res struct {
		Result struct {
			ImageID string `json:"image_id"`
		} `json:"result"`
	}
	json.Unmarshal([]byte(out), &res)
	var n int
	fmtSscan(strings.TrimPrefix(res.Result.ImageID, "img-"), &n)
	a := srv.ImageAttrs(n)
	if a["KSCLOUD_KERNEL_SHA256"] != files["c9-vmlinuz"] || a["KSCLOUD_INITRD_SHA256"] != files["c9-initrd"] || a["KSCLOUD_INSTALLER_NAME"] != "centos9" {
		t.Errorf("image %s provenance %v: want the catalog images' KSCLOUD_SHA256 (kernel %s) and the installer's name", res.Result.ImageID, a, files["c9-vmlinuz"])
	}
	if a["KSCLOUD_INSTALLER"] != "" {
		t.Errorf("the baked image carries KSCLOUD_INSTALLER=%q: it would join the catalog", a["KSCLOUD_INSTALLER"])
	}
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Load(id[1])
	if err != nil {
		t.Fatal(err)
	}
	if b.Value("one.kernel") != fmt.Sprint(k) || b.Value("one.initrd") != fmt.Sprint(i) || !strings.HasPrefix(b.Value("cmdline"), prefix+" ip=") {
		t.Errorf("build booted kernel %s initrd %s with %q: want images %d and %d, the catalog's prefix first", b.Value("one.kernel"), b.Value("one.initrd"), b.Value("cmdline"), k, i)
	}

	// The operator retires the new kernel: an install in place boots the
	// catalog again.
	if _, err := op.Call("one.image.delete", newK); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(append([]string{"run", "--ks", ks, "--installer", "centos9"}, common...)...)
	if code != 0 || !strings.Contains(stderr, fmt.Sprintf("installer centos9: kernel img-%d, initrd img-%d", k, i)) || !strings.Contains(stderr, "resumed from its disk") {
		t.Errorf("run in place --installer centos9: exit %d: %s", code, stderr)
	}
}

// TestResumeKeepsNchookd: --nchookd is recorded in the build's spec, and a
// resumed build relies on nchookd on its hosts whether or not the resume's
// command line says --nchookd again.
func TestResumeKeepsNchookd(t *testing.T) {
	srv := oneendpoint.Start(t, oneendpoint.Options{})
	p, err := opennebula.New(context.Background(), opennebula.Config{Endpoint: srv.URL(), Session: srv.Session()})
	if err != nil {
		t.Fatal(err)
	}
	f := &launchFlags{nchookd: true}
	f.provider = "opennebula"
	b := install.NewBuild("run", "opennebula", f.spec())
	b.Plan = &install.Plan{Kernel: "k", Initrd: "i"}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var loaded install.Build
	if err := json.Unmarshal(raw, &loaded); err != nil || !loaded.Spec.NodeHook || !strings.Contains(string(raw), `"node_hook":true`) {
		t.Fatalf("record %s: node_hook not kept (%v)", raw, err)
	}
	for _, again := range []bool{false, true} {
		f := &launchFlags{nchookd: again}
		f.provider, f.stateDir = "opennebula", t.TempDir()
		pr, err := prepare(context.Background(), f, &loaded, p, "run", newStatus(io.Discard), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !pr.one.NeedNodeHook {
			t.Errorf("resumed with --nchookd=%v: the workflow does not rely on nchookd", again)
		}
	}
	f = &launchFlags{}
	f.provider, f.stateDir = "opennebula", t.TempDir()
	plain := install.NewBuild("run", "opennebula", f.spec())
	plain.Plan = &install.Plan{Kernel: "k", Initrd: "i"}
	if pr, err := prepare(context.Background(), f, plain, p, "run", newStatus(io.Discard), io.Discard); err != nil || pr.one.NeedNodeHook {
		t.Errorf("a build without --nchookd relies on nchookd (%v)", err)
	}
}

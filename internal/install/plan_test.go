package install

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/userdata"
)

// installerFiles writes a kernel and an initrd (an empty newc archive
// will not do for Inject: any bytes are an initrd to it) into dir.
func installerFiles(t *testing.T, dir string) (kernel, initrd string) {
	t.Helper()
	kernel, initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	for p, b := range map[string]string{kernel: "kernel-bytes", initrd: "initrd-bytes"} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kernel, initrd
}

func TestNewPlanLocalInject(t *testing.T) {
	dir := t.TempDir()
	kernel, initrd := installerFiles(t, dir)
	ksPath := filepath.Join(dir, "f40.ks")
	ks := []byte("text\npoweroff\n")
	os.WriteFile(ksPath, ks, 0o644)
	spec := &Spec{Kickstart: ksPath, KickstartSHA256: SHA256(ks), Kernel: kernel, Initrd: initrd, ExtraArgs: "console=ttyS0"}
	spec.DefaultDelivery("libvirt", "bake")
	if spec.Delivery != "inject" {
		t.Fatalf("libvirt default delivery %q, want inject", spec.Delivery)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bdir := filepath.Join(dir, "ks-1.d")
	p, err := NewPlan(context.Background(), spec, PlanInput{Provider: "libvirt", Kind: "bake", BuildID: "ks-1", Dir: bdir,
		Kickstart: ks, Version: "v9", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kernel != kernel || p.Initrd != filepath.Join(bdir, "initrd.img") || p.Cmdline != "inst.ks=file:/ks.cfg console=ttyS0" {
		t.Fatalf("plan %+v", p)
	}
	inj, err := os.ReadFile(p.Initrd)
	if err != nil || !bytes.HasPrefix(inj, []byte("initrd-bytes")) {
		t.Fatalf("injected initrd (%v): want a copy of the initrd first", err)
	}
	z, err := gzip.NewReader(bytes.NewReader(inj[len("initrd-bytes"):]))
	if err != nil {
		t.Fatal(err)
	}
	if cpio, err := io.ReadAll(z); err != nil || !bytes.Contains(cpio, []byte("ks.cfg\x00")) || !bytes.Contains(cpio, ks) {
		t.Fatalf("injected archive (%v): want ks.cfg holding the kickstart: %q", err, cpio)
	}
	pr := p.Provenance
	if pr == nil || pr.KickstartSource != ksPath || pr.KickstartSHA256 != SHA256(ks) || pr.KernelSHA256 != SHA256([]byte("kernel-bytes")) ||
		pr.InitrdSHA256 != SHA256([]byte("initrd-bytes")) || pr.Build != "ks-1" || pr.KscloudVersion != "v9" || !pr.Date.Equal(now) {
		t.Fatalf("provenance %+v", pr)
	}
	if p.UserData != nil || p.HTTP != nil || p.Media != "" || p.KickstartFile != "" {
		t.Fatalf("plan holds what inject does not need: %+v", p)
	}
}

func TestNewPlanLocalHTTPAndURL(t *testing.T) {
	dir := t.TempDir()
	kernel, initrd := installerFiles(t, dir)
	var served []byte
	in := PlanInput{Provider: "libvirt", Kind: "run", BuildID: "ks-2", Dir: dir, Kickstart: []byte("ks"),
		Serve: func(ks []byte) (Served, error) {
			served = ks
			return Served{HTTPDelivery: HTTPDelivery{Addr: "127.0.0.1:4321", Token: "t0k"}, Path: "/t0k/ks.cfg"}, nil
		}}
	p, err := NewPlan(context.Background(), &Spec{Kickstart: "x.ks", Delivery: "http", Kernel: kernel, Initrd: initrd}, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(served) != "ks" || p.Cmdline != "ip=dhcp inst.ks=http://10.0.2.2:4321/t0k/ks.cfg" || p.HTTP == nil || p.HTTP.Token != "t0k" ||
		p.HTTP.Addr != "127.0.0.1:4321" || p.KickstartFile != filepath.Join(dir, "ks.cfg") || p.Initrd != initrd {
		t.Fatalf("http plan %+v", p)
	}
	url := "https://ks.example.com/f40.cfg"
	p, err = NewPlan(context.Background(), &Spec{Kickstart: url, Delivery: "url", Kernel: kernel, Initrd: initrd}, PlanInput{Provider: "libvirt", Kind: "run"})
	if err != nil || p.Cmdline != "ip=dhcp inst.ks="+url {
		t.Fatalf("url plan %+v, %v", p, err)
	}
	p, err = NewPlan(context.Background(), &Spec{ImageID: "f40"}, PlanInput{Provider: "libvirt", Kind: "run"})
	if err != nil || p.Kernel != "" || p.Cmdline != "" {
		t.Fatalf("image run plan %+v, %v: want no installer", p, err)
	}
}

func TestNewPlanErrors(t *testing.T) {
	dir := t.TempDir()
	kernel, initrd := installerFiles(t, dir)
	ctx := context.Background()
	var de *DeliveryError
	for _, c := range []struct {
		spec Spec
		in   PlanInput
		ok   func(error) bool
	}{
		{Spec{Kickstart: "a.ks"}, PlanInput{Provider: "libvirt"}, func(err error) bool { return errors.Is(err, ErrNoInstaller) }},
		{Spec{Kernel: kernel, Initrd: initrd, Delivery: "inline"}, PlanInput{Provider: "libvirt"}, func(err error) bool {
			return errors.As(err, &de) && de.Want == "inject, http or url" && de.Provider == "libvirt"
		}},
		{Spec{Kernel: kernel, Initrd: dir}, PlanInput{Provider: "libvirt"}, func(err error) bool {
			return err != nil && err.Error() == "installer file "+dir+": not a readable file"
		}},
		{Spec{Kernel: "eki-1", Initrd: "eri-1"}, PlanInput{Provider: "ec2", Kind: "bake"}, func(err error) bool { return errors.Is(err, ErrNothingToBoot) }},
		{Spec{Kickstart: "a.ks", Delivery: "inject"}, PlanInput{Provider: "ec2", Kind: "bake"}, func(err error) bool {
			return errors.As(err, &de) && de.Want == "inline or url"
		}},
		{Spec{Catalog: "f40", Delivery: "context"}, PlanInput{Provider: "opennebula", Kind: "bake", Catalog: func(context.Context, string) (CatalogInstaller, error) {
			return CatalogInstaller{}, errors.New(`installer "f40": not found`)
		}}, func(err error) bool { return err != nil && err.Error() == `installer "f40": not found` }},
	} {
		if p, err := NewPlan(ctx, &c.spec, c.in); !c.ok(err) {
			t.Errorf("%s %+v: plan %+v, error %v", c.in.Provider, c.spec, p, err)
		}
	}
}

func TestNewPlanEC2UserData(t *testing.T) {
	ks := []byte("text\npoweroff\n")
	spec := &Spec{Kickstart: "f40.ks", Kernel: "eki-1", Initrd: "eri-1", Catalog: "", VNC: true, ExtraArgs: "console=ttyS0"}
	spec.DefaultDelivery("ec2", "run")
	p, err := NewPlan(context.Background(), spec, PlanInput{Provider: "ec2", Kind: "run", Kickstart: ks})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Delivery != "inline" || p.Kernel != "eki-1" || p.Initrd != "eri-1" || p.Cmdline != "" {
		t.Fatalf("delivery %q, plan %+v", spec.Delivery, p)
	}
	req, err := userdata.Parse(p.UserData, userdata.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if req.BootParams != "inst.ks=file:/ks.cfg console=ttyS0" || req.Mode != userdata.ModeInPlace || !req.VNC || !bytes.Equal(req.Kickstart, ks) {
		t.Fatalf("user-data says %+v", req)
	}
	// Boots an image: no installer, no user-data.
	if p, err := NewPlan(context.Background(), &Spec{ImageID: "emi-1"}, PlanInput{Provider: "ec2", Kind: "run"}); err != nil || p.UserData != nil {
		t.Fatalf("image run: %+v %v", p, err)
	}
}

func TestNewPlanOpenNebula(t *testing.T) {
	dir := t.TempDir()
	kernel, _ := installerFiles(t, dir)
	in := PlanInput{Provider: "opennebula", Kind: "bake", Dir: dir, Kickstart: []byte("ks"),
		Catalog: func(_ context.Context, name string) (CatalogInstaller, error) {
			return CatalogInstaller{Name: name, Kernel: "img-7", Initrd: "img-8", Cmdline: "console=ttyS0", KernelSHA256: "ab", InitrdSHA256: "cd"}, nil
		}}
	spec := &Spec{Kickstart: "f40.ks", Catalog: "f40", ExtraArgs: "quiet"}
	spec.DefaultDelivery("opennebula", "bake")
	p, err := NewPlan(context.Background(), spec, in)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Delivery != "context" || p.Kernel != "img-7" || p.Initrd != "img-8" || p.CmdlinePrefix != "console=ttyS0" || p.Args != "quiet" ||
		p.Provenance.Installer != "f40" || p.Provenance.KernelSHA256 != "ab" || p.KickstartFile != filepath.Join(dir, "ks.cfg") {
		t.Fatalf("catalog plan %+v %+v", p, p.Provenance)
	}
	// A file and an image id, as given; a URL kickstart is the installer's to fetch.
	spec = &Spec{Kickstart: "https://ks.example.com/a.ks", Kernel: kernel, Initrd: "img-3"}
	spec.DefaultDelivery("opennebula", "bake")
	p, err = NewPlan(context.Background(), spec, PlanInput{Provider: "opennebula", Kind: "bake", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Delivery != "url" || p.Kernel != kernel || p.Initrd != "img-3" || p.Provenance.KernelSHA256 != SHA256([]byte("kernel-bytes")) ||
		p.Provenance.InitrdSHA256 != "" || p.KickstartFile != "" {
		t.Fatalf("plan %+v %+v", p, p.Provenance)
	}
	if p, err := NewPlan(context.Background(), &Spec{ImageID: "img-9"}, PlanInput{Provider: "opennebula", Kind: "run"}); err != nil || p.Provenance != nil {
		t.Fatalf("image run: %+v %v", p, err)
	}
}

// TestNewPlanLocation: one tree fetch serves libvirt (any arch) and
// OpenNebula (x86_64): kernel and initrd checked and cached, inst.repo=.
func TestNewPlanLocation(t *testing.T) {
	kernel, initrd := []byte("tree-kernel"), []byte("tree-initrd")
	ti := "[images-x86_64]\nkernel = pxe/vmlinuz\ninitrd = pxe/initrd.img\n[images-aarch64]\nkernel = a64/vmlinuz\ninitrd = a64/initrd.img\n" +
		"[checksums]\npxe/vmlinuz = sha256:" + SHA256(kernel) + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/os/.treeinfo":
			w.Write([]byte(ti))
		case "/os/pxe/vmlinuz", "/os/a64/vmlinuz":
			w.Write(kernel)
		case "/os/pxe/initrd.img", "/os/a64/initrd.img":
			w.Write(initrd)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cache := t.TempDir()
	loc := srv.URL + "/os/"
	for _, c := range []struct{ provider, arch string }{{"libvirt", "x86_64"}, {"libvirt", "arm64"}, {"opennebula", "arm64"}} {
		spec := &Spec{Location: loc, Kickstart: "https://ks.example.com/a.ks", Delivery: "url"}
		p, err := NewPlan(context.Background(), spec, PlanInput{Provider: c.provider, Kind: "bake", CacheDir: cache, Arch: c.arch})
		if err != nil {
			t.Fatalf("%s %s: %v", c.provider, c.arch, err)
		}
		k, _ := os.ReadFile(p.Kernel)
		if !bytes.Equal(k, kernel) || filepath.Dir(p.Kernel) != cache || p.Provenance.KernelSHA256 != SHA256(kernel) {
			t.Errorf("%s %s: kernel %s (%q)", c.provider, c.arch, p.Kernel, k)
		}
		args := p.Cmdline + p.Args
		if !strings.Contains(args, "inst.repo="+loc) {
			t.Errorf("%s %s: command line %q has no inst.repo", c.provider, c.arch, args)
		}
	}
	// A kernel whose sha256 is not the .treeinfo's is refused.
	ti = strings.Replace(ti, SHA256(kernel), SHA256([]byte("other")), 1)
	if _, err := NewPlan(context.Background(), &Spec{Location: loc}, PlanInput{Provider: "libvirt", Kind: "bake", CacheDir: t.TempDir()}); err == nil ||
		!strings.Contains(err.Error(), "install tree kernel") {
		t.Fatalf("bad checksum: %v", err)
	}
}

func TestDefaultDelivery(t *testing.T) {
	for _, c := range []struct {
		provider, kind string
		spec           Spec
		want           string
	}{
		{"libvirt", "bake", Spec{Kickstart: "a.ks"}, "inject"},
		{"libvirt", "bake", Spec{Kickstart: "https://h/a.ks"}, "inject"},
		{"libvirt", "bake", Spec{}, ""},
		{"ec2", "bake", Spec{Kickstart: "a.ks"}, "inline"},
		{"ec2", "bake", Spec{Kickstart: "https://h/a.ks"}, "url"},
		{"ec2", "bake", Spec{Kickstart: "a.ks", Delivery: "url"}, "url"},
		{"opennebula", "bake", Spec{Kickstart: "a.ks"}, "context"},
		{"opennebula", "bake", Spec{}, "context"},
		{"opennebula", "run", Spec{ImageID: "img-1"}, ""},
	} {
		s := c.spec
		s.DefaultDelivery(c.provider, c.kind)
		if s.Delivery != c.want {
			t.Errorf("%s %s %+v: delivery %q, want %q", c.provider, c.kind, c.spec, s.Delivery, c.want)
		}
	}
}

// TestPlanPersisted: the plan round-trips through the state file with
// snake_case keys, user-data as bytes (base64 in JSON).
func TestPlanPersisted(t *testing.T) {
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuild("bake", "libvirt", Spec{Name: "f40"})
	b.Plan = &Plan{Kernel: "/k", Initrd: "/i", Cmdline: "inst.ks=file:/ks.cfg", UserData: []byte("bootparams=x\n"), Media: "/x.iso",
		HTTP: &HTTPDelivery{Addr: "127.0.0.1:1", Token: "tok"}, KickstartFile: "/d/ks.cfg", Provenance: &Provenance{Build: b.ID, KernelSHA256: "ab"}}
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(store.Dir, b.ID+".json"))
	for _, k := range []string{`"plan": {`, `"user_data": "Ym9vdHBhcmFtcz14Cg=="`, `"kickstart_file"`, `"installer_kernel_sha256": "ab"`, `"media"`} {
		if !strings.Contains(string(raw), k) {
			t.Errorf("state file lacks %s:\n%s", k, raw)
		}
	}
	if strings.Contains(string(raw), `"values"`) || strings.Contains(string(raw), `"marker"`) {
		t.Errorf("state file keeps empty values or the spec's marker:\n%s", raw)
	}
	got, err := store.Load(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Plan; p == nil || p.Kernel != "/k" || string(p.UserData) != "bootparams=x\n" || p.HTTP.Token != "tok" || p.Provenance.KernelSHA256 != "ab" {
		t.Fatalf("loaded plan %+v", got.Plan)
	}
}

// legacyRecord is a state file as kscloud wrote it before the plan was
// typed: the plan and the machine in values.
const legacyRecord = `{
  "id": "ks-20250101-0123456789ab", "kind": "bake", "provider": "libvirt", "status": "interrupted",
  "created": "2025-01-01T10:00:00Z", "updated": "2025-01-01T10:05:00Z",
  "spec": {"name": "f40", "kickstart": "/home/u/f40.ks", "kickstart_sha256": "aa", "delivery": "http", "kernel": "vmlinuz",
    "initrd": "initrd.img", "disk_gib": 4, "timeout": "2h0m0s", "inactivity": "15m0s", "architecture": "x86_64", "marker": "x"},
  "steps": {"create-volume": "done", "launch-installer": "running"},
  "resources": [],
  "values": {"prepared": "yes", "kernel": "/abs/vmlinuz", "ramdisk": "/abs/initrd.img",
    "cmdline": "ip=dhcp inst.ks=http://10.0.2.2:4321/tok/ks.cfg", "userdata": "", "http.addr": "127.0.0.1:4321", "http.token": "tok",
    "iso": "/cache/f40.iso", "provenance.kernel": "k1", "provenance.initrd": "i1", "provenance.git": "abc", "provenance.git_dirty": "yes",
    "host.accel": "tcg", "host.boot": "uefi", "host.cpu": "", "host.network": "user", "host.arch": "x86_64",
    "target.device": "/dev/sdb", "install.seconds": "12.5"}
}`

// TestLoadLegacyRecord: a build record of the kscloud before the typed
// plan loads with its plan and machine typed, so that it resumes as
// planned; its step outputs stay values. A record with a user-data that
// is not base64 fails in one line naming the build.
func TestLoadLegacyRecord(t *testing.T) {
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := "ks-20250101-0123456789ab"
	if err := os.WriteFile(filepath.Join(store.Dir, id+".json"), []byte(legacyRecord), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := store.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	p := b.Plan
	if p == nil || p.Kernel != "/abs/vmlinuz" || p.Initrd != "/abs/initrd.img" || p.Cmdline != "ip=dhcp inst.ks=http://10.0.2.2:4321/tok/ks.cfg" ||
		p.UserData != nil || p.Media != "/cache/f40.iso" || p.HTTP == nil || p.HTTP.Addr != "127.0.0.1:4321" || p.HTTP.Token != "tok" ||
		p.KickstartFile != filepath.Join(store.Dir, id+".d", "ks.cfg") {
		t.Fatalf("plan %+v", p)
	}
	pr := p.Provenance
	if pr == nil || pr.KernelSHA256 != "k1" || pr.InitrdSHA256 != "i1" || pr.GitRevision != "abc" || !pr.GitDirty || pr.KickstartSHA256 != "aa" ||
		pr.Build != id || pr.KickstartSource != "/home/u/f40.ks" || !pr.Date.Equal(b.Created) || pr.KscloudVersion != "" {
		t.Fatalf("provenance %+v", pr)
	}
	if m := b.Spec.Machine; m == nil || *m != (Machine{Accel: "tcg", Boot: "uefi", Network: "user"}) {
		t.Fatalf("machine %+v", b.Spec.Machine)
	}
	if len(b.Values) != 2 || b.Value("target.device") != "/dev/sdb" || b.Value("install.seconds") != "12.5" {
		t.Fatalf("values %v: want the step outputs only", b.Values)
	}
	// Saved again, it is a record of this kscloud.
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	if again, err := store.Load(id); err != nil || again.Plan.Cmdline != p.Cmdline || again.Plan.HTTP.Token != "tok" {
		t.Fatalf("saved and loaded again: %+v %v", again, err)
	}

	bad := strings.Replace(legacyRecord, `"userdata": ""`, `"userdata": "#!not base64"`, 1)
	os.WriteFile(filepath.Join(store.Dir, id+".json"), []byte(bad), 0o600)
	_, err = store.Load(id)
	if err == nil || !strings.Contains(err.Error(), `build "`+id+`": state file: values: userdata is not base64`) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("bad user-data: %v", err)
	}
}

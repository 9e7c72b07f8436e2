package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// TestStatusRedactsPlan: kscloud status (text and JSON) shows neither the
// plan's user-data nor its HTTP delivery's token, also where the token
// is on the installer's command line; the plan's installer stays.
func TestStatusRedactsPlan(t *testing.T) {
	state := t.TempDir()
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	tok := "5e5e5e5e5e5e5e5e"
	b := &install.Build{ID: "ks-plan", Kind: "bake", Provider: "libvirt", Status: install.StatusInterrupted, Created: time.Now(),
		Spec: install.Spec{Kickstart: "f40.ks", Delivery: "http"},
		Plan: &install.Plan{Kernel: "/cache/vmlinuz", Cmdline: "ip=dhcp inst.ks=http://10.0.2.2:4321/" + tok + "/ks.cfg",
			UserData: []byte("bootparams=inst.ks=file:/ks.cfg\nrootpw --plaintext sekrit\n"), HTTP: &install.HTTPDelivery{Addr: "127.0.0.1:4321", Token: tok}}}
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status", "--state-dir", state, "ks-plan"}, {"status", "--state-dir", state, "--output", "json"}} {
		code, out, stderr := runCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if strings.Contains(out, tok) || strings.Contains(out, "Ym9vdHBhcmFtcz1") || strings.Contains(out, "sekrit") {
			t.Errorf("%v: output holds a secret:\n%s", args, out)
		}
		if args[len(args)-1] == "json" && (!strings.Contains(out, "/cache/vmlinuz") || !strings.Contains(out, `"user_data": "REDACTED"`)) {
			t.Errorf("%v: output lost the plan's installer, or shows its user-data:\n%s", args, out)
		}
	}
}

// TestOpenNebulaCLIResumeLegacyRecord: a build kept by the kscloud
// before the typed plan (plan and machine in its values) resumes: the
// installer it recorded boots, its provenance reaches the image, and the
// record is rewritten with a typed plan.
func TestOpenNebulaCLIResumeLegacyRecord(t *testing.T) {
	srv := oneendpoint.Start(t, oneendpoint.Options{Install: 2 * time.Second})
	dir, auth, ks := oneCLIFiles(t, srv)
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, []byte("kernel"), 0o644)
	os.WriteFile(i, []byte("initrd"), 0o644)
	state := filepath.Join(dir, "state")
	common := []string{"--provider", "opennebula", "--one-endpoint", srv.URL(), "--one-auth", auth, "--state-dir", state, "--output", "json", "--no-lint"}
	code, _, stderr := runCLI(append([]string{"bake", "--ks", ks, "--kernel", k, "--initrd", i, "--name", "old", "--disk", "1", "--timeout", "1s", "--keep-on-error"}, common...)...)
	if code != 1 {
		t.Fatalf("bake --timeout 1s: exit %d: %s", code, stderr)
	}
	id := regexp.MustCompile(`resume with: kscloud bake --resume (\S+);`).FindStringSubmatch(stderr)
	if id == nil {
		t.Fatalf("no resume hint in %s", stderr)
	}
	// The record as the previous kscloud wrote it.
	path := filepath.Join(state, "builds", id[1]+".json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	plan := rec["plan"].(map[string]any)
	prov := plan["provenance"].(map[string]any)
	vals, _ := rec["values"].(map[string]any)
	if vals == nil {
		vals = map[string]any{}
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	for k, v := range map[string]string{"prepared": "yes", "kernel": str(plan, "kernel"), "ramdisk": str(plan, "initrd"), "one.args": str(plan, "args"),
		"provenance.kernel": str(prov, "installer_kernel_sha256"), "provenance.initrd": str(prov, "installer_initrd_sha256"),
		"host.accel": "auto", "host.network": "user", "host.arch": "x86_64"} {
		vals[k] = v
	}
	delete(rec, "plan")
	delete(rec["spec"].(map[string]any), "machine")
	rec["values"] = vals
	raw, _ = json.Marshal(rec)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if str(plan, "kernel") != k || str(prov, "installer_kernel_sha256") == "" {
		t.Fatalf("the kept build's plan %v: want the kernel file and its sha256", plan)
	}

	// Gone since: a new plan would fail; the recorded one has the
	// kernel uploaded already.
	os.Remove(k)
	time.Sleep(2*time.Second + srv.PowerOffDelay()) // the installer powers off meanwhile
	code, out, stderr := runCLI(append([]string{"bake", "--resume", id[1]}, common...)...)
	if code != 0 {
		t.Fatalf("bake --resume %s of a legacy record: exit %d: %s", id[1], code, stderr)
	}
	var res struct {
		Result struct {
			ImageID string `json:"image_id"`
		} `json:"result"`
	}
	json.Unmarshal([]byte(out), &res)
	var n int
	fmtSscan(strings.TrimPrefix(res.Result.ImageID, "img-"), &n)
	if a := srv.ImageAttrs(n); a["KSCLOUD_KERNEL_SHA256"] != str(prov, "installer_kernel_sha256") || a["KSCLOUD_BUILD"] != id[1] {
		t.Errorf("image %s attributes %v: want the recorded provenance", res.Result.ImageID, a)
	}
	raw, _ = os.ReadFile(path)
	if !strings.Contains(string(raw), `"plan": {`) || strings.Contains(string(raw), `"prepared"`) || !strings.Contains(string(raw), `"machine": {`) {
		t.Errorf("record after the resume:\n%s", raw)
	}
}

// TestNoCredentialsRemedy: the ec2 library says what is missing, kscloud
// names its flag: one line with --eucarc.
func TestNoCredentialsRemedy(t *testing.T) {
	for _, k := range []string{"EC2_ACCESS_KEY", "EC2_SECRET_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "EUCARC", "EC2_URL"} {
		t.Setenv(k, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", home+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", home+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code, _, stderr := runCLI("images", "--provider", "ec2", "--endpoint", "http://127.0.0.1:1/services/compute", "--state-dir", home)
	if code != 1 || !strings.Contains(stderr, "ec2: no credentials: set EC2_ACCESS_KEY and EC2_SECRET_KEY, give --eucarc FILE") ||
		strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Fatalf("exit %d, %q: want one line naming --eucarc", code, stderr)
	}
}

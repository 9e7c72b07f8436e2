package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/NAME.golden (or writes it with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	testenv.Golden(t, "./cmd/kscloud", "the man page", name, got, *update)
}

// helpEnv fixes what flag defaults read from the environment.
func helpEnv(t *testing.T) {
	for k, v := range map[string]string{"LIBVIRT_DEFAULT_URI": "", "KSCLOUD_STATE_DIR": "/var/lib/kscloud", "EUCARC": "",
		"EC2_URL": "", "ONE_XMLRPC": "", "ONE_AUTH": ""} {
		t.Setenv(k, v)
	}
}

// TestHelpGolden: -h and --help print the usage on stdout with exit 0,
// for kscloud itself and every command (and images export/import);
// "kscloud help CMD" is the same. The texts are pinned in testdata.
func TestHelpGolden(t *testing.T) {
	helpEnv(t)
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, out, errs := runCLI(args...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: kscloud COMMAND") {
			t.Errorf("%v: exit %d, stderr %q, stdout %.40q", args, code, errs, out)
		}
		golden(t, "help", out)
	}
	if code, out, errs := runCLI(); code != 2 || out != "" || !strings.HasPrefix(errs, "usage: kscloud") {
		t.Errorf("no command: exit %d, stdout %q, stderr %.40q: want the usage on stderr, exit 2", code, out, errs)
	}
	names := []string{}
	for n := range commands() {
		names = append(names, n)
	}
	sort.Strings(names)
	cases := [][]string{{"images", "export"}, {"images", "import"}}
	for _, n := range names {
		cases = append(cases, []string{n})
	}
	for _, words := range cases {
		name := "help-" + strings.Join(words, "-")
		var first string
		for i, h := range []string{"-h", "--help", "-help"} {
			args := append(append([]string{}, words...), h)
			code, out, errs := runCLI(args...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: kscloud "+words[0]) {
				t.Errorf("%v: exit %d, stderr %q, stdout %.60q: want the usage on stdout, exit 0", args, code, errs, out)
			}
			if i == 0 {
				first = out
				golden(t, name, out)
			} else if out != first {
				t.Errorf("%v prints another text than %s -h", args, words)
			}
		}
		// Help after other flags (even bad ones) and arguments.
		args := append(append([]string{}, words...), "--no-such-flag", "x", "--help")
		if code, out, _ := runCLI(args...); code != 0 || out != first {
			t.Errorf("%v: exit %d: want the same help", args, code)
		}
		if len(words) == 1 {
			if code, out, _ := runCLI("help", words[0]); code != 0 || out != first {
				t.Errorf("help %s: exit %d: want the same text as %s -h", words[0], code, words[0])
			}
		}
	}
}

// TestVersion: --version, -version and the version command print the
// same line; --output json has the program, version and Go release.
func TestVersion(t *testing.T) {
	want := "kscloud " + version + "\n"
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		if code, out, errs := runCLI(args...); code != 0 || out != want || errs != "" {
			t.Errorf("%v: exit %d, %q %q; want %q", args, code, out, errs, want)
		}
	}
	if version == "" || version == "(devel)" {
		t.Errorf("version %q", version)
	}
	code, out, _ := runCLI("version", "--output", "json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v["program"] != "kscloud" || v["version"] != version {
		t.Errorf("version --output json: exit %d %v: %s", code, err, out)
	}
	golden(t, "json-version", jsonShape(t, out))
	if code, _, errs := runCLI("version", "extra"); code != 2 || !strings.Contains(errs, "usage: kscloud version") {
		t.Errorf("version extra: exit %d %q", code, errs)
	}
}

// TestOutputFlag: every command printing results takes --output text|json
// and refuses anything else as a usage error (exit 2, one line).
func TestOutputFlag(t *testing.T) {
	state := t.TempDir()
	for _, args := range [][]string{
		{"status", "--state-dir", state}, {"images", "--state-dir", state}, {"cleanup", "ks-x", "--state-dir", state},
		{"vnc", "x", "--state-dir", state}, {"run", "--image", "x", "--state-dir", state}, {"bake", "--resume", "x", "--state-dir", state},
		{"uninstall-host", "--state-dir", state}, {"images", "export", "a", "b", "--state-dir", state}, {"lint", "x.ks"}, {"version"},
	} {
		args = append(args, "--output", "yaml")
		code, out, errs := runCLI(args...)
		if code != 2 || out != "" || !strings.Contains(errs, `--output "yaml": want text or json`) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q: want exit 2 and one line", args, code, out, errs)
		}
	}
}

// TestLintDeprecatedFormat: lint's old --format json still works, and says
// once on stderr to use --output json; both print the same findings.
func TestLintDeprecatedFormat(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.ks", strings.Replace(lintGood, "poweroff", "reboot", 1))
	code, want, errs := runCLI("lint", "--output", "json", bad)
	if code != lintErrors || errs != "" || !strings.Contains(want, `"rule": "power-action-mode"`) {
		t.Fatalf("lint --output json: exit %d %q %s", code, errs, want)
	}
	golden(t, "json-lint", jsonShape(t, want))
	code, out, errs := runCLI("lint", "--format", "json", bad)
	if code != lintErrors || out != want || errs != "kscloud lint: --format is deprecated; use --output json\n" {
		t.Errorf("lint --format json: exit %d, stderr %q, same output %v", code, errs, out == want)
	}
	if code, out, _ := runCLI("lint", "--output", "json", writeFile(t, dir, "clean.ks", lintGood)); code != 0 || out != "[]\n" {
		t.Errorf("no findings: exit %d %q: want []", code, out)
	}
}

// TestStatusJSON: status --output json prints builds as a stable view:
// snake_case keys, lists never null, no user-data, token or step values.
func TestStatusJSON(t *testing.T) {
	state := t.TempDir()
	code, out, errs := runCLI("status", "--state-dir", state, "--output", "json")
	if code != 0 || out != "[]\n" {
		t.Fatalf("no builds: exit %d %q %q: want []", code, out, errs)
	}
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	b := install.NewBuild("bake", "libvirt", install.Spec{Name: "f40", Kickstart: "https://u:pw@ks.example/f.ks?t=1", Delivery: "http", DiskGiB: 4,
		Timeout: install.Duration{Duration: time.Hour}, Inactivity: install.Duration{Duration: time.Minute}})
	b.Cloud = &install.CloudRef{Connect: "qemu:///system"}
	b.SetValue("userdata", "Ym9vdHBhcmFtcz0K")
	b.SetValue("http.token", "0a1b2c3d4e5f")
	b.Record(install.Resource{Kind: "volume", ID: "vol-1", Role: "target", Step: "target"})
	b.Result = &install.Result{ImageID: "img-1", Marker: "kscloud-installed \x1b[2Jx", Provenance: &install.Provenance{KickstartSHA256: "ab"}}
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI("status", "--state-dir", state, "--output", "json")
	if code != 0 {
		t.Fatalf("status: exit %d %s", code, errs)
	}
	for _, bad := range []string{"Ym9vdHBhcmFtcz0K", "0a1b2c3d4e5f", "pw@", "\\u001b", `"values"`, `"Values"`} {
		if strings.Contains(out, bad) {
			t.Errorf("status --output json holds %q:\n%s", bad, out)
		}
	}
	golden(t, "json-status", jsonShape(t, out))
	var one []map[string]any
	json.Unmarshal([]byte(out), &one)
	if len(one) != 1 || one[0]["id"] != b.ID || one[0]["spec"].(map[string]any)["kickstart"] != "https://REDACTED@ks.example/f.ks?t=REDACTED" {
		t.Errorf("status --output json: %s", out)
	}
}

// TestOpenNebulaJSON: the JSON of bake, images list/show and run against
// the OpenNebula test endpoint: snake_case keys in a pinned shape; an
// empty image list is [].
func TestOpenNebulaJSON(t *testing.T) {
	t.Parallel() // ~10 s of the endpoint's delays each
	srv := oneendpoint.Start(t, oneendpoint.Options{Install: 300 * time.Millisecond})
	dir, auth, ks := oneCLIFiles(t, srv)
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, []byte("kernel"), 0o644)
	os.WriteFile(i, []byte("initrd"), 0o644)
	common := []string{"--provider", "opennebula", "--one-endpoint", srv.URL(), "--one-auth", auth, "--state-dir", filepath.Join(dir, "state"), "--output", "json"}
	cli := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(append(args, common...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	if out := cli("images", "list"); out != "[]\n" {
		t.Errorf("images list with no image: %q, want []", out)
	}
	out := cli("bake", "--no-lint", "--ks", ks, "--kernel", k, "--initrd", i, "--name", "base", "--disk", "1")
	golden(t, "json-bake", jsonShape(t, out))
	var res struct {
		Build  string `json:"build"`
		Result struct {
			ImageID string `json:"image_id"`
		} `json:"result"`
	}
	json.Unmarshal([]byte(out), &res)
	list := cli("images", "list")
	golden(t, "json-images-list", jsonShape(t, list))
	if !strings.Contains(list, `"snapshot_id"`) || strings.Contains(list, `"SnapshotID"`) || !strings.Contains(list, `"build": "`+res.Build+`"`) {
		t.Errorf("images list: %s", list)
	}
	golden(t, "json-images-show", jsonShape(t, cli("images", "show", res.Result.ImageID)))
	golden(t, "json-run", jsonShape(t, cli("run", "--no-lint", "--image", res.Result.ImageID)))
	golden(t, "json-status-one", jsonShape(t, cli("status", res.Build)))
}

// jsonShape is testenv.JSONShape; tag names (key:value pairs) are the
// cloud's, not kscloud's, and may be any case.
func jsonShape(t *testing.T, doc string) string {
	t.Helper()
	return testenv.JSONShape(t, doc, func(k string) bool { return strings.Contains(k, ":") })
}

// TestManPageCommands: kscloud(1) shows every command in its SYNOPSIS and
// documents the CLI convention (help, version, --output json).
func TestManPageCommands(t *testing.T) {
	b, err := os.ReadFile("../../packaging/man/kscloud.1")
	if err != nil {
		t.Fatal(err)
	}
	man := string(b)
	for n := range commands() {
		if !strings.Contains(man, "\n.B kscloud "+strings.ReplaceAll(n, "-", `\-`)+"\n") {
			t.Errorf("kscloud.1: no SYNOPSIS line for %s", n)
		}
	}
	for _, s := range []string{".SH COMMAND LINE", `\fB\-\-output json\fR`, `\fB\-\-version\fR`, `\fB\-\-help\fR`, "snake_case", `\fB[]\fR`, "deprecated"} {
		if !strings.Contains(man, s) {
			t.Errorf("kscloud.1 lacks %q", s)
		}
	}
}

// TestViewShapes: the JSON of vnc and uninstall-host, which need a VNC
// console or a libvirt host to run: their views, escapes stripped from
// what the guest's console note says, empty lists [].
func TestViewShapes(t *testing.T) {
	var buf bytes.Buffer
	printJSON(&buf, viewVNC(consolenote.VNC{Instance: "i-1", Node: "node1\x1b]0;x\x07", Host: "127.0.0.1", Port: 5901, Password: "pw"}))
	if strings.Contains(buf.String(), "\\u001b") || !strings.Contains(buf.String(), `"url": "vnc://127.0.0.1:5901"`) || !strings.Contains(buf.String(), `"loopback": true`) {
		t.Errorf("vnc: %s", buf.String())
	}
	golden(t, "json-vnc", jsonShape(t, buf.String()))
	buf.Reset()
	printJSON(&buf, hostView{RemovedPools: nonNil(nil), RemovedDirs: nonNil([]string{"/var/lib/kscloud/images"}), Kept: nonNil(nil)})
	if !strings.Contains(buf.String(), `"removed_pools": []`) || !strings.Contains(buf.String(), `"kept": []`) {
		t.Errorf("uninstall-host: %s", buf.String())
	}
	golden(t, "json-uninstall-host", jsonShape(t, buf.String()))
}

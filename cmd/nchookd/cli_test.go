package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/hook"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name, got string) {
	t.Helper()
	testenv.Golden(t, "./cmd/nchookd", "nchookd.8", name, got, *update)
}

// TestHelpGolden: -h/--help on stdout with exit 0 for nchookd and every
// command, the hook's too (it printed nothing); the texts are pinned.
func TestHelpGolden(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, out, errs := runCLI(args...)
		if code != 0 || errs != "" || out != usageText {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	golden(t, "help", usageText)
	if code, out, errs := runCLI(); code != 2 || out != "" || errs != usageText {
		t.Errorf("no command: exit %d: want the usage on stderr, exit 2", code)
	}
	for _, name := range []string{"check", "hook", "rewrite", "serve", "status", "version"} {
		var first string
		for i, h := range []string{"-h", "--help", "-help"} {
			code, out, errs := runCLI(name, h)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: nchookd "+name) {
				t.Errorf("%s %s: exit %d, stderr %q, stdout %.50q: want the usage on stdout, exit 0", name, h, code, errs, out)
			}
			if i == 0 {
				first = out
				golden(t, "help-"+name, out)
			} else if out != first {
				t.Errorf("%s %s differs from %s -h", name, h, name)
			}
		}
		if code, out, _ := runCLI("help", name); code != 0 || out != first {
			t.Errorf("help %s: exit %d", name, code)
		}
	}
}

func TestVersion(t *testing.T) {
	want := "nchookd " + version + "\n"
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		if code, out, errs := runCLI(args...); code != 0 || out != want || errs != "" {
			t.Errorf("%v: exit %d, %q %q; want %q", args, code, out, errs, want)
		}
	}
	code, out, _ := runCLI("version", "--output", "json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v["program"] != "nchookd" || v["version"] != version {
		t.Fatalf("version --output json: exit %d %v: %s", code, err, out)
	}
	golden(t, "json-version", jsonShape(t, out))
}

// TestStatusOutput: status --output json is the daemon's answer with
// instances always a list; --json still works and says it is deprecated;
// --output yaml is a usage error.
func TestStatusOutput(t *testing.T) {
	t.Setenv(hook.EnvSocket, statusDaemon(t, hookproto.Response{OK: true}))
	code, out, errs := runCLI("status", "--config", "/dev/null", "--output", "json")
	if code != 0 || errs != "" || !strings.Contains(out, `"instances": []`) {
		t.Errorf("no installs: exit %d %q:\n%s", code, errs, out)
	}
	if code, out, errs := runCLI("status", "--config", "/dev/null", "i-none"); code != 1 || out != "" || errs != "nchookd status: the daemon follows no instance i-none\n" {
		t.Errorf("an instance the daemon does not know: exit %d %q %q", code, out, errs)
	}
	st := hookproto.InstanceStatus{Outcome: preboot.Outcome{Instance: "i-1", Mode: "bake", Changed: true, VNC: &preboot.VNCInfo{Listen: "127.0.0.1", Port: 5901, Password: "pw"}, Notes: []string{"n"}},
		Phase: "failed", Reason: "r", StartedAt: time.Unix(0, 0), LastLines: []string{"x"}, InstallerXML: "<domain/>"}
	t.Setenv(hook.EnvSocket, statusDaemon(t, hookproto.Response{OK: true, Instances: []hookproto.InstanceStatus{st}, Daemon: &hookproto.DaemonStatus{Version: "v", PID: 1}}))
	code, out, errs = runCLI("status", "--config", "/dev/null", "--output", "json")
	if code != 0 || errs != "" || strings.Contains(out, "<domain") {
		t.Fatalf("exit %d %q:\n%s", code, errs, out)
	}
	golden(t, "json-status", jsonShape(t, out))
	code, old, errs := runCLI("status", "--config", "/dev/null", "--json")
	if code != 0 || old != out || errs != "nchookd status: --json is deprecated; use --output json\n" {
		t.Errorf("--json: exit %d, stderr %q, same output %v", code, errs, old == out)
	}
	for _, args := range [][]string{{"status", "--output", "yaml"}, {"check", "--output", "yaml"}, {"version", "--output", "yaml"}} {
		if code, out, errs := runCLI(args...); code != 2 || out != "" || !strings.Contains(errs, `--output "yaml": want text or json`) {
			t.Errorf("%v: exit %d %q %q: want a usage error", args, code, out, errs)
		}
	}
}

// TestCheckJSON: check --output json says what the text says on stderr.
func TestCheckJSON(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "nchookd.toml")
	node := "[hook]\ninstances_root = [\"" + dir + "\"]\nsocket_group = \"\"\nallowed_users = []\n"
	os.WriteFile(cfg, []byte(node), 0o644)
	code, out, errs := runCLI("check", "--config", cfg, "--output", "json")
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"problems": []`) || !strings.Contains(out, `"installers": []`) {
		t.Fatalf("exit %d %q:\n%s", code, errs, out)
	}
	os.WriteFile(cfg, []byte(node+"[installer.f40]\nkernel = \"/nonexistent/vmlinuz\"\ninitrd = \"/nonexistent/initrd.img\"\n"), 0o644)
	code, out, _ = runCLI("check", "--config", cfg, "--output", "json")
	if code != 1 || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, "/nonexistent/vmlinuz") {
		t.Fatalf("bad catalog: exit %d:\n%s", code, out)
	}
	golden(t, "json-check", jsonShape(t, out))
}

func jsonShape(t *testing.T, doc string) string {
	t.Helper()
	return testenv.JSONShape(t, doc, nil)
}

// TestManPageCommands: nchookd(8) shows every command in its SYNOPSIS and
// documents the CLI convention.
func TestManPageCommands(t *testing.T) {
	b, err := os.ReadFile("../../packaging/man/nchookd.8")
	if err != nil {
		t.Fatal(err)
	}
	man := string(b)
	for n := range commands() {
		if !strings.Contains(man, "\n.B nchookd "+n+"\n") {
			t.Errorf("nchookd.8: no SYNOPSIS line for %s", n)
		}
	}
	for _, s := range []string{".SH COMMAND LINE", `\fB\-\-output json\fR`, `\fB\-\-version\fR`, `\fB\-\-help\fR`, "deprecated"} {
		if !strings.Contains(man, s) {
			t.Errorf("nchookd.8 lacks %q", s)
		}
	}
}

// TestNotKscloudsEngine: nchookd shares what both binaries need (redact,
// safetext, libvirtxml) but never links kscloud's engine or its cloud
// providers.
func TestNotKscloudsEngine(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := "\n" + string(out)
	if !strings.Contains(deps, "\ngithub.com/kscloud/kscloud/internal/redact\n") {
		t.Fatalf("go list -deps does not list internal/redact:\n%s", out)
	}
	for _, bad := range []string{"internal/install", "internal/cloud/ec2", "internal/cloud/libvirt", "internal/cloud/opennebula"} {
		if strings.Contains(deps, "\ngithub.com/kscloud/kscloud/"+bad+"\n") {
			t.Errorf("nchookd depends on %s (kscloud's)", bad)
		}
	}
}

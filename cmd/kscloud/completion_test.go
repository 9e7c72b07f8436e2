package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionBash sources the generated script in a real bash and asks
// it what it completes.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	code, script, stderr := runCLI("completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, stderr)
	}
	f := filepath.Join(t.TempDir(), "kscloud.bash")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = "'" + w + "'"
		}
		sh := "source " + f + "; COMP_WORDS=(" + strings.Join(q, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _kscloud; printf '%s\\n' \"${COMPREPLY[@]}\""
		out, err := exec.Command(bash, "-c", sh).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v: %s", err, out)
		}
		return strings.Fields(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"kscloud", "ima"}, []string{"images"}},
		{[]string{"kscloud", "com"}, []string{"completion"}},
		{[]string{"kscloud", "images", ""}, []string{"list", "show", "rm", "export", "import"}},
		{[]string{"kscloud", "completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"kscloud", "run", "--ks"}, []string{"--ks", "--ks-delivery"}},
		{[]string{"kscloud", "lint", "--f"}, []string{"--for", "--format"}},
		{[]string{"kscloud", "cleanup", "--orph"}, []string{"--orphans"}},
		{[]string{"kscloud", "bake", "--memory", ""}, nil},
		{[]string{"kscloud", "lint", "--o"}, []string{"--output"}},
		{[]string{"kscloud", "version", "--o"}, []string{"--output"}},
		{[]string{"kscloud", "status", "--out"}, []string{"--output"}},
		{[]string{"kscloud", "--v"}, []string{"--version"}},
		{[]string{"kscloud", "images", "export", "--for"}, []string{"--format"}},
		{[]string{"kscloud", "images", "import", "--proven"}, []string{"--provenance"}},
		{[]string{"kscloud", "images", "import", "f.raw", "--proven"}, []string{"--provenance"}},
		{[]string{"kscloud", "images", "list", "--proven"}, nil},
		{[]string{"kscloud", "images", "export", "--format", ""}, nil},
		{[]string{"kscloud", "he"}, []string{"help"}},
		{[]string{"kscloud", "help", "ima"}, []string{"images"}},
		{[]string{"kscloud", "help", "unin"}, []string{"uninstall-host"}},
		{[]string{"kscloud", "help", "images", ""}, nil},
	} {
		got := complete(tc.words...)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("complete %q = %q, want %q", tc.words, got, tc.want)
		}
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"kscloud", "cleanup", "--"}, []string{"--orphans", "--connect", "--state-dir", "--output"}},
		{[]string{"kscloud", "images", "export", "--"}, []string{"--format", "--compress", "--connect"}},
		{[]string{"kscloud", "help", ""}, []string{"bake", "cleanup", "images", "uninstall-host"}},
	} {
		if got := complete(tc.words...); !hasAll(got, tc.want) {
			t.Errorf("complete %q = %q, want among them %q", tc.words, got, tc.want)
		}
	}
}

// TestCompletionNoBuildEnvironment: the completion scripts the packages
// install are generated on the build machine (make packages): what its
// environment makes a flag's default (LIBVIRT_DEFAULT_URI, EUCARC, the state
// directory from KSCLOUD_STATE_DIR, XDG_STATE_HOME, HOME or the user) is
// not in them.
func TestCompletionNoBuildEnvironment(t *testing.T) {
	vars := []string{"LIBVIRT_DEFAULT_URI", "EUCARC", "KSCLOUD_STATE_DIR", "XDG_STATE_HOME", "HOME", "ONE_AUTH", "ONE_XMLRPC", "EC2_URL", "AWS_REGION", "AWS_PROFILE"}
	gen := func() map[string]string {
		out := map[string]string{}
		for _, sh := range []string{"bash", "zsh", "fish"} {
			code, script, stderr := runCLI("completion", sh)
			if code != 0 {
				t.Fatalf("completion %s: exit %d: %s", sh, code, stderr)
			}
			out[sh] = script
		}
		return out
	}
	for _, v := range vars {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	clean := gen()
	for _, v := range vars {
		t.Setenv(v, "/buildhost/"+strings.ToLower(v))
	}
	t.Setenv("LIBVIRT_DEFAULT_URI", "qemu+ssh://builder@buildhost/system")
	for sh, script := range gen() {
		for _, leak := range []string{"buildhost", "/var/lib/kscloud", ".local/state"} {
			if i := strings.Index(script, leak); i >= 0 {
				t.Errorf("completion %s holds %q: ...%s...", sh, leak, script[max(0, i-80):min(len(script), i+40)])
			}
		}
		if script != clean[sh] {
			t.Errorf("completion %s differs with the build machine's environment", sh)
		}
	}
}

// TestCompletionTree: every command of the table, with its flags as its
// flag set defines them.
func TestCompletionTree(t *testing.T) {
	tree := completionTree()
	if len(tree) != len(commands()) {
		t.Fatalf("%d commands in the completion tree, %d in commands()", len(tree), len(commands()))
	}
	byName := map[string]compCmd{}
	for _, c := range tree {
		byName[c.name] = c
	}
	has := func(cmd, flag string, value bool) {
		for _, f := range byName[cmd].flags {
			if f.name == flag {
				if f.value != value {
					t.Errorf("%s --%s: value %v, want %v", cmd, flag, f.value, value)
				}
				return
			}
		}
		t.Errorf("%s: no flag --%s in %+v", cmd, flag, byName[cmd].flags)
	}
	has("run", "ks", true)
	has("run", "vnc", false)
	has("run", "v", false)
	has("bake", "resume", true)
	has("cleanup", "orphans", false)
	has("userdata", "bootparams", true)
	for _, sh := range []string{"zsh", "fish"} {
		code, out, _ := runCLI("completion", sh)
		if code != 0 || !strings.Contains(out, "orphans") || !strings.Contains(out, "images") {
			t.Errorf("completion %s: exit %d, output lacks commands or flags", sh, code)
		}
	}
	if code, _, _ := runCLI("completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2", code)
	}
}

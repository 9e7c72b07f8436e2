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
	} {
		got := complete(tc.words...)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("complete %q = %q, want %q", tc.words, got, tc.want)
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

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// zshCapture drives a real interactive zsh in a pseudo-terminal (zsh/zpty):
// compinit with the generated _kscloud on its fpath, TAB on the words in
// $2, and compadd wrapped to print every match it is given. Each step
// waits for a marker the typed text does not contain (the tty echoes it).
const zshCapture = `zmodload zsh/zpty || { print "no zsh/zpty"; exit 3 }
zpty z zsh -f -i
typeset all out
waitfor() {
	integer i
	for (( i = 0; i < 300; i++ )); do
		while zpty -rt z out; do all+=$out; done
		[[ $all == *$1* ]] && return 0
		sleep 0.05
	done
	print -r -- "timed out waiting for $1; the terminal showed: $all"
	exit 4
}
zpty -w z 'PROMPT= RPROMPT= ; fpath=('"$1"' $fpath); autoload -Uz compinit; compinit -u -D; bindkey "^I" complete-word; echo "<<""READY"">>"'
waitfor '<<READY>>'
zpty -w z 'null-line () { echo -E - "<<""END"">>" }; comppostfuncs=( null-line ); compadd () { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi; typeset -a __hits; builtin compadd -A __hits "$@"; local h; for h in $__hits; do echo -E - "<<""M>>$h"; done }; echo "<<""SET"">>"'
waitfor '<<SET>>'
all=
zpty -n -w z "$2"$'\t'
waitfor '<<END>>'
print -r -- "$all" | tr -d '\r' | grep -ao '<<M>>[^ <]*' | sed 's/^<<M>>//'
zpty -d z
`

// TestCompletionZsh loads the generated script as zsh's completion system
// does (compinit, fpath) in a real interactive zsh and completes with TAB.
func TestCompletionZsh(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh not installed (scripts/deps.sh installs it)")
	}
	code, script, stderr := runCLI("completion", "zsh")
	if code != 0 {
		t.Fatalf("completion zsh: exit %d: %s", code, stderr)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "_kscloud"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range shellCases {
		out, err := exec.Command(zsh, "-f", "-c", zshCapture, "zsh", dir, tc.line).CombinedOutput()
		if got := strings.Fields(string(out)); err != nil || !sameWords(got, tc.want) {
			t.Errorf("zsh: %q<TAB> = %q (%v), want %q", tc.line, got, err, tc.want)
		}
	}
	for _, tc := range shellSomeCases {
		out, err := exec.Command(zsh, "-f", "-c", zshCapture, "zsh", dir, tc.line).CombinedOutput()
		if got := strings.Fields(string(out)); err != nil || !hasAll(got, tc.want) {
			t.Errorf("zsh: %q<TAB> = %q (%v), want among them %q", tc.line, got, err, tc.want)
		}
	}
}

// TestCompletionFish sources the generated script in a real fish and asks
// it what it completes (complete -C).
func TestCompletionFish(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("fish not installed (scripts/deps.sh installs it)")
	}
	code, script, stderr := runCLI("completion", "fish")
	if code != 0 {
		t.Fatalf("completion fish: exit %d: %s", code, stderr)
	}
	f := filepath.Join(t.TempDir(), "kscloud.fish")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range shellCases {
		cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", f, tc.line)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				got = append(got, strings.SplitN(l, "\t", 2)[0]) // the candidate, less its description
			}
		}
		if err != nil || !sameWords(got, tc.want) {
			t.Errorf("fish: complete -C %q = %q (%v), want %q", tc.line, out, err, tc.want)
		}
	}
	for _, tc := range shellSomeCases {
		cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", f, tc.line)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		if err != nil || !hasAll(got, tc.want) {
			t.Errorf("fish: complete -C %q = %q (%v), want among them %q", tc.line, got, err, tc.want)
		}
	}
}

// hasAll reports whether got holds every word of want.
func hasAll(got, want []string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// shellCases are what the zsh and fish completions must offer for a
// command line (in any order; none for an empty want).
var shellCases = []struct {
	line string
	want []string
}{
	{"kscloud ima", []string{"images"}},
	{"kscloud images ", []string{"export", "import", "list", "rm", "show"}},
	{"kscloud completion ", []string{"bash", "fish", "zsh"}},
	{"kscloud cleanup --orph", []string{"--orphans"}},
	{"kscloud images export --for", []string{"--format"}},
	{"kscloud images import --proven", []string{"--provenance"}},
	{"kscloud images import f.raw --proven", []string{"--provenance"}},
	{"kscloud images list --proven", nil},
	{"kscloud he", []string{"help"}},
	{"kscloud help ima", []string{"images"}},
	{"kscloud help unin", []string{"uninstall-host"}},
}

// shellSomeCases are completions that must offer at least these words.
var shellSomeCases = []struct {
	line string
	want []string
}{
	{"kscloud cleanup --", []string{"--orphans", "--connect", "--state-dir", "--output"}},
	{"kscloud images export --", []string{"--format", "--compress", "--connect"}},
	{"kscloud help ", []string{"bake", "cleanup", "images", "uninstall-host"}},
}

// sameWords reports whether got and want hold the same words, in any order.
func sameWords(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The hook runs in the NC's path on every instance boot: it is a static,
// pure-Go binary (CGO_ENABLED=0) that must start fast and load nothing.
// These are the packages of the hook binaries (Eucalyptus' hook and
// OpenNebula's deploy wrapper); none may reach libvirt or need cgo (as Tailscale's cmd/tailscaled/deps_test.go guards its binary).
var hookPackages = []string{
	"github.com/kscloud/kscloud/hooks/eucalyptus",
	"github.com/kscloud/kscloud/hooks/opennebula",
	"github.com/kscloud/kscloud/hooks/opennebula/monitor",
	"github.com/kscloud/kscloud/internal/hook",
	"github.com/kscloud/kscloud/internal/hookproto",
	"github.com/kscloud/kscloud/internal/preboot",
}

// forbidden are packages the hook's import graph must not reach.
var forbidden = []string{
	"libvirt.org/go/libvirt",
	"github.com/kscloud/kscloud/internal/virt",
}

// goList runs go list -deps over pkgs with the project's build tags (from
// GOFLAGS, else scripts/gotags.sh) and env added, and returns its lines:
// import path, standard or not, the number of cgo files, any error.
func goList(t *testing.T, env []string, pkgs ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	flags := os.Getenv("GOFLAGS")
	if !strings.Contains(flags, "-tags") {
		tags, err := exec.Command("sh", "../../scripts/gotags.sh").Output()
		if err != nil {
			t.Fatalf("scripts/gotags.sh: %v", err)
		}
		flags = strings.TrimSpace(flags + " -tags=" + strings.TrimSpace(string(tags)))
	}
	args := append([]string{"list", "-e", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}} {{if .Error}}{{.Error}}{{end}}"}, pkgs...)
	cmd := exec.Command(goBin, args...)
	cmd.Env = append(append(os.Environ(), "GOFLAGS="+flags), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// violations returns, for go list lines, the forbidden packages reached,
// the non-standard packages with cgo files, and the packages with errors.
func violations(lines []string) []string {
	var bad []string
	for _, l := range lines {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 3 {
			bad = append(bad, "unexpected go list line: "+l)
			continue
		}
		path, std, cgo := f[0], f[1] == "true", f[2] != "0"
		for _, p := range forbidden {
			if path == p || strings.HasPrefix(path, p+"/") {
				bad = append(bad, path+": reaches "+p)
			}
		}
		if path == "C" || !std && cgo {
			bad = append(bad, path+": needs cgo")
		}
		if len(f) == 4 && strings.TrimSpace(f[3]) != "" {
			bad = append(bad, path+": "+strings.TrimSpace(f[3]))
		}
	}
	return bad
}

func TestHookDeps(t *testing.T) {
	lines := goList(t, nil, hookPackages...)
	if len(lines) < len(hookPackages) {
		t.Fatalf("go list found %d packages: %q", len(lines), lines)
	}
	for _, v := range violations(lines) {
		t.Error(v)
	}
	// As the Makefile builds it: without cgo every package still builds
	// (one needing cgo would have no files to build).
	for _, v := range violations(goList(t, []string{"CGO_ENABLED=0"}, hookPackages...)) {
		t.Errorf("CGO_ENABLED=0: %s", v)
	}
}

// TestHookDepsCheckFails runs the same check over the daemon, which does
// use libvirt: the check must see it.
func TestHookDepsCheckFails(t *testing.T) {
	bad := strings.Join(violations(goList(t, nil, "github.com/kscloud/kscloud/internal/hookd")), "\n")
	for _, want := range []string{"libvirt.org/go/libvirt: reaches libvirt.org/go/libvirt", "internal/virt: reaches", "libvirt.org/go/libvirt: needs cgo"} {
		if !strings.Contains(bad, want) {
			t.Errorf("the check over internal/hookd missed %q; it found:\n%s", want, bad)
		}
	}
}

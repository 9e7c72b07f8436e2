package cloudtest_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/kscloud/kscloud/"

// deps lists the non-standard packages pkg imports, directly or not
// (pkg included).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+pkg).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v %s", pkg, err, msg)
	}
	return strings.Fields(string(out))
}

// TestDeps: the conformance suite checks providers through package cloud
// and waits with package wait, as the product does; it depends on no
// provider (it once imported cloud/ec2 for its waiter), and the waiter
// depends on package cloud alone.
func TestDeps(t *testing.T) {
	base := deps(t, "internal/cloud")
	allowed := func(pkg string, extra ...string) {
		t.Helper()
		var bad []string
		for _, d := range deps(t, pkg) {
			if !slices.Contains(base, d) && !slices.Contains(extra, strings.TrimPrefix(d, module)) {
				bad = append(bad, d)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s depends on %s: want only the standard library, internal/cloud (and what it imports), %s", pkg, strings.Join(bad, ", "), strings.Join(extra, ", "))
		}
	}
	allowed("internal/cloud/wait", "internal/cloud/wait")
	allowed("internal/cloud/cloudtest", "internal/cloud/cloudtest", "internal/cloud/wait")
}

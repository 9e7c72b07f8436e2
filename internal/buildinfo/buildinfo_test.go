package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	if got := Version("1.2.3"); got != "1.2.3" {
		t.Errorf("linked version: got %q", got)
	}
	// A test binary has build info but no module version or VCS stamp.
	for _, linked := range []string{"", "dev"} {
		if got := Version(linked); got != "dev" && !strings.HasPrefix(got, "dev+") && !strings.HasPrefix(got, "v") {
			t.Errorf("Version(%q) = %q: want dev, dev+REVISION or a module version", linked, got)
		}
	}
	in := Get("kscloud", "1.2.3")
	if in.Program != "kscloud" || in.Version != "1.2.3" || in.Go != runtime.Version() {
		t.Errorf("Get: %+v", in)
	}
}

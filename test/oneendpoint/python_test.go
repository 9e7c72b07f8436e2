package oneendpoint_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/test/oneendpoint"
)

// python3 is Debian's (scripts/deps.sh installs it); a pyenv one may come
// first on PATH.
const python3 = "/usr/bin/python3"

// TestPythonXMLRPCClient: Python's standard xmlrpc.client, a client nobody
// here wrote, sends the calls goca sends and checks the replies' wire
// shape (testdata/wire_check.py), against both versions' behaviour.
func TestPythonXMLRPCClient(t *testing.T) {
	if _, err := os.Stat(python3); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI (scripts/deps.sh installs python3)", python3)
		}
		t.Skipf("needs %s (Debian's python3; scripts/deps.sh installs it)", python3)
	}
	for _, version := range []string{"7.0.0", "6.8.0"} {
		t.Run(version, func(t *testing.T) {
			srv := oneendpoint.Start(t, oneendpoint.Options{Version: version})
			out, err := exec.Command(python3, "testdata/wire_check.py", srv.URL(), srv.Session()).CombinedOutput()
			if err != nil {
				t.Fatalf("wire_check.py: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "checks passed") {
				t.Fatalf("wire_check.py said: %s", out)
			}
			t.Logf("%s", strings.TrimSpace(string(out)))
		})
	}
}

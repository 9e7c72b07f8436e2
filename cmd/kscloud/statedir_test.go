package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadingCommandsCreateNoStateDir: status, vnc, cleanup and images list
// on a host that never ran a build create no state directory, named by
// --state-dir or by KSCLOUD_STATE_DIR. libvirt's test driver (in the client library, no
// daemon) stands in for the host.
func TestReadingCommandsCreateNoStateDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"status"}, 0},
		{[]string{"status", "--output", "json"}, 0},
		{[]string{"status", "ks-20260101-120000-abcd"}, 1},
		{[]string{"vnc", "--connect", "test:///default", "ks-20260101-120000-abcd"}, 1},
		{[]string{"cleanup", "ks-20260101-120000-abcd"}, 1},
		{[]string{"cleanup", "--connect", "test:///default", "--orphans"}, 0},
		{[]string{"images", "list", "--connect", "test:///default"}, 0},
	} {
		for _, env := range []bool{false, true} {
			dir := filepath.Join(t.TempDir(), "state")
			args := append([]string{}, tc.args...)
			if env {
				t.Setenv("KSCLOUD_STATE_DIR", dir)
			} else {
				args = append(args[:1], append([]string{"--state-dir", dir}, args[1:]...)...)
			}
			code, stdout, stderr := runCLI(args...)
			if code != tc.code {
				t.Errorf("%v (KSCLOUD_STATE_DIR %v): exit %d, want %d; stdout %q stderr %q", args, env, code, tc.code, stdout, stderr)
			}
			if _, err := os.Lstat(dir); err == nil {
				t.Errorf("%v (KSCLOUD_STATE_DIR %v) created the state directory %s", args, env, dir)
			}
			if tc.code == 1 && strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("%v: more than one line: %q", args, stderr)
			}
		}
	}
}

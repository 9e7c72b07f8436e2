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

// TestUninstallHostRemovesStateDirs: uninstall-host removes the empty
// directories kscloud made in its state directory (builds, cache) and the
// state directory itself when nothing is left; a directory with files in it
// stays and is named. libvirt's test driver stands in for the host.
func TestUninstallHostRemovesStateDirs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	for _, d := range []string{"builds", "cache", "local/console", "volumes", "images"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runCLI("uninstall-host", "--connect", "test:///default", "--state-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Lstat(dir); err == nil {
		t.Errorf("state directory %s left:\n%s", dir, stdout)
	}
	for _, d := range []string{filepath.Join(dir, "builds"), filepath.Join(dir, "cache"), dir} {
		if !strings.Contains(stdout, "removed directory\t"+d+"\n") {
			t.Errorf("output does not say %s was removed:\n%s", d, stdout)
		}
	}

	// A summary in builds keeps builds and the state directory.
	if err := os.MkdirAll(filepath.Join(dir, "builds"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "builds", summaryFile), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI("uninstall-host", "--connect", "test:///default", "--state-dir", dir, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "builds", summaryFile)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, `"`+filepath.Join(dir, "builds")+`"`) || !strings.Contains(stdout, `"`+dir+`"`) {
		t.Errorf("json does not name the kept directories:\n%s", stdout)
	}

	// A state directory that is a symbolic link to one elsewhere is kept,
	// the link and what it points to: unlinking it would lose every build
	// record whatever the target holds.
	link := filepath.Join(t.TempDir(), "state-link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI("uninstall-host", "--connect", "test:///default", "--state-dir", link)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlinked state directory %s removed (%v):\n%s", link, err, stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "builds", summaryFile)); err != nil {
		t.Errorf("summary behind the symlinked state directory: %v", err)
	}
}

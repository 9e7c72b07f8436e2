package ncsim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDispatcher: the nc-hooks dispatcher exits 0 at once, silently, for
// every event but pre-boot and pre-clean, which it hands to the Go hook
// with the NC's arguments unchanged; a missing Go hook is one line and
// exit 126 (pre-boot) or 0 (pre-clean).
func TestDispatcher(t *testing.T) {
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("needs a C compiler (scripts/deps.sh installs gcc and libc6-dev)")
	}
	dir := t.TempDir()
	goHook := filepath.Join(dir, "lib", "hook")
	os.MkdirAll(filepath.Dir(goHook), 0o755)
	log := filepath.Join(dir, "args")
	os.WriteFile(goHook, []byte("#!/bin/sh\nprintf '%s|' \"$@\" > "+log+"\nexit 3\n"), 0o755)
	disp := filepath.Join(dir, "nchookd")
	if err := BuildDispatcher(goHook, disp); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		cmd := exec.Command(disp, args...)
		// No daemon: the dispatcher hands every handled event to the Go hook.
		cmd.Env = append(os.Environ(), "NCHOOKD_SOCKET="+filepath.Join(dir, "no.sock"))
		var se strings.Builder
		cmd.Stderr = &se
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), se.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, se.String()
	}
	for _, ev := range [][]string{{}, {"euca-nc-pre-hyp-check", "/"}, {"euca-nc-pre-init", "/"}, {"euca-nc-pre-boot-x", "/", "/i"}, {"something-new"}} {
		os.Remove(log)
		if code, se := run(ev...); code != 0 || se != "" {
			t.Fatalf("%q: exit %d, stderr %q", ev, code, se)
		}
		if _, err := os.Stat(log); err == nil {
			t.Fatalf("%q: the Go hook ran", ev)
		}
	}
	for _, ev := range []string{"euca-nc-pre-boot", "euca-nc-pre-clean"} {
		code, _ := run(ev, "/opt/eucalyptus", "/var/lib/eucalyptus/instances/work/A B/i-1")
		got, _ := os.ReadFile(log)
		if code != 3 || string(got) != ev+"|/opt/eucalyptus|/var/lib/eucalyptus/instances/work/A B/i-1|" {
			t.Fatalf("%s: exit %d, the Go hook got %q", ev, code, got)
		}
	}
	os.Remove(goHook)
	code, se := run("euca-nc-pre-boot", "/", "/i")
	if code != 126 || strings.Count(se, "\n") != 1 || !strings.Contains(se, goHook) {
		t.Fatalf("missing Go hook: exit %d, stderr %q", code, se)
	}
	// Cleaning is never kept from the NC for nchookd's own trouble (as
	// the Go hook's fallback): a missing Go hook is one line and exit 0.
	code, se = run("euca-nc-pre-clean", "/", "/i")
	if code != 0 || strings.Count(se, "\n") != 1 || !strings.Contains(se, goHook) {
		t.Fatalf("missing Go hook on pre-clean: exit %d, stderr %q", code, se)
	}
	if err := BuildDispatcher("relative/hook", filepath.Join(dir, "x")); err == nil {
		t.Fatal("a relative hook path was accepted")
	}
}

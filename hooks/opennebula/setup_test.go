package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kscloud/kscloud/internal/testenv"
)

const (
	stockV1 = "#!/bin/bash\n# OpenNebula deploy 7.0.0\n"
	stockV2 = "#!/bin/bash\n# OpenNebula deploy 7.0.1\n"
)

type frontend struct {
	remotes, kvm, deploy, orig string
	env                        []string
}

// newFrontend lays out REMOTES/vmm/kvm/deploy as OpenNebula installs it.
// dpkg: the dpkg database is a fresh one (DPKG_ADMINDIR), so that the
// diversions are real dpkg-divert ones without touching this machine's.
func newFrontend(t *testing.T, dpkg bool) *frontend {
	t.Helper()
	root := t.TempDir()
	f := &frontend{remotes: filepath.Join(root, "remotes")}
	f.kvm = filepath.Join(f.remotes, "vmm", "kvm")
	f.deploy, f.orig = filepath.Join(f.kvm, "deploy"), filepath.Join(f.kvm, "deploy.one")
	os.MkdirAll(f.kvm, 0o755)
	os.WriteFile(f.deploy, []byte(stockV1), 0o755)
	f.env = append(os.Environ(), "NCHOOKD_ONE_WRAPPER="+mustAbs(t, "deploy"))
	if dpkg {
		if _, err := exec.LookPath("dpkg-divert"); err != nil {
			t.Skip("dpkg-divert not installed: the diversion path is not tested here")
		}
		admin := filepath.Join(root, "dpkg")
		os.MkdirAll(filepath.Join(admin, "updates"), 0o755)
		os.WriteFile(filepath.Join(admin, "diversions"), nil, 0o644)
		os.WriteFile(filepath.Join(admin, "status"), nil, 0o644)
		f.env = append(f.env, "DPKG_ADMINDIR="+admin)
	} else {
		f.env = append(f.env, "NCHOOKD_ONE_NO_DPKG=1")
	}
	return f
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *frontend) setup(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("./nchookd-one-setup", append(args, f.remotes)...)
	cmd.Env = f.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func (f *frontend) expect(t *testing.T, deploy, orig string) {
	t.Helper()
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "<missing>"
		}
		return string(b)
	}
	wrapper := read("deploy")
	if deploy == "wrapper" {
		deploy = wrapper
	}
	if got := read(f.deploy); got != deploy {
		t.Fatalf("deploy is %q, want %q", firstLines(got), firstLines(deploy))
	}
	if got := read(f.orig); got != orig {
		t.Fatalf("deploy.one is %q, want %q", firstLines(got), firstLines(orig))
	}
	if deploy == wrapper {
		if st, err := os.Stat(f.deploy); err != nil || st.Mode().Perm() != 0o755 {
			t.Fatalf("wrapper mode: %v %v", st.Mode(), err)
		}
	}
}

func firstLines(s string) string {
	l := strings.SplitN(s, "\n", 3)
	return strings.Join(l[:min(2, len(l))], "\n")
}

// Enable, again (idempotent), OpenNebula upgrades, disable: OpenNebula's
// script is never lost or overwritten, and disable leaves the newest one
// of OpenNebula's as deploy.
func TestSetupRename(t *testing.T) {
	f := newFrontend(t, false)
	if out, code := f.setup(t, "status"); code != 3 || !strings.Contains(out, "not enabled") {
		t.Fatalf("status before: %d %s", code, out)
	}
	if out, code := f.setup(t, "enable"); code != 0 || !strings.Contains(out, "onehost sync --force") {
		t.Fatalf("enable: %d %s", code, out)
	}
	f.expect(t, "wrapper", stockV1)
	if out, code := f.setup(t, "enable"); code != 0 || !strings.Contains(out, "enabled already") {
		t.Fatalf("enable again: %d %s", code, out)
	}
	f.expect(t, "wrapper", stockV1)
	if out, code := f.setup(t, "status"); code != 0 || !strings.Contains(out, "renamed") {
		t.Fatalf("status: %d %s", code, out)
	}
	// An OpenNebula upgrade (rpm) writes its deploy over the wrapper.
	os.WriteFile(f.deploy, []byte(stockV2), 0o755)
	if out, code := f.setup(t, "status"); code != 3 || !strings.Contains(out, "left over") {
		t.Fatalf("status after OpenNebula's upgrade: %d %s", code, out)
	}
	if out, code := f.setup(t, "enable"); code != 0 {
		t.Fatalf("enable after OpenNebula's upgrade: %d %s", code, out)
	}
	f.expect(t, "wrapper", stockV2)
	if out, code := f.setup(t, "disable"); code != 0 || !strings.Contains(out, "OpenNebula's script again") {
		t.Fatalf("disable: %d %s", code, out)
	}
	f.expect(t, stockV2, "<missing>")
	if out, code := f.setup(t, "disable"); code != 0 || !strings.Contains(out, "not enabled") {
		t.Fatalf("disable again: %d %s", code, out)
	}
	f.expect(t, stockV2, "<missing>")
}

// With dpkg: a real diversion, so an OpenNebula upgrade writes its new
// deploy to deploy.one and the wrapper stays; disable removes the
// diversion and puts the newest deploy back.
func TestSetupDpkgDivert(t *testing.T) {
	f := newFrontend(t, true)
	if out, code := f.setup(t, "enable"); code != 0 {
		t.Fatalf("enable: %d %s", code, out)
	}
	f.expect(t, "wrapper", stockV1)
	cmd := exec.Command("dpkg-divert", "--list", f.deploy)
	cmd.Env = f.env
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "diversion of "+f.deploy+" to "+f.orig+" by nchookd") {
		t.Fatalf("dpkg-divert --list: %s", out)
	}
	if out, code := f.setup(t, "status"); code != 0 || !strings.Contains(out, "dpkg diversion") {
		t.Fatalf("status: %d %s", code, out)
	}
	// dpkg unpacking OpenNebula's upgrade writes the diverted path.
	os.WriteFile(f.orig, []byte(stockV2), 0o755)
	if out, code := f.setup(t, "enable"); code != 0 || !strings.Contains(out, "enabled already") {
		t.Fatalf("enable again: %d %s", code, out)
	}
	f.expect(t, "wrapper", stockV2)
	if out, code := f.setup(t, "disable"); code != 0 {
		t.Fatalf("disable: %d %s", code, out)
	}
	f.expect(t, stockV2, "<missing>")
	if out, _ := cmd.CombinedOutput(); strings.Contains(string(out), "nchookd") {
		t.Fatalf("diversion left: %s", out)
	}
}

// Errors are one line and change nothing: no remotes directory, a
// deploy that is someone else's while ours is diverted away.
func TestSetupErrors(t *testing.T) {
	f := newFrontend(t, false)
	os.RemoveAll(f.kvm)
	if out, code := f.setup(t, "enable"); code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "no such directory") {
		t.Fatalf("no remotes: %d %q", code, out)
	}
	f = newFrontend(t, false)
	if out, code := f.setup(t, "bogus"); code != 2 || !strings.Contains(out, "usage") {
		t.Fatalf("bogus: %d %q", code, out)
	}
	// The wrapper without deploy.one: enable refuses, nothing moves.
	os.WriteFile(f.deploy, mustRead(t, "deploy"), 0o755)
	if out, code := f.setup(t, "enable"); code != 1 || !strings.Contains(out, "deploy.one is missing") {
		t.Fatalf("wrapper without original: %d %q", code, out)
	}
	if out, code := f.setup(t, "disable"); code != 1 || !strings.Contains(out, "cannot restore") {
		t.Fatalf("disable without original: %d %q", code, out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The VM monitor probe: enable puts it in remotes/im/kvm-probes.d/vm/monitor
// (6.0+) once, status names it, disable removes it; a file of that name
// that is not nchookd's is never overwritten; a 5.12 layout (no per-VM
// probe directory) gets none.
func TestSetupProbe(t *testing.T) {
	f := newFrontend(t, false)
	probeSrc := mustAbs(t, "nchookd-probe")
	f.env = append(f.env, "NCHOOKD_ONE_PROBE="+probeSrc)
	dir := filepath.Join(f.remotes, "im", "kvm-probes.d", "vm", "monitor")
	probe := filepath.Join(dir, "nchookd")

	// 5.12: no vm/monitor directory.
	if out, code := f.setup(t, "enable"); code != 0 || strings.Contains(out, "probe") {
		t.Fatalf("enable without a probe directory: %d %q", code, out)
	}
	if _, err := os.Stat(probe); err == nil {
		t.Fatal("probe installed without OpenNebula's directory")
	}
	f.setup(t, "disable")

	os.MkdirAll(dir, 0o755)
	out, code := f.setup(t, "enable")
	if code != 0 || !strings.Contains(out, "enabled: VM monitor probe "+probe) {
		t.Fatalf("enable: %d %q", code, out)
	}
	want, _ := os.ReadFile(probeSrc)
	got, err := os.ReadFile(probe)
	if err != nil || string(got) != string(want) {
		t.Fatalf("probe content: %v", err)
	}
	if st, _ := os.Stat(probe); st.Mode().Perm() != 0o755 {
		t.Fatalf("probe mode %v", st.Mode())
	}
	if out, _ := f.setup(t, "enable"); strings.Contains(out, "probe") {
		t.Fatalf("second enable changed the probe: %q", out)
	}
	if out, code := f.setup(t, "status"); code != 0 || !strings.Contains(out, "VM monitor probe") {
		t.Fatalf("status: %d %q", code, out)
	}
	if out, code := f.setup(t, "disable"); code != 0 || !strings.Contains(out, "removed the VM monitor probe") {
		t.Fatalf("disable: %d %q", code, out)
	}
	if _, err := os.Stat(probe); err == nil {
		t.Fatal("probe left after disable")
	}

	// Someone else's probe of that name.
	os.WriteFile(probe, []byte("#!/bin/sh\necho theirs\n"), 0o755)
	if out, code := f.setup(t, "enable"); code != 1 || !strings.Contains(out, "is not nchookd's probe") {
		t.Fatalf("enable over a foreign probe: %d %q", code, out)
	}
	if b, _ := os.ReadFile(probe); string(b) != "#!/bin/sh\necho theirs\n" {
		t.Fatal("foreign probe overwritten")
	}
	if _, code := f.setup(t, "disable"); code != 0 {
		t.Fatal("disable failed over a foreign probe")
	}
	if b, _ := os.ReadFile(probe); string(b) != "#!/bin/sh\necho theirs\n" {
		t.Fatal("foreign probe removed by disable")
	}
}

// The probe script prints nothing and exits 0 on a host without nchookd,
// and whatever its Go half does, exits 0 with only that half's stdout.
func TestProbeScript(t *testing.T) {
	src, err := os.ReadFile("nchookd-probe")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(half string) string {
		t.Helper()
		s := strings.Replace(string(src), "PROBE=/usr/lib/nchookd/nchookd-one-monitor", "PROBE="+half, 1)
		if s == string(src) {
			t.Fatal("nchookd-probe has no PROBE=/usr/lib/nchookd/nchookd-one-monitor line (the Makefile's sed needs it)")
		}
		p := filepath.Join(dir, "probe")
		os.WriteFile(p, []byte(s), 0o755)
		out, err := exec.Command(p).Output()
		if err != nil {
			t.Fatalf("probe with %s: %v", half, err)
		}
		return string(out)
	}
	if out := run(filepath.Join(dir, "missing")); out != "" {
		t.Fatalf("no nchookd: %q", out)
	}
	half := filepath.Join(dir, "half")
	os.WriteFile(half, []byte("#!/bin/sh\necho 'VM = [ ID=\"1\" ]'\necho oops >&2\nexit 3\n"), 0o755)
	if out := run(half); out != "VM = [ ID=\"1\" ]\n" {
		t.Fatalf("failing half: %q", out)
	}
}

// TestSetupOwnersSymlinks: OpenNebula's remotes are oneadmin's, and setup
// runs as root (the package's postinst). A symlink that user put at the
// temporary file's name (root's old one was .deploy.nchookd.PID and
// .nchookd.PID: the PID is setup's, known to a wrapper that execs it)
// must not make root write, chmod or chown the file it points to.
func TestSetupOwnersSymlinks(t *testing.T) {
	testenv.Root(t)
	f := newFrontend(t, false)
	probeSrc := mustAbs(t, "nchookd-probe")
	f.env = append(f.env, "NCHOOKD_ONE_PROBE="+probeSrc)
	probedir := filepath.Join(f.remotes, "im", "kvm-probes.d", "vm", "monitor")
	os.MkdirAll(probedir, 0o755)
	const uid, gid = 65534, 65534 // nobody: the remotes' owner
	filepath.Walk(f.remotes, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	// The test's own temporary directories (0700): nobody must reach the
	// remotes. Not os.TempDir() itself, nor above it.
	for d := filepath.Dir(f.remotes); strings.HasPrefix(d, filepath.Clean(os.TempDir())+"/"); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	victim := filepath.Join(t.TempDir(), "root-only")
	os.WriteFile(victim, []byte("root's\n"), 0o600)

	script := fmt.Sprintf(`ln -s %[1]s %[2]s/.deploy.nchookd.$$ && ln -s %[1]s %[3]s/.nchookd.$$ && chown -h %[4]d:%[5]d %[2]s/.deploy.nchookd.$$ %[3]s/.nchookd.$$ && exec ./nchookd-one-setup enable %[6]s`,
		victim, f.kvm, probedir, uid, gid, f.remotes)
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = f.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("enable: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's\n" {
		t.Errorf("root-only file written through the symlink: %q", firstLines(string(b)))
	}
	if st, err := os.Stat(victim); err != nil || st.Mode().Perm() != 0o600 || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("root-only file's mode or owner changed: %v %v", st.Mode(), st.Sys().(*syscall.Stat_t).Uid)
	}
	for _, p := range []string{f.deploy, filepath.Join(probedir, "nchookd")} {
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o755 || st.Sys().(*syscall.Stat_t).Uid != uid {
			t.Errorf("%s: want a regular file 0755 owned by the remotes' owner, got %v %v", p, st.Mode(), err)
		}
	}
	f.expect(t, "wrapper", stockV1)
}

// nobodyFrontend is a frontend whose remotes belong to nobody (as
// OpenNebula's belong to oneadmin), reachable by nobody.
func nobodyFrontend(t *testing.T) *frontend {
	t.Helper()
	testenv.Root(t)
	f := newFrontend(t, false)
	filepath.Walk(f.remotes, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 65534, 65534) })
	for d := filepath.Dir(f.remotes); strings.HasPrefix(d, filepath.Clean(os.TempDir())+"/"); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return f
}

// TestSetupNotReadThroughSymlink: the remotes' owner replaces the enabled
// wrapper by a symbolic link to a root-only file that holds the wrapper's
// mark: root must not read it (status said "enabled", telling that user
// whether any file on the system holds a string), nor take it for the
// wrapper.
func TestSetupNotReadThroughSymlink(t *testing.T) {
	f := nobodyFrontend(t)
	if out, code := f.setup(t, "enable"); code != 0 {
		t.Fatalf("enable: exit %d\n%s", code, out)
	}
	victim := filepath.Join(t.TempDir(), "root-only")
	os.WriteFile(victim, []byte("nchookd's OpenNebula deploy wrapper\n"), 0o600)
	os.Remove(f.deploy)
	if err := os.Symlink(victim, f.deploy); err != nil {
		t.Fatal(err)
	}
	os.Lchown(f.deploy, 65534, 65534)
	out, code := f.setup(t, "status")
	if strings.HasPrefix(out, "enabled") || code == 0 {
		t.Errorf("status through a symlink to a root-only file: exit %d, %q: want it not taken for the wrapper", code, out)
	}
	if b, _ := os.ReadFile(victim); string(b) != "nchookd's OpenNebula deploy wrapper\n" {
		t.Errorf("root-only file changed: %q", b)
	}
}

// TestSetupSymlinkedDirRefused: vmm/kvm replaced by the remotes' owner with
// a symbolic link to a root-only directory holding files named deploy and
// deploy.one: enable must refuse in one line and leave them (root removed
// deploy.one there and moved deploy over it).
func TestSetupSymlinkedDirRefused(t *testing.T) {
	f := nobodyFrontend(t)
	victim := t.TempDir()
	os.Chmod(victim, 0o700)
	os.WriteFile(filepath.Join(victim, "deploy"), []byte("root's deploy\n"), 0o600)
	os.WriteFile(filepath.Join(victim, "deploy.one"), []byte("root's deploy.one\n"), 0o600)
	os.RemoveAll(f.kvm)
	if err := os.Symlink(victim, f.kvm); err != nil {
		t.Fatal(err)
	}
	os.Lchown(f.kvm, 65534, 65534)
	for _, cmd := range []string{"enable", "disable"} {
		out, code := f.setup(t, cmd)
		if code != 1 || !strings.Contains(out, "is a symbolic link: refused") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("%s with vmm/kvm a symlink: exit %d, %q: want one refusing line, exit 1", cmd, code, out)
		}
	}
	for name, want := range map[string]string{"deploy": "root's deploy\n", "deploy.one": "root's deploy.one\n"} {
		if b, err := os.ReadFile(filepath.Join(victim, name)); err != nil || string(b) != want {
			t.Errorf("root-only %s: %q %v, want it untouched", name, b, err)
		}
	}
	if ents, _ := os.ReadDir(victim); len(ents) != 2 {
		t.Errorf("root-only directory holds %d entries, want 2", len(ents))
	}
}

// TestSetupStatusAsAnotherUser: status run by a user who neither is root
// nor owns the remotes reads them as itself (setpriv to the owner's uid is
// not allowed to it: it said "not enabled", exit 3, of an enabled wrapper).
func TestSetupStatusAsAnotherUser(t *testing.T) {
	f := nobodyFrontend(t)
	if out, code := f.setup(t, "enable"); code != 0 {
		t.Fatalf("enable: %d %s", code, out)
	}
	script := filepath.Join(filepath.Dir(f.remotes), "nchookd-one-setup")
	b, err := os.ReadFile("nchookd-one-setup")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=54321", "--regid=54321", "--clear-groups", "sh", script, "status", f.remotes)
	cmd.Env = f.env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "enabled: "+f.deploy+" wraps") {
		t.Errorf("status as uid 54321: %v\n%s", err, out)
	}
}

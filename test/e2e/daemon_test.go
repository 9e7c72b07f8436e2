package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/testenv"
)

// notifyListener is a real sd_notify socket, as systemd provides.
func notifyListener(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify")
	ln, err := listenUnixgram(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, p
}

func readNotify(t *testing.T, ln *net.UnixConn, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	var all []string
	for time.Now().Before(deadline) {
		ln.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := ln.ReadFrom(buf)
		if err != nil {
			continue
		}
		msg := string(buf[:n])
		all = append(all, msg)
		if strings.Contains(msg, want) {
			return msg
		}
	}
	t.Fatalf("no %q on the notify socket within %s; got %q", want, timeout, all)
	return ""
}

// TestE2ESystemdProtocol starts nchookd the way systemd does: the hook
// socket passed by socket activation (LISTEN_FDS), Type=notify with a
// watchdog. It checks READY, STATUS, WATCHDOG pings, and that the passed
// socket serves.
func TestE2ESystemdProtocol(t *testing.T) {
	n := newNode(t)
	ln, notifyPath := notifyListener(t)
	os.MkdirAll(filepath.Dir(n.socket), 0o755)
	l, err := net.Listen("unix", n.socket)
	if err != nil {
		t.Fatal(err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // systemd keeps the socket file
	f, _ := ul.File()
	l.Close()
	// LISTEN_PID must be the daemon's pid: sh sets it to its own and execs.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ WATCHDOG_PID=$$ exec "$0" serve --config "$1"`, bins.nchookd, n.cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath, "LISTEN_FDS=1", "LISTEN_FDNAMES=nchookd.socket", "WATCHDOG_USEC=2000000")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	logs := new(testenv.Buffer)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	ready := readNotify(t, ln, "READY=1", 20*time.Second)
	if !strings.Contains(ready, "STATUS=serving") {
		t.Fatalf("READY without STATUS: %q", ready)
	}
	readNotify(t, ln, "WATCHDOG=1", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := hookproto.Call(ctx, n.socket, hookproto.Request{Op: hookproto.OpPing})
	if err != nil || !resp.OK {
		t.Fatalf("activated socket does not serve: %v", err)
	}
	if !strings.Contains(logs.String(), "activated=true") {
		t.Fatalf("daemon did not use the passed socket:\n%s", logs.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	readNotify(t, ln, "STOPPING=1", 5*time.Second)
}

// TestE2EConfigReload: a changed config file is applied; a broken one is
// refused and the previous one stays.
func TestE2EConfigReload(t *testing.T) {
	n := newNode(t)
	n.serve(t)
	orig, _ := os.ReadFile(n.cfg)
	call := func() *hookproto.Response {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := hookproto.Call(ctx, n.socket, hookproto.Request{Op: hookproto.OpStatus})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	refused := func(dir string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := hookproto.Call(ctx, n.socket, hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot", InstanceDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Refuse
	}
	// A second instances root, outside the first: refused until the config allows it.
	other := t.TempDir()
	inst := filepath.Join(other, "i-reload")
	os.MkdirAll(inst, 0o755)
	os.WriteFile(filepath.Join(inst, "instance.xml"), []byte("<instance><name>i-reload</name></instance>"), 0o644)
	os.WriteFile(filepath.Join(inst, "instance-libvirt.xml"), []byte("<domain/>"), 0o644)
	if !refused(inst) {
		t.Fatal("instance outside the root accepted")
	}
	// Broken file: refused, old config stays.
	tmp := n.cfg + ".new"
	os.WriteFile(tmp, append(append([]byte{}, orig...), []byte("\n[policy]\nvnc = \"everywhere\"\n")...), 0o644)
	os.Rename(tmp, n.cfg)
	time.Sleep(700 * time.Millisecond)
	if call().Daemon == nil {
		t.Fatal("daemon stopped answering after a bad config")
	}
	if !refused(inst) {
		t.Fatal("bad config changed behaviour")
	}
	// Good file, written by rename like config management does.
	good := strings.Replace(string(orig), "instances_root = [", "instances_root = ["+`"`+other+`", `, 1)
	os.WriteFile(tmp, []byte(good), 0o644)
	os.Rename(tmp, n.cfg)
	deadline := time.Now().Add(5 * time.Second)
	for refused(inst) {
		if time.Now().After(deadline) {
			t.Fatal("config change not applied within 5 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EMakeInstall checks the files make install lays out under DESTDIR.
func TestE2EMakeInstall(t *testing.T) {
	dest := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", "../..", "install", "DESTDIR="+dest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, p := range []string{"usr/sbin/nchookd", "usr/bin/kscloud", "etc/eucalyptus/nc-hooks/nchookd", "usr/lib/nchookd/nchookd-euca-hook",
		"usr/lib/systemd/system/nchookd.service", "usr/lib/systemd/system/nchookd.socket", "etc/nchookd/nchookd.toml",
		"usr/lib/tmpfiles.d/nchookd.conf", "usr/lib/sysusers.d/nchookd.conf"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("missing %s", p)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dest, "etc/eucalyptus/nc-hooks"))
	if len(ents) != 1 {
		t.Fatalf("nc-hooks holds %d files, want exactly one executable", len(ents))
	}
	// The hook binary must not load libvirt: a static binary with no interpreter.
	hook := filepath.Join(dest, "usr/lib/nchookd/nchookd-euca-hook")
	out, _ := exec.Command("file", hook).Output()
	if len(out) > 0 && !strings.Contains(string(out), "statically linked") {
		t.Fatalf("hook is not static: %s", out)
	}
	ldd, _ := exec.Command("ldd", hook).CombinedOutput()
	if strings.Contains(string(ldd), "libvirt") {
		t.Fatalf("hook links libvirt: %s", ldd)
	}
	// nc-hooks holds the dispatcher; the Go hook it execs for pre-boot and
	// pre-clean lives outside nc-hooks, static too, at the path compiled
	// into the dispatcher.
	goHook := "usr/lib/nchookd/nchookd-euca-hook"
	out, _ = exec.Command("file", filepath.Join(dest, goHook)).Output()
	if !strings.Contains(string(out), "statically linked") {
		t.Fatalf("Go hook %s: not static: %s", goHook, out)
	}
	disp, _ := os.ReadFile(filepath.Join(dest, "etc/eucalyptus/nc-hooks/nchookd"))
	if !bytes.Contains(disp, []byte("/"+goHook+"\x00")) {
		t.Fatalf("the dispatcher does not exec /%s", goHook)
	}
	// PREFIX=/usr/local: the units and the dispatcher name the binaries there.
	dest = t.TempDir()
	cmd = exec.Command("make", "--no-print-directory", "-C", "../..", "install", "DESTDIR="+dest, "PREFIX=/usr/local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install PREFIX=/usr/local: %v\n%s", err, out)
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system/nchookd.service"))
	disp, _ = os.ReadFile(filepath.Join(dest, "etc/eucalyptus/nc-hooks/nchookd"))
	if !strings.Contains(string(unit), "ExecStart=/usr/local/sbin/nchookd serve") || strings.Contains(string(unit), "=/usr/sbin/") {
		t.Errorf("PREFIX=/usr/local unit:\n%s", unit)
	}
	if !bytes.Contains(disp, []byte("/usr/local/lib/nchookd/nchookd-euca-hook\x00")) {
		t.Errorf("PREFIX=/usr/local: the dispatcher does not exec /usr/local/lib/nchookd/nchookd-euca-hook")
	}
}

// TestE2ESocketAccess: only root and the configured service user may use
// the hook socket. The socket's mode keeps others out; even when the mode
// is opened up, the daemon checks the peer's uid (SO_PEERCRED).
func TestE2ESocketAccess(t *testing.T) {
	n := newNode(t)
	n.serve(t)
	st, err := os.Stat(n.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v: with no socket_group only root may connect (0600)", st.Mode().Perm())
	}
	// Let nobody reach the socket's directory and the binary.
	for d := filepath.Dir(n.socket); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(bins.dir, 0o755)
	asNobody := func() (string, error) {
		cmd := exec.Command(bins.nchookd, "status", "--config", "/dev/null")
		cmd.Env = append(os.Environ(), "NCHOOKD_SOCKET="+n.socket)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := asNobody(); err == nil || !strings.Contains(out, "connect: permission denied") {
		t.Fatalf("nobody reached a 0600 socket: %v %s", err, out)
	}
	os.Chmod(n.socket, 0o666)
	if out, err := asNobody(); err == nil || !strings.Contains(out, "uid 65534 may not use nchookd") {
		t.Fatalf("the daemon served uid 65534: %v %s", err, out)
	}
}

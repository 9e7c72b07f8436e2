package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/internal/virt"
	"github.com/kscloud/kscloud/test/ncsim"
)

// node is a simulated Eucalyptus node: an instances root, an nc-hooks
// directory holding the real hook binary, an nchookd config.
type node struct {
	root, hooks, cfg, socket, state string
	env                             []string
}

func newNode(t testing.TB) *node {
	t.Helper()
	base := t.TempDir()
	n := &node{
		root:   filepath.Join(base, "instances"),
		hooks:  filepath.Join(base, "nc-hooks"),
		cfg:    filepath.Join(base, "etc", "nchookd.toml"),
		socket: filepath.Join(base, "run", "nchookd.sock"),
		state:  filepath.Join(base, "state"),
	}
	for _, d := range []string{n.root, n.hooks, filepath.Dir(n.cfg)} {
		os.MkdirAll(d, 0o755)
	}
	b, err := os.ReadFile(bins.ncHook) // the dispatcher, as make install lays it out
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.hooks, "nchookd"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	uri := os.Getenv(testenv.EnvLibvirt)
	if uri == "" {
		uri = "qemu:///system"
	}
	// image_roots: the tests' installer kernels and initrds live in
	// temporary directories, where a real NC's cache is in its instances
	// root.
	conf := fmt.Sprintf(`[hook]
socket = %q
instances_root = [%q]
image_roots = [%q]
socket_group = ""
allowed_users = []
[state]
dir = %q
inactivity_timeout = "5m"
[libvirt]
uri = %q
`, n.socket, n.root, os.TempDir(), n.state, uri)
	if err := os.WriteFile(n.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.env = append(os.Environ(), "NCHOOKD_CONFIG="+n.cfg, "NCHOOKD_SOCKET="+n.socket)
	return n
}

// setInactivity changes the watchdog's limit in the node's config.
func (n *node) setInactivity(t testing.TB, d string) {
	t.Helper()
	b, err := os.ReadFile(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), `inactivity_timeout = "5m"`, fmt.Sprintf("inactivity_timeout = %q", d), 1))
	if err := os.WriteFile(n.cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// serve starts nchookd serve for the node and waits for READY on a real
// sd_notify socket.
func (n *node) serve(t testing.TB) *exec.Cmd {
	t.Helper()
	notifyDir := t.TempDir()
	notifySock := filepath.Join(notifyDir, "notify")
	ln, err := listenUnixgram(notifySock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(bins.nchookd, "serve", "--config", n.cfg, "--log-level", "debug")
	if os.Getenv("KSCLOUD_E2E_SANDBOX") != "" {
		// nchookd.service's restrictions (scripts/sandbox-exec.sh): only
		// the node's directories (instances, state, socket) are writable.
		cmd = exec.Command("../../scripts/sandbox-exec.sh", filepath.Dir(n.root), "--",
			bins.nchookd, "serve", "--config", n.cfg, "--log-level", "debug")
	}
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifySock)
	logs := new(testenv.Buffer)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "VmHWM:") {
					t.Logf("nchookd %s", strings.Join(strings.Fields(l), " "))
				}
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("nchookd log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		ln.SetReadDeadline(time.Now().Add(time.Second))
		k, _, err := ln.ReadFrom(buf)
		if err != nil {
			continue
		}
		if strings.Contains(string(buf[:k]), "READY=1") {
			if _, err := os.Stat(n.socket); err != nil {
				t.Fatalf("READY sent before the socket exists: %v", err)
			}
			return cmd
		}
	}
	t.Fatalf("nchookd sent no READY=1 within 20 s; log:\n%s", logs.String())
	return nil
}

func openVirt(t *testing.T) *virt.Conn {
	t.Helper()
	uri := testenv.Libvirt(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := virt.Open(ctx, uri, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitStopped waits for domain name to stop and returns the reason.
func waitStopped(t *testing.T, c *virt.Conn, name string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-c.Events():
			if ev.Domain == name && ev.Kind == virt.Stopped {
				return ev.Reason
			}
		case <-deadline:
			t.Fatalf("domain %s did not stop within %s", name, timeout)
		}
	}
}

func consoleLine(t *testing.T, path, prefix string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("console log: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if i := strings.Index(line, prefix); i >= 0 {
			return line[i+len(prefix):]
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("no %q line in the console log:\n%s", prefix, b)
	return ""
}

// TestE2ENCLaunch plays the NC's launch sequence on a real libvirtd: write
// the instance directory, run the real hook from an nc-hooks directory,
// create the domain from what the hook left, and check on the serial
// console that the guest saw exactly the user's command line — with the
// daemon answering the hook, and without it (the hook's own fallback).
func TestE2ENCLaunch(t *testing.T) {
	c := openVirt(t)
	params := `ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp a=&b!c q="x y" kscloud.test=poweroff`
	for _, mode := range []string{"daemon", "fallback", "nc-3.1"} {
		t.Run(mode, func(t *testing.T) {
			n := newNode(t)
			if mode != "fallback" {
				n.serve(t)
			}
			kdir := t.TempDir()
			name := fmt.Sprintf("i-e2e%04x", os.Getpid()&0xffff) + mode[:2]
			dir := filepath.Join(n.root, "work", "AIDA", name)
			inst := &ncsim.Instance{
				Name: name, Dir: dir, Disk: filepath.Join(kdir, "disk.img"),
				Kernel: testenv.Kernel(t), Ramdisk: testenv.MiniInitrd(t, kdir),
				UserData: []byte("#!/bin/sh\n# bootparams=" + params + "\n"),
			}
			if mode == "nc-3.1" {
				inst.Version = "3.1"
			}
			os.WriteFile(inst.Disk, make([]byte, 1<<20), 0o644)
			if err := ncsim.Write(inst); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := ncsim.RunHooks(ctx, n.hooks, "euca-nc-pre-boot", "/", dir, n.env)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("pre-boot hook took %s", res[0].Duration)
			xml, err := ncsim.DomainXML(inst)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CreateXML(ctx, xml); err != nil {
				t.Fatal(err)
			}
			defer c.Destroy(context.Background(), name)
			if r := waitStopped(t, c, name, 90*time.Second); r != "shutdown" {
				t.Fatalf("guest stopped: %s", r)
			}
			got := consoleLine(t, inst.ConsoleLog(), "KSCLOUD-CMDLINE: ")
			if want := params + " console=ttyS1"; got != want {
				t.Fatalf("guest saw %q\nwant       %q", got, want)
			}
			if mode == "daemon" {
				out, err := exec.Command(bins.nchookd, "status", "--config", n.cfg, name).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "phase:") {
					t.Fatalf("nchookd status: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestE2EHookContract checks the hook's exit codes as the NC sees them.
func TestE2EHookContract(t *testing.T) {
	n := newNode(t)
	hook := filepath.Join(n.hooks, "nchookd")
	run := func(args ...string) (int, string) {
		cmd := exec.Command(hook, args...)
		cmd.Env = n.env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stderr.String()
	}
	for _, ev := range []string{"euca-nc-pre-hyp-check", "euca-nc-pre-init", "euca-nc-post-init", "euca-nc-pre-adopt", "euca-nc-pre-attach", "euca-nc-post-detach", "something-new"} {
		if code, errs := run(ev, "/", "/nonexistent"); code != 0 || errs != "" {
			t.Fatalf("%s: exit %d, stderr %q", ev, code, errs)
		}
	}
	// A refused launch: one line naming the instance, non-zero exit, file untouched.
	dir := filepath.Join(n.root, "i-refuse")
	inst := &ncsim.Instance{Name: "i-refuse", Dir: dir, Disk: "/dev/null", Kernel: "/k", Ramdisk: "/r",
		UserData: []byte("bootparams=ks=http://x/ks.cfg\nkscloud.installer=nope\n")}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(inst.DomainFile())
	code, errs := run("euca-nc-pre-boot", "/", dir)
	if code == 0 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "i-refuse") || !strings.Contains(errs, `"nope"`) {
		t.Fatalf("refusal: exit %d, stderr %q", code, errs)
	}
	after, _ := os.ReadFile(inst.DomainFile())
	if !bytes.Equal(before, after) {
		t.Fatal("refused launch changed the domain XML")
	}
	// A directory outside the instances root is refused even with the daemon.
	if code, errs := run("euca-nc-pre-boot", "/", t.TempDir()); code == 0 || !strings.Contains(errs, "outside") {
		t.Fatalf("outside root: exit %d, %q", code, errs)
	}
}

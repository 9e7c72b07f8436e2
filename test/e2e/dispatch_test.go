package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/test/ncsim"
)

// TestE2EDispatcherDaemon: the static nc-hooks dispatcher asks the real
// daemon itself (no Go hook started) and answers the NC as the Go hook
// would; it execs the Go hook only when the daemon does not do the work:
// no daemon, a daemon with another hook.timeout (it answers unavailable),
// a path it does not send (not printable ASCII), a daemon that takes the
// request and never answers (the Go hook then rewrites at once, in the
// time left), or an answer it cannot read. The daemon's error text is
// printed without control or bidi characters.
func TestE2EDispatcherDaemon(t *testing.T) {
	n := newNode(t)
	tmp := t.TempDir()
	// The Go hook behind a wrapper that notes each start and what it was
	// told (NCHOOKD_NO_DAEMON, NCHOOKD_TIMEOUT).
	log := filepath.Join(tmp, "go-hook.log")
	wrapper := filepath.Join(tmp, "go-hook")
	os.WriteFile(wrapper, []byte("#!/bin/sh\necho \"no_daemon=$NCHOOKD_NO_DAEMON timeout=$NCHOOKD_TIMEOUT\" >> "+log+"\nexec "+bins.hook+" \"$@\"\n"), 0o755)
	disp := filepath.Join(tmp, "nchookd")
	if err := ncsim.BuildDispatcher(wrapper, disp); err != nil {
		t.Fatal(err)
	}
	seq := 0
	const params = "ks=http://10.0.0.1/ks.cfg ip=dhcp"
	instance := func(name, userData string) *ncsim.Instance {
		seq++
		if name == "" {
			name = fmt.Sprintf("i-disp%04d", seq)
		}
		kdir := filepath.Join(n.root, "kernels", name)
		os.MkdirAll(kdir, 0o755)
		inst := &ncsim.Instance{Name: name, Version: "3.1", Dir: filepath.Join(n.root, "work", "AIDA", name),
			Disk: filepath.Join(kdir, "disk.img"), Kernel: filepath.Join(kdir, "vmlinuz"), Ramdisk: filepath.Join(kdir, "initrd"),
			UserData: []byte(userData)}
		if err := ncsim.Write(inst); err != nil {
			t.Fatal(err)
		}
		return inst
	}
	goHookRuns := func() []string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.Fields(string(b)) // two per run
	}
	run := func(env []string, args ...string) (int, string, time.Duration) {
		cmd := exec.Command(disp, args...)
		cmd.Env = env
		var se bytes.Buffer
		cmd.Stderr = &se
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), se.String(), took
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, se.String(), took
	}
	rewritten := func(inst *ncsim.Instance) bool {
		dom, _ := os.ReadFile(inst.DomainFile())
		return strings.Contains(string(dom), params)
	}
	known := func(name string) bool {
		_, err := status(t, n, name)
		return err == nil
	}

	// No daemon: the Go hook runs (asks, finds none) and rewrites.
	inst := instance("", "bootparams="+params+"\n")
	if code, se, _ := run(n.env, "euca-nc-pre-boot", "/", inst.Dir); code != 0 || se != "" || !rewritten(inst) {
		t.Fatalf("no daemon: exit %d, stderr %q, rewritten %v", code, se, rewritten(inst))
	}
	if runs := goHookRuns(); len(runs) != 2 || runs[0] != "no_daemon=" {
		t.Fatalf("no daemon: the Go hook ran as %q, want once, asking the daemon itself", runs)
	}

	n.serve(t)
	// The daemon answers the dispatcher: rewritten, recorded by the
	// daemon, and no Go process started.
	inst = instance("", "bootparams="+params+"\n")
	if code, se, _ := run(n.env, "euca-nc-pre-boot", "/", inst.Dir); code != 0 || se != "" || !rewritten(inst) {
		t.Fatalf("daemon: exit %d, stderr %q, rewritten %v", code, se, rewritten(inst))
	}
	if runs := goHookRuns(); len(runs) != 0 || !known(inst.Name) {
		t.Fatalf("daemon: the Go hook ran (%q) or the daemon does not know %s", runs, inst.Name)
	}
	// Without NCHOOKD_CONFIG the dispatcher assumes /etc/nchookd/nchookd.toml,
	// which this daemon does not serve: it answers unavailable and the Go
	// hook (reading the default config) does the work.
	noConf := []string{}
	for _, e := range n.env {
		if !strings.HasPrefix(e, "NCHOOKD_CONFIG=") {
			noConf = append(noConf, e)
		}
	}
	inst = instance("", "bootparams="+params+"\n")
	code, se, _ := run(noConf, "euca-nc-pre-boot", "/", inst.Dir)
	if runs := goHookRuns(); len(runs) != 2 || runs[0] != "no_daemon=" {
		t.Fatalf("other config: the Go hook ran as %q (exit %d, %q), want once, asking the daemon itself", runs, code, se)
	}
	// A refusal from the daemon: one line naming the instance, exit 1,
	// the file untouched, no Go hook.
	inst = instance("i-refuse", "bootparams="+params+"\nkscloud.installer=nope\n")
	before, _ := os.ReadFile(inst.DomainFile())
	code, se, _ = run(n.env, "euca-nc-pre-boot", "/", inst.Dir)
	after, _ := os.ReadFile(inst.DomainFile())
	if code != 1 || strings.Count(se, "\n") != 1 || !strings.HasPrefix(se, "nchookd: ") || !strings.Contains(se, "i-refuse") || !strings.Contains(se, `"nope"`) || !bytes.Equal(before, after) {
		t.Fatalf("refusal: exit %d, stderr %q, file changed %v", code, se, !bytes.Equal(before, after))
	}
	if code, se, _ := run(n.env, "euca-nc-pre-boot", "/", t.TempDir()); code != 1 || !strings.Contains(se, "outside") {
		t.Fatalf("outside the instances root: exit %d, stderr %q", code, se)
	}
	// Pre-clean through the daemon.
	if code, se, _ := run(n.env, "euca-nc-pre-clean", "/", inst.Dir); code != 0 || se != "" {
		t.Fatalf("pre-clean: exit %d, stderr %q", code, se)
	}
	if runs := goHookRuns(); len(runs) != 0 {
		t.Fatalf("refusal/pre-clean: the Go hook ran: %q", runs)
	}
	// A path that is not printable ASCII is never encoded by the
	// dispatcher: the Go hook sends it.
	inst = instance("i-dispé", "bootparams="+params+"\n")
	if code, se, _ := run(n.env, "euca-nc-pre-boot", "/", inst.Dir); code != 0 || !rewritten(inst) {
		t.Fatalf("non-ASCII path: exit %d, stderr %q, rewritten %v", code, se, rewritten(inst))
	}
	if runs := goHookRuns(); len(runs) != 2 || runs[0] != "no_daemon=" {
		t.Fatalf("non-ASCII path: the Go hook ran as %q, want once", runs)
	}
	// Another hook.timeout in force: the daemon answers unavailable, the
	// Go hook reads the config and asks it; the daemon does the work.
	n.setHookTimeout(t, "7s")
	inst = instance("", "bootparams="+params+"\n")
	if code, se, _ := run(n.env, "euca-nc-pre-boot", "/", inst.Dir); code != 0 || se != "" || !rewritten(inst) || !known(inst.Name) {
		t.Fatalf("hook.timeout 7s: exit %d, stderr %q, rewritten %v", code, se, rewritten(inst))
	}
	if runs := goHookRuns(); len(runs) != 2 || runs[0] != "no_daemon=" {
		t.Fatalf("hook.timeout 7s: the Go hook ran as %q, want once, asking the daemon", runs)
	}
	// NCHOOKD_TIMEOUT set: no assumption about the config's; the daemon
	// answers the dispatcher.
	inst = instance("", "bootparams="+params+"\n")
	if code, se, _ := run(append(n.env, "NCHOOKD_TIMEOUT=3s"), "euca-nc-pre-boot", "/", inst.Dir); code != 0 || se != "" || !rewritten(inst) {
		t.Fatalf("NCHOOKD_TIMEOUT: exit %d, stderr %q", code, se)
	}
	if runs := goHookRuns(); len(runs) != 0 {
		t.Fatalf("NCHOOKD_TIMEOUT: the Go hook ran: %q", runs)
	}

	// A socket that takes the request and never answers: after four
	// fifths of NCHOOKD_TIMEOUT the Go hook rewrites at once, told the
	// time left, and the whole hook stays within the timeout.
	fake := func(answer string) string {
		sock := filepath.Join(tmp, fmt.Sprintf("fake%d.sock", seq))
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					bufio.NewReader(c).ReadString('\n')
					if answer == "" {
						time.Sleep(5 * time.Second)
						return
					}
					c.Write([]byte(answer))
				}()
			}
		}()
		return sock
	}
	env := append(append([]string{}, n.env...), "NCHOOKD_SOCKET="+fake(""), "NCHOOKD_TIMEOUT=1s")
	inst = instance("", "bootparams="+params+"\n")
	code, se, took := run(env, "euca-nc-pre-boot", "/", inst.Dir)
	if code != 0 || !rewritten(inst) || took > 1500*time.Millisecond {
		t.Fatalf("silent daemon: exit %d, stderr %q, rewritten %v, took %s", code, se, rewritten(inst), took)
	}
	runs := goHookRuns()
	if len(runs) != 2 || runs[0] != "no_daemon=1" || !strings.HasPrefix(runs[1], "timeout=") {
		t.Fatalf("silent daemon: the Go hook ran as %q", runs)
	}
	if ms, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(runs[1], "timeout="), "ms")); err != nil || ms > 210 || ms < 1 {
		t.Fatalf("silent daemon: the Go hook was given %q, want the fifth of 1s left", runs[1])
	}
	// An answer the dispatcher cannot read: the same.
	env = append(append([]string{}, n.env...), "NCHOOKD_SOCKET="+fake("{\"ok\":tru\n"))
	inst = instance("", "bootparams="+params+"\n")
	if code, se, _ := run(env, "euca-nc-pre-boot", "/", inst.Dir); code != 0 || !rewritten(inst) {
		t.Fatalf("bad answer: exit %d, stderr %q", code, se)
	}
	if runs := goHookRuns(); len(runs) != 2 || runs[0] != "no_daemon=1" {
		t.Fatalf("bad answer: the Go hook ran as %q", runs)
	}
	// Hostile text in the answer (terminal escapes, bidi override, bytes
	// that are not UTF-8, extra keys of every JSON kind): printed as one
	// clean line.
	env = append(append([]string{}, n.env...), "NCHOOKD_SOCKET="+fake(`{"x":[1,{"a":"}\"]"},null,-2.5e3],"refuse":true,"error":"i-1: \u001b]52;c;eA==\u0007bad\r\n\u202eevil \u00e9\ud83d\ude00 `+"\xff\xc2\x9b"+`","ok":false}`+"\n"))
	code, se, _ = run(env, "euca-nc-pre-boot", "/", filepath.Join(n.root, "i-1"))
	if code != 1 || se != "nchookd: i-1: ?]52;c;eA==?bad???evil é😀 \uFFFD?\n" {
		t.Fatalf("hostile answer: exit %d, stderr %q", code, se)
	}
	if runs := goHookRuns(); len(runs) != 0 {
		t.Fatalf("hostile answer: the Go hook ran: %q", runs)
	}
}

// setHookTimeout sets hook.timeout in the node's config (by rename, as
// config management writes it) and waits until the running daemon has
// applied it: it then answers unavailable to a request assuming 5 s.
func (n *node) setHookTimeout(t *testing.T, d string) {
	t.Helper()
	b, err := os.ReadFile(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("[hook]\n"), []byte(fmt.Sprintf("[hook]\ntimeout = %q\n", d)), 1)
	if err := os.WriteFile(n.cfg+".new", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(n.cfg+".new", n.cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := hookproto.Call(ctx, n.socket, hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot",
			InstanceDir: "/nonexistent", AssumeTimeoutMS: 5000})
		cancel()
		if err == nil && resp.Unavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook.timeout %s not applied within 5 s (%v)", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

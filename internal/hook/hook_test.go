package hook

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/test/ncsim"
)

// node writes an instance below a fresh instances root and a config
// naming it with hook.timeout and hook.on_error; no daemon listens.
func node(t *testing.T, timeout, onError string) (env map[string]string, inst *ncsim.Instance) {
	t.Helper()
	root := t.TempDir()
	inst = &ncsim.Instance{Name: "i-0000AAAA", Dir: filepath.Join(root, "work", "AIDA", "i-0000AAAA"),
		Disk: filepath.Join(root, "disk.img"), Kernel: filepath.Join(root, "vmlinuz"), Ramdisk: filepath.Join(root, "initrd"),
		UserData: []byte("bootparams=ks=http://10.0.0.1/ks.cfg\n")}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "nchookd.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[hook]\ninstances_root = [%q]\ntimeout = %q\non_error = %q\n", root, timeout, onError)), 0o644)
	return map[string]string{EnvConfig: cfg, EnvSocket: filepath.Join(t.TempDir(), "absent.sock")}, inst
}

func runHook(t *testing.T, env map[string]string, dir string) (int, string, time.Duration) {
	t.Helper()
	var stderr bytes.Buffer
	start := time.Now()
	done := make(chan int, 1)
	go func() {
		done <- RunHook([]string{"euca-nc-pre-boot", "/", dir}, func(k string) string { return env[k] }, &stderr)
	}()
	select {
	case code := <-done:
		return code, stderr.String(), time.Since(start)
	case <-time.After(10 * time.Second):
		t.Fatal("the hook did not return within 10 s")
	}
	return 0, "", 0
}

// The finding: a lock held by someone else blocked the hook forever, and
// the NC with it. hook.timeout bounds the wait; the outcome is one line and
// what hook.on_error says.
func TestHookHeldLockBoundedByHookTimeout(t *testing.T) {
	for _, tc := range []struct {
		onError string
		code    int
	}{{"boot", 0}, {"refuse", 1}} {
		t.Run(tc.onError, func(t *testing.T) {
			env, inst := node(t, "800ms", tc.onError)
			before, _ := os.ReadFile(inst.DomainFile())
			f, err := os.OpenFile(filepath.Join(inst.Dir, ".nchookd.lock"), os.O_RDONLY|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
			code, stderr, took := runHook(t, env, inst.Dir)
			if code != tc.code || took > 3*time.Second {
				t.Fatalf("exit %d after %v, want %d within the 800ms timeout: %s", code, took, tc.code, stderr)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "i-0000AAAA") || !strings.Contains(stderr, "locked by another process") {
				t.Fatalf("stderr %q: want one line naming the instance and the lock", stderr)
			}
			if after, _ := os.ReadFile(inst.DomainFile()); !bytes.Equal(before, after) {
				t.Fatal("domain file changed without the lock")
			}
		})
	}
}

// A FIFO in place of the lock file neither blocks the hook nor is used.
func TestHookFIFOLockFile(t *testing.T) {
	env, inst := node(t, "2s", "refuse")
	if err := syscall.Mkfifo(filepath.Join(inst.Dir, ".nchookd.lock"), 0o666); err != nil {
		t.Fatal(err)
	}
	code, stderr, took := runHook(t, env, inst.Dir)
	if code != 1 || took > 2*time.Second || !strings.Contains(stderr, "not a regular file") {
		t.Fatalf("exit %d after %v: %q", code, took, stderr)
	}
}

// hook.timeout from the configuration is what the hook honours (it was
// never read): with no daemon and a free lock the rewrite happens.
func TestHookFallbackRewrites(t *testing.T) {
	env, inst := node(t, "3s", "refuse")
	code, stderr, _ := runHook(t, env, inst.Dir)
	after, _ := os.ReadFile(inst.DomainFile())
	if code != 0 || !bytes.Contains(after, []byte("ks=http://10.0.0.1/ks.cfg")) {
		t.Fatalf("exit %d %q", code, stderr)
	}
}

// A configuration the hook cannot read, with no daemon to answer: the
// pre-clean still succeeds with one line (nchookd's trouble never keeps
// the NC from cleaning an instance), as a pre-clean error does in the
// fallback.
func TestHookPreCleanUnreadableConfig(t *testing.T) {
	env, inst := node(t, "1s", "refuse")
	os.WriteFile(env[EnvConfig], []byte("[hook]\nno_such_key = 1\n"), 0o644)
	var stderr bytes.Buffer
	code := RunHook([]string{"euca-nc-pre-clean", "/", inst.Dir}, func(k string) string { return env[k] }, &stderr)
	if code != 0 || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("pre-clean with an unreadable config and no daemon: exit %d, stderr %q", code, stderr.String())
	}
}

// A configuration with a syntax error stops the daemon, and the hook's
// fallback cannot read it either: a launch whose user-data asks nothing of
// nchookd still boots as the NC wrote it (one line says why nothing was
// done); one with directives is refused, as nothing can honour them.
func TestHookBrokenConfigPassesLaunchWithoutDirectives(t *testing.T) {
	env, inst := node(t, "1s", "refuse")
	os.WriteFile(env[EnvConfig], []byte("[hook\ninstances_root = \n"), 0o644)
	with := inst
	code, stderr, _ := runHook(t, env, with.Dir)
	if code == 0 || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("directives, broken config: exit %d, stderr %q", code, stderr)
	}
	plain := &ncsim.Instance{Name: "i-0000BBBB", Dir: filepath.Join(filepath.Dir(inst.Dir), "i-0000BBBB"),
		Disk: inst.Disk, Kernel: inst.Kernel, Ramdisk: inst.Ramdisk, UserData: []byte("#!/bin/sh\necho hello\n")}
	if err := ncsim.Write(plain); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(plain.DomainFile())
	code, stderr, _ = runHook(t, env, plain.Dir)
	after, _ := os.ReadFile(plain.DomainFile())
	if code != 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "i-0000BBBB") || !bytes.Equal(before, after) {
		t.Fatalf("no directives, broken config: exit %d, stderr %q, domain changed %v", code, stderr, !bytes.Equal(before, after))
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/testenv"
)

// Each pitfall that stops a node is refused by `nchookd check` with one
// line naming the key, and the daemon refuses the same file at start.
func TestCheckCatchesWhatStopsANode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "tmp"), 0o777)
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777) // as /tmp: every launch below it would be refused
	good := "[hook]\ninstances_root = [\"" + dir + "\"]\nsocket_group = \"\"\nallowed_users = []\n[libvirt]\nuri = \"\"\n"
	for _, tc := range []struct{ name, body, want string }{
		{"instances root missing", strings.Replace(good, dir, dir+"/instancs", 1), "hook.instances_root " + dir + "/instancs"},
		{"instances root a file", strings.Replace(good, dir, file, 1), "not a directory"},
		{"instances root writable by every user", strings.Replace(good, dir, dir+"/tmp", 1), "hook.instances_root " + dir + "/tmp: writable by every user"},
		{"socket group missing", strings.Replace(good, `socket_group = ""`, `socket_group = "no-such-group-x"`, 1), `hook.socket_group "no-such-group-x"`},
		{"allowed user missing", strings.Replace(good, `allowed_users = []`, `allowed_users = ["no-such-user-x"]`, 1), `"no-such-user-x": no such user`},
		{"vnc_listen a host name", good + "[policy]\nvnc = \"address\"\nvnc_listen = \"node1.example\"\n", `policy.vnc_listen "node1.example" is not an IP address`},
		{"vnc_listen with a port", good + "[policy]\nvnc = \"address\"\nvnc_listen = \"10.0.0.1:5900\"\n", "not an IP address"},
		{"vnc_listen not read", good + "[policy]\nvnc = \"loopback\"\nvnc_listen = \"10.0.0.1\"\n", "only read with"},
		{"state.dir a file", good + "[state]\ndir = \"" + file + "\"\n", "state.dir " + file + ": not a directory"},
		{"state.dir below a file", good + "[state]\ndir = \"" + file + "/state\"\n", "state.dir " + file + "/state"},
		{"socket not a socket", strings.Replace(good, "[hook]\n", "[hook]\nsocket = \""+file+"\"\n", 1), "hook.socket " + file + ": exists and is not a socket"},
		{"socket below a file", strings.Replace(good, "[hook]\n", "[hook]\nsocket = \""+file+"/s.sock\"\n", 1), "hook.socket " + file + "/s.sock"},
		{"catalog file missing", good + "[installer.f40]\nkernel = \"" + file + "\"\ninitrd = \"" + dir + "/nope\"\n", `installer "f40": initrd ` + dir + "/nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "nchookd.toml")
			os.WriteFile(cfg, []byte(tc.body), 0o644)
			code, _, stderr := runCLI("check", "--config", cfg)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("check: exit %d, stderr %q, want %q", code, stderr, tc.want)
			}
			if err := serveConfig(t, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("the daemon did not refuse what check refused: %v", err)
			}
		})
	}
	// The reverse: what check accepts, the daemon serves.
	cfg := filepath.Join(t.TempDir(), "nchookd.toml")
	os.WriteFile(cfg, []byte(good), 0o644)
	if code, _, stderr := runCLI("check", "--config", cfg); code != 0 {
		t.Fatalf("check refused a good config: %s", stderr)
	}
	if err := serveConfig(t, cfg); err != nil {
		t.Fatalf("the daemon refused what check accepted: %v", err)
	}
}

// A catalog file the hook's fallback (the instances root's owner) cannot
// read is refused.
func TestCheckCatalogReadableByFallback(t *testing.T) {
	testenv.Root(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "instances")
	os.Mkdir(root, 0o755)
	os.Chown(root, 65534, 65534)
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, []byte("k"), 0o644)
	os.WriteFile(i, []byte("i"), 0o600) // root only
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	cfg := filepath.Join(t.TempDir(), "nchookd.toml")
	os.WriteFile(cfg, []byte("[hook]\ninstances_root = [\""+root+"\"]\nsocket_group = \"\"\nallowed_users = []\n[installer.f40]\nkernel = \""+k+"\"\ninitrd = \""+i+"\"\n"), 0o644)
	code, _, stderr := runCLI("check", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, i+": not readable by uid 65534") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	os.Chmod(i, 0o644)
	if code, _, stderr := runCLI("check", "--config", cfg); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// serveConfig starts the daemon on cfg (socket and state in temporary
// directories) and returns its start-up error, or nil once it answers.
func serveConfig(t *testing.T, path string) error {
	return serveConfigURI(t, path, "")
}

// The finding: for its first seconds (libvirt unreachable, up to 10 s) the
// daemon accepted hook connections and answered none. It answers at once.
func TestServeAnswersWhileLibvirtIsUnreachable(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "nchookd.toml")
	os.WriteFile(cfg, []byte("[hook]\ninstances_root = [\""+dir+"\"]\nsocket_group = \"\"\nallowed_users = []\n"), 0o644)
	start := time.Now()
	if err := serveConfigURI(t, cfg, "qemu:///system?socket="+filepath.Join(dir, "no-libvirt.sock")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("first answer after %v with libvirt unreachable", took)
	}
}

func serveConfigURI(t *testing.T, path, uri string) error {
	t.Helper()
	c, err := config.Load(path, true)
	if err != nil {
		return err
	}
	// The node's own paths, unless the case is about them.
	if def := config.Default(); c.Hook.Socket == def.Hook.Socket {
		c.Hook.Socket = filepath.Join(t.TempDir(), "s.sock")
	}
	if def := config.Default(); c.State.Dir == def.State.Dir {
		c.State.Dir = t.TempDir()
	}
	c.Libvirt.URI = uri
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), c, path) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return err
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		resp, err := hookproto.Call(pctx, c.Hook.Socket, hookproto.Request{Op: hookproto.OpPing})
		pcancel()
		if err == nil && resp.OK {
			cancel()
			<-errc
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the daemon neither answered nor refused within 15 s")
	return nil
}

package hookd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/virt"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeVirt is a minimal in-memory libvirt for the follower's logic; the
// behaviour on a real libvirtd is proven in test/e2e.
type fakeVirt struct {
	mu      sync.Mutex
	ev      chan virt.Event
	doms    map[string]fakeDom
	created []string
	started []string
}

type fakeDom struct {
	xml        string
	active     bool
	persistent bool
	uuid       string
}

func newFakeVirt() *fakeVirt {
	return &fakeVirt{ev: make(chan virt.Event, 16), doms: map[string]fakeDom{}}
}

func (f *fakeVirt) Events() <-chan virt.Event { return f.ev }
func (f *fakeVirt) State() string             { return "connected" }
func (f *fakeVirt) CreateXML(ctx context.Context, x string) error {
	name, err := libvirtxml.DomainName([]byte(x))
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, x)
	d := f.doms[name]
	d.xml, d.active = x, true
	f.doms[name] = d
	return nil
}
func (f *fakeVirt) Start(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, name)
	d := f.doms[name]
	d.active = true
	f.doms[name] = d
	return nil
}
func (f *fakeVirt) Info(ctx context.Context, name string) (virt.DomainInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.doms[name]
	if !ok {
		return virt.DomainInfo{}, fmt.Errorf("domain %q: %w", name, virt.ErrNoDomain)
	}
	return virt.DomainInfo{Name: name, UUID: d.uuid, Active: d.active, Persistent: d.persistent}, nil
}
func (f *fakeVirt) XML(ctx context.Context, name string, secure bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.doms[name]
	if !ok {
		return "", fmt.Errorf("domain %q: %w", name, virt.ErrNoDomain)
	}
	return d.xml, nil
}
func (f *fakeVirt) InactiveXML(ctx context.Context, name string) (string, error) {
	return f.XML(ctx, name, true)
}
func (f *fakeVirt) DiskWrites(ctx context.Context, name string) (uint64, error) { return 0, nil }
func (f *fakeVirt) stop(name string) {
	f.mu.Lock()
	d := f.doms[name]
	d.active = false
	if !d.persistent {
		delete(f.doms, name)
	} else {
		f.doms[name] = d
	}
	f.mu.Unlock()
}

const baseDomain = `<domain type="qemu">
  <name>i-1</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <memory>262144</memory>
  <os>
    <type>hvm</type>
    <kernel>/k</kernel>
    <initrd>/i</initrd>
    <cmdline>root=/dev/sda1 console=ttyS0</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <disk type="file" device="disk"><source file="/d.img"/><target dev="sda" bus="scsi"/></disk>
    <serial type="file"><source path="CONSOLE"/><target port="1"/></serial>
  </devices>
</domain>
`

func installer(t *testing.T, mode, console string) string {
	out, err := libvirtxml.RewriteInstall([]byte(strings.Replace(baseDomain, "CONSOLE", console, 1)),
		libvirtxml.Install{Cmdline: "ks=http://x/ks.cfg", Mode: mode, VNC: &libvirtxml.VNC{Listen: "127.0.0.1", Password: "abcdefgh"}})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func newFollower(t *testing.T, v *fakeVirt, dir string) (*Follower, *Store) {
	store, err := OpenStore(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	// The tests' instance directories are the test's other temporary
	// directories, beside the state directory.
	cfg.Hook.InstancesRoot = []string{filepath.Dir(dir)}
	return NewFollower(quiet, store, v, func() *config.Config { return cfg }), store
}

func TestFollowerInPlace(t *testing.T) {
	state, con := t.TempDir(), filepath.Join(t.TempDir(), "console.log")
	os.WriteFile(con, []byte("Starting installer, one moment...\nInstalling bash (3/9)\n"), 0o644)
	v := newFakeVirt()
	f, store := newFollower(t, v, state)
	ctx := context.Background()
	v.CreateXML(ctx, installer(t, "in-place", con))
	store.Started(&preboot.Outcome{Instance: "i-1", Mode: "in-place", VNC: &preboot.VNCInfo{Listen: "127.0.0.1", Password: "abcdefgh"}})
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
	f.poll(ctx)
	st, _ := store.Get("i-1")
	if st.Phase != PhaseInstalling || st.Progress != "installing packages 3/9 (bash)" || st.InstallerXML == "" {
		t.Fatalf("after start: %+v", st)
	}
	v.stop("i-1")
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
	st, _ = store.Get("i-1")
	if st.Phase != PhaseFinal || st.VNC != nil {
		t.Fatalf("after stop: %+v", st)
	}
	if len(v.created) != 2 {
		t.Fatalf("created %d domains", len(v.created))
	}
	final := v.created[1]
	for _, bad := range []string{"<kernel>", "<cmdline>", `type="vnc"`} {
		if strings.Contains(final, bad) {
			t.Fatalf("final domain has %s:\n%s", bad, final)
		}
	}
	if !strings.Contains(final, "11111111-2222-3333-4444-555555555555") || !strings.Contains(final, "<on_reboot>restart</on_reboot>") {
		t.Fatalf("final domain lost its UUID or on_reboot:\n%s", final)
	}
	// The record survives a restart of the daemon.
	store2, err := OpenStore(state, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if st2, ok := store2.Get("i-1"); !ok || st2.Phase != PhaseFinal {
		t.Fatalf("reloaded: %+v", st2)
	}
}

func TestFollowerFailures(t *testing.T) {
	for _, tc := range []struct {
		name, console, reason, want string
	}{
		{"crash", "Installing a (1/2)\n", "crashed", "installer stopped: crashed"},
		{"traceback", "Traceback (most recent call last):\n  File x\n", "shutdown", "installer reported: Traceback"},
		{"ks 404", "kickstart file not found: http://x/ks.cfg\n", "shutdown", "kickstart file not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			con := filepath.Join(t.TempDir(), "console.log")
			os.WriteFile(con, []byte(tc.console), 0o644)
			v := newFakeVirt()
			f, store := newFollower(t, v, t.TempDir())
			ctx := context.Background()
			v.CreateXML(ctx, installer(t, "in-place", con))
			store.Started(&preboot.Outcome{Instance: "i-1", Mode: "in-place"})
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
			v.stop("i-1")
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: tc.reason, Time: time.Now()})
			st, _ := store.Get("i-1")
			if st.Phase != PhaseFailed || !strings.Contains(st.Reason, tc.want) {
				t.Fatalf("%+v", st)
			}
			if len(v.created) != 1 {
				t.Fatal("a failed install was booted from disk")
			}
		})
	}
}

func TestFollowerBakeAndAdopt(t *testing.T) {
	con := filepath.Join(t.TempDir(), "console.log")
	os.WriteFile(con, nil, 0o644)
	v := newFakeVirt()
	f, store := newFollower(t, v, t.TempDir())
	ctx := context.Background()
	// A kscloud installer on plain libvirt: nchookd did not rewrite it but
	// adopts it from its metadata; its persistent definition boots after.
	v.CreateXML(ctx, installer(t, "bake", con))
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
	st, ok := store.Get("i-1")
	if !ok || st.Phase != PhaseInstalling || st.Mode != "bake" || st.ConsoleLog != con {
		t.Fatalf("not adopted: %+v", st)
	}
	v.stop("i-1")
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
	if st, _ := store.Get("i-1"); st.Phase != PhaseFinished {
		t.Fatalf("bake: %+v", st)
	}
}

func TestFollowerReconcileAfterCrash(t *testing.T) {
	// The daemon died after the installer started; the installer ended
	// while it was down. On start the follower finishes the switch.
	con := filepath.Join(t.TempDir(), "console.log")
	os.WriteFile(con, []byte("Installation complete\n"), 0o644)
	state := t.TempDir()
	v := newFakeVirt()
	f, store := newFollower(t, v, state)
	ctx := context.Background()
	v.CreateXML(ctx, installer(t, "in-place", con))
	store.Started(&preboot.Outcome{Instance: "i-1", Mode: "in-place"})
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
	v.stop("i-1")
	f2, store2 := newFollower(t, v, state)
	f2.Reconcile(ctx)
	if st, _ := store2.Get("i-1"); st.Phase != PhaseFinal {
		t.Fatalf("%+v", st)
	}
	if info, err := v.Info(ctx, "i-1"); err != nil || !info.Active {
		t.Fatalf("final domain not running: %v", err)
	}
}

func TestServerSocket(t *testing.T) {
	store, err := OpenStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	srv := New(quiet, cfg, store, "test")
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	store.Started(&preboot.Outcome{Instance: "i-9", Mode: "bake"})
	store.Update("i-9", func(s *hookproto.InstanceStatus) { s.InstallerXML = "<domain/>" })
	resp, err := hookproto.Call(ctx, sock, hookproto.Request{Op: hookproto.OpStatus})
	if err != nil || !resp.OK || len(resp.Instances) != 1 || resp.Instances[0].InstallerXML != "" || resp.Daemon.Version != "test" {
		t.Fatalf("status: %+v %v", resp, err)
	}
	resp, _ = hookproto.Call(ctx, sock, hookproto.Request{Op: hookproto.OpStatus, Instance: "i-nope"})
	if resp.OK || !strings.Contains(resp.Error, "i-nope") {
		t.Fatalf("unknown instance: %+v", resp)
	}
	// A pre-boot outside the instances root is refused whatever on_error says.
	resp, _ = hookproto.Call(ctx, sock, hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot", InstanceDir: t.TempDir()})
	if !resp.Refuse {
		t.Fatalf("outside root: %+v", resp)
	}
	// Garbage gets an error answer, not a hang.
	c, _ := net.Dial("unix", sock)
	c.Write([]byte("{not json\n"))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.Contains(line, "bad request") {
		t.Fatalf("garbage answer %q", line)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestFollowerVNCNote: with a VNC console, the follower puts where it is
// first in the instance directory's console.append.log (what the
// Eucalyptus NC puts before the console in GetConsoleOutput), keeping what
// else the file holds, never shows it in progress or last lines, and
// notes the console closed when the installer ends.
func TestFollowerVNCNote(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	con, appendLog := filepath.Join(dir, "console.log"), filepath.Join(dir, consolenote.AppendLog)
	os.WriteFile(con, []byte("Starting installer, one moment...\n"), 0o644)
	os.WriteFile(appendLog, []byte("Operating system: Linux\r\n"), 0o644)
	v := newFakeVirt()
	f, store := newFollower(t, v, state)
	f.node = "nc7"
	ctx := context.Background()
	live := strings.Replace(installer(t, "bake", con), `port="-1"`, `port="5907"`, 1)
	if !strings.Contains(live, `port="5907"`) {
		t.Fatalf("installer domain:\n%s", live)
	}
	v.CreateXML(ctx, live)
	store.Started(&preboot.Outcome{Instance: "i-1", Dir: dir, Mode: "bake", VNC: &preboot.VNCInfo{Listen: "127.0.0.1", Password: "abcdefgh"}})
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
	b, _ := os.ReadFile(appendLog)
	want := consolenote.VNC{Instance: "i-1", Node: "nc7", Host: "127.0.0.1", Port: 5907, Password: "abcdefgh"}
	if got, st := consolenote.Read(b, "i-1"); st != consolenote.Open || got != want {
		t.Fatalf("append log after start: %+v %v, want %+v open:\n%s", got, st, want, b)
	}
	if !strings.HasPrefix(string(b), consolenote.Prefix) || !strings.HasSuffix(string(b), "Operating system: Linux\r\n") {
		t.Errorf("append log %q: want the note first and the other hook's line kept", b)
	}
	// A reconcile (daemon restart) writes it again, not twice.
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
	b, _ = os.ReadFile(appendLog)
	if n := strings.Count(string(b), consolenote.Prefix); n != 1 {
		t.Fatalf("%d notes after a second start", n)
	}
	if c, _ := os.ReadFile(con); strings.Contains(string(c), consolenote.Prefix) {
		t.Errorf("the note went into the guest's console log")
	}
	// A failed install's last lines never carry the password.
	fh, _ := os.OpenFile(con, os.O_WRONLY|os.O_APPEND, 0)
	fmt.Fprintln(fh, "Installing bash (3/9)")
	fmt.Fprintln(fh, "Kernel panic - not syncing: test")
	fh.Close()
	f.poll(ctx)
	v.stop("i-1")
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
	st, _ := store.Get("i-1")
	if st.Phase != PhaseFailed {
		t.Fatalf("after the panic: %+v", st)
	}
	b, _ = os.ReadFile(appendLog)
	if _, s := consolenote.Read(b, "i-1"); s != consolenote.Closed || strings.Contains(string(b), "abcdefgh") {
		t.Fatalf("after the installer stopped: %v, want closed and no password:\n%s", s, b)
	}
	if !strings.HasSuffix(string(b), "Operating system: Linux\r\n") {
		t.Errorf("append log %q lost the other hook's line", b)
	}
}

// TestFollowerVNCNoteClosed: the note is closed when an install in place
// hands over to the installed system (after the final domain runs), and
// when a guest the watchdog failed (kept running for debugging) stops.
func TestFollowerVNCNoteClosed(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		failFirst  bool
	}{{"in-place", "in-place", false}, {"watchdog-failed", "bake", true}} {
		t.Run(tc.name, func(t *testing.T) {
			state, dir := t.TempDir(), t.TempDir()
			con, appendLog := filepath.Join(dir, "console.log"), filepath.Join(dir, consolenote.AppendLog)
			os.WriteFile(con, []byte("Starting installer, one moment...\n"), 0o644)
			v := newFakeVirt()
			f, store := newFollower(t, v, state)
			f.node = "nc7"
			ctx := context.Background()
			v.CreateXML(ctx, strings.Replace(installer(t, tc.mode, con), `port="-1"`, `port="5908"`, 1))
			store.Started(&preboot.Outcome{Instance: "i-1", Dir: dir, Mode: tc.mode, VNC: &preboot.VNCInfo{Listen: "127.0.0.1", Password: "abcdefgh"}})
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
			if b, _ := os.ReadFile(appendLog); !strings.HasPrefix(string(b), "kscloud-vnc: instance=i-1 node=nc7 host=127.0.0.1 port=5908") {
				t.Fatalf("append log after start: %q", b)
			}
			if tc.failFirst {
				store.Update("i-1", func(s *hookproto.InstanceStatus) { s.Phase, s.Reason = PhaseFailed, "no console output (watchdog)" })
			}
			v.stop("i-1")
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
			b, _ := os.ReadFile(appendLog)
			if _, s := consolenote.Read(b, "i-1"); s != consolenote.Closed {
				t.Fatalf("append log after the stop: %q", b)
			}
			st, _ := store.Get("i-1")
			if st.VNC != nil {
				t.Errorf("status still has a VNC console: %+v", st.VNC)
			}
			if tc.mode == "in-place" && (st.Phase != PhaseFinal || len(v.created) != 2) {
				t.Errorf("in place: phase %s, %d domains created", st.Phase, len(v.created))
			}
		})
	}
}

// TestFollowerVNCNoteMode: the note holding the VNC password is never
// readable by the node's other users: a console.append.log found 0644 is
// narrowed to 0600, a new one is 0600 and (as root) owned like the
// instance directory, whose user (the NC's) reads it.
func TestFollowerVNCNoteMode(t *testing.T) {
	for _, existing := range []bool{true, false} {
		state, dir := t.TempDir(), t.TempDir()
		con, appendLog := filepath.Join(dir, "console.log"), filepath.Join(dir, consolenote.AppendLog)
		os.WriteFile(con, []byte("Starting installer, one moment...\n"), 0o644)
		if existing {
			os.WriteFile(appendLog, []byte("Operating system: Linux\r\n"), 0o644)
			os.Chmod(appendLog, 0o644)
		}
		owner := os.Geteuid()
		if owner == 0 {
			owner = 65534 // the NC's user owns its instance directory
			if err := os.Chown(dir, owner, owner); err != nil {
				t.Fatal(err)
			}
		}
		v := newFakeVirt()
		f, store := newFollower(t, v, state)
		ctx := context.Background()
		v.CreateXML(ctx, strings.Replace(installer(t, "bake", con), `port="-1"`, `port="5907"`, 1))
		store.Started(&preboot.Outcome{Instance: "i-1", Dir: dir, Mode: "bake", VNC: &preboot.VNCInfo{Listen: "127.0.0.1", Password: "abcdefgh"}})
		f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
		fi, err := os.Stat(appendLog)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(appendLog)
		if !strings.Contains(string(b), "abcdefgh") {
			t.Fatalf("existing=%v: no note:\n%s", existing, b)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("existing=%v: %s is %v, want 0600", existing, appendLog, fi.Mode().Perm())
		}
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); !existing && uid != owner {
			t.Errorf("new note owned by uid %d, want the instance directory's %d", uid, owner)
		}
	}
}

// TestFollowerConsoleSymlink: a console.log replaced by a symlink (to a
// root-only file) or a FIFO is not read: none of its lines reach the
// status, and the follower does not block.
func TestFollowerConsoleSymlink(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "shadow")
	os.WriteFile(secret, []byte("root:$6$secret-hash:19000:0:99999:7:::\nInstalling bash (3/9)\n"), 0o600)
	for _, kind := range []string{"symlink", "fifo"} {
		state, con := t.TempDir(), filepath.Join(t.TempDir(), "console.log")
		if kind == "symlink" {
			os.Symlink(secret, con)
		} else if err := syscall.Mkfifo(con, 0o644); err != nil {
			t.Fatal(err)
		}
		v := newFakeVirt()
		f, store := newFollower(t, v, state)
		ctx := context.Background()
		v.CreateXML(ctx, installer(t, "bake", con))
		store.Started(&preboot.Outcome{Instance: "i-1", Mode: "bake"})
		f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
		done := make(chan struct{})
		go func() { f.poll(ctx); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: poll blocked", kind)
		}
		st, _ := store.Get("i-1")
		if strings.Contains(st.Progress, "3/9") || strings.Contains(strings.Join(f.watching["i-1"].con.State().Last, "\n"), "secret") {
			t.Fatalf("%s: the linked file was read: %+v", kind, st)
		}
	}
}

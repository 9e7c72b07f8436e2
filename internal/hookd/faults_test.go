package hookd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/internal/virt"
	"github.com/kscloud/kscloud/test/ncsim"
)

// A truncated or empty state file is moved aside with one log line and
// the store opens with the other records.
func TestCorruptStateFileMovedAside(t *testing.T) {
	state := t.TempDir()
	st, err := OpenStore(state, quiet)
	if err != nil {
		t.Fatal(err)
	}
	st.Started(&preboot.Outcome{Instance: "i-good", Mode: "bake"})
	dir := filepath.Join(state, "instances")
	os.WriteFile(filepath.Join(dir, "i-trunc.json"), []byte(`{"instance": "i-trunc", "pha`), 0o600)
	os.WriteFile(filepath.Join(dir, "i-empty.json"), nil, 0o600)
	var logs bytes.Buffer
	st2, err := OpenStore(state, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("the daemon would not start: %v", err)
	}
	if _, ok := st2.Get("i-good"); !ok || len(st2.List()) != 1 {
		t.Fatalf("records %+v", st2.List())
	}
	for _, n := range []string{"i-trunc", "i-empty"} {
		if _, err := os.Stat(filepath.Join(dir, n+".json.corrupt")); err != nil {
			t.Fatalf("%s not moved aside: %v", n, err)
		}
	}
	if got := strings.Count(logs.String(), "state file unreadable"); got != 2 {
		t.Fatalf("want one log line per file, got:\n%s", logs.String())
	}
}

// emfileListener fails its first n accepts with EMFILE, as accept(2) does
// when the process is out of file descriptors.
type emfileListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.n > 0 {
		l.n--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func startServer(t *testing.T, wrap func(net.Listener) net.Listener) (sock string, done <-chan error, cancel func()) {
	t.Helper()
	store, err := OpenStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(quiet, config.Default(), store, "test")
	sock = filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if wrap != nil {
		l = wrap(ln)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- srv.Serve(ctx, l) }()
	t.Cleanup(cancel)
	return sock, ch, cancel
}

func ping(sock string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	resp, err := hookproto.Call(ctx, sock, hookproto.Request{Op: hookproto.OpPing})
	if err != nil {
		return err
	}
	if !resp.OK {
		return errors.New(resp.Error)
	}
	return nil
}

// The finding: EMFILE in accept made the daemon exit (and remove its
// socket). Accept errors are retried with backoff.
func TestAcceptEMFILEKeepsServing(t *testing.T) {
	sock, done, _ := startServer(t, func(l net.Listener) net.Listener { return &emfileListener{Listener: l, n: 5} })
	if err := ping(sock, 5*time.Second); err != nil {
		select {
		case err2 := <-done:
			t.Fatalf("Serve ended: %v (ping: %v)", err2, err)
		default:
		}
		t.Fatal(err)
	}
}

// The same with a real EMFILE: a child process serves with a low
// RLIMIT_NOFILE, this test fills its table with connections, then closes
// them and expects an answer.
func TestAcceptRealEMFILE(t *testing.T) {
	if os.Getenv("HOOKD_EMFILE_CHILD") != "" {
		emfileChild()
		return
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptRealEMFILE$")
	cmd.Env = append(os.Environ(), "HOOKD_EMFILE_CHILD="+sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child's output is read only once it has ended (its copying
	// goroutine writes the buffer).
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
		return out.String()
	}
	defer stop()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 100 {
			t.Fatalf("child did not listen: %s", stop())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var conns []net.Conn
	for range 60 { // far over the child's 32 descriptors
		c, err := net.Dial("unix", sock)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(300 * time.Millisecond) // let the child hit EMFILE
	for _, c := range conns {
		c.Close()
	}
	err := ping(sock, 10*time.Second)
	log := stop()
	if err != nil {
		t.Fatalf("no answer after EMFILE: %v\nchild: %s", err, log)
	}
	if !strings.Contains(log, "too many open files") {
		t.Fatalf("the child never hit EMFILE:\n%s", log)
	}
}

func emfileChild() {
	sock := os.Getenv("HOOKD_EMFILE_CHILD")
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 32, Max: 32})
	store, err := OpenStore(filepath.Dir(sock), quiet)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	srv := New(slog.New(slog.NewTextHandler(os.Stdout, nil)), config.Default(), store, "test")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	err = srv.Serve(context.Background(), ln)
	fmt.Println("Serve ended:", err)
	os.Exit(1)
}

// dialAs connects to sock from a thread whose effective uid is uid (what
// SO_PEERCRED reports), a thread that ends with its goroutine.
func dialAs(sock string, uid int) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			ch <- res{nil, e}
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			ch <- res{nil, e}
			return
		}
		c, err := net.Dial("unix", sock)
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// The finding: up to 1 MiB was read from any peer before its credentials
// were checked. A peer not allowed is answered at once, before it sends.
func TestPeerCheckedBeforeRead(t *testing.T) {
	testenv.Root(t)
	sock, _, _ := startServer(t, nil)
	testenv.OpenAncestors(t, sock)
	os.Chmod(sock, 0o777)
	c, err := dialAs(sock, 65534)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, `"denied":true`) {
		t.Fatalf("a silent disallowed peer got no denial: %q %v", line, err)
	}
}

// An allowed peer is held to the request's size and time limits.
func TestRequestLimits(t *testing.T) {
	old := requestTimeout
	requestTimeout = 500 * time.Millisecond
	defer func() { requestTimeout = old }()
	sock, _, _ := startServer(t, nil)
	answer := func(send []byte) (string, time.Duration) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		go c.Write(send)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line, time.Since(start)
	}
	if line, took := answer(nil); took > 3*time.Second || line == "" {
		t.Fatalf("silent peer: %q after %v", line, took)
	}
	if line, took := answer(bytes.Repeat([]byte("x"), 200<<10)); took > 3*time.Second || !strings.Contains(line, fmt.Sprintf("line over %d bytes", hookproto.MaxRequest)) {
		t.Fatalf("200 KiB line: %q after %v", line, took)
	}
}

// At most MaxConns connections are handled at once: the next waits until
// one ends, and is then answered.
func TestConnectionBound(t *testing.T) {
	sock, _, _ := startServer(t, nil)
	var idle []net.Conn
	for range MaxConns {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond)
	if err := ping(sock, 300*time.Millisecond); err == nil {
		t.Fatal("a connection over the bound was served")
	}
	idle[0].Close()
	if err := ping(sock, 3*time.Second); err != nil {
		t.Fatalf("not served once a slot was free: %v", err)
	}
	for _, c := range idle[1:] {
		c.Close()
	}
}

// A request whose deadline has passed (queued while the hook gave up)
// rewrites nothing.
func TestLateRequestRewritesNothing(t *testing.T) {
	root := t.TempDir()
	inst := &ncsim.Instance{Name: "i-late", Dir: filepath.Join(root, "work", "U", "i-late"), Disk: "/d.img",
		Kernel: filepath.Join(root, "k"), Ramdisk: filepath.Join(root, "r"), UserData: []byte("bootparams=ks=x\n")}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	store, _ := OpenStore(t.TempDir(), quiet)
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{root}
	srv := New(quiet, cfg, store, "test")
	before, _ := os.ReadFile(inst.DomainFile())
	resp := srv.Handle(context.Background(), hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot", InstanceDir: inst.Dir, Deadline: time.Now().Add(-time.Second)})
	if after, _ := os.ReadFile(inst.DomainFile()); !bytes.Equal(before, after) || resp.OK {
		b, _ := json.Marshal(resp)
		t.Fatalf("late request rewrote the domain: %s", b)
	}
	resp = srv.Handle(context.Background(), hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot", InstanceDir: inst.Dir, Deadline: time.Now().Add(5 * time.Second)})
	if !resp.OK || resp.Outcome == nil || !resp.Outcome.Changed {
		t.Fatalf("in-time request: %+v", resp)
	}
}

// The follower works in the hostile instance directory long after the
// pre-boot: a console.log that is a symlink to a root-only file is not
// read, and a domain file swapped for a symlink is not written through.
func TestFollowerInstanceDirHostile(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("Installing rootsecret (1/2)\n"), 0o600)
	con := filepath.Join(dir, "console.log")
	os.Symlink(secret, con)
	domFile := filepath.Join(dir, "instance-libvirt.xml")
	victim := filepath.Join(t.TempDir(), "authorized_keys")
	os.WriteFile(victim, []byte("ssh-ed25519 AAAA root@node\n"), 0o600)
	os.Symlink(victim, domFile)
	v := newFakeVirt()
	f, store := newFollower(t, v, state)
	ctx := context.Background()
	v.CreateXML(ctx, installer(t, "in-place", con))
	store.Started(&preboot.Outcome{Instance: "i-1", Dir: dir, DomainFile: domFile, Mode: "in-place"})
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
	f.poll(ctx)
	if st, _ := store.Get("i-1"); strings.Contains(st.Progress, "rootsecret") {
		t.Fatalf("a root-only file was read through console.log: %q", st.Progress)
	}
	v.stop("i-1")
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: "shutdown", Time: time.Now()})
	if b, _ := os.ReadFile(victim); string(b) != "ssh-ed25519 AAAA root@node\n" {
		t.Fatalf("written through the domain file's symlink: %q", b)
	}
}

// The finding: 300 connections each sending 1 MiB grew the daemon by
// ~100 MB (each request read whole before anything was checked). Reads are
// bounded per connection and connections at once: the heap stays small.
func TestManyLargeRequestsBoundedMemory(t *testing.T) {
	sock, _, _ := startServer(t, nil)
	payload := bytes.Repeat([]byte("x"), 1<<20) // shared by every client
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak {
				peak = m.HeapAlloc
			}
		}
	}()
	var wg sync.WaitGroup
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", sock)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write(payload)
			bufio.NewReader(c).ReadString('\n')
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	grew := int64(peak) - int64(base.HeapAlloc)
	t.Logf("heap grew by %.1f MB for 300 connections of 1 MiB", float64(grew)/(1<<20))
	if grew > 40<<20 {
		t.Fatalf("heap grew by %d MB", grew>>20)
	}
}

// The store is keyed by the instance's name, which instance.xml (the NC's
// user's file) states: a <name> that is not the instance directory's is
// refused with one line, whatever hook.on_error says, and nothing is
// recorded under it nor rewritten.
func TestInstanceNameMustMatchDir(t *testing.T) {
	root := t.TempDir()
	inst := &ncsim.Instance{Name: "i-victim", Dir: filepath.Join(root, "work", "U", "i-attacker"), Disk: "/d.img",
		Kernel: filepath.Join(root, "k"), Ramdisk: filepath.Join(root, "r"), UserData: []byte("bootparams=ks=x\n")}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	store, _ := OpenStore(t.TempDir(), quiet)
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{root}
	cfg.Hook.OnError = config.OnErrorBoot
	srv := New(quiet, cfg, store, "test")
	before, _ := os.ReadFile(inst.DomainFile())
	resp := srv.Handle(context.Background(), hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot", InstanceDir: inst.Dir})
	after, _ := os.ReadFile(inst.DomainFile())
	if !resp.Refuse || strings.Contains(resp.Error, "\n") || !strings.Contains(resp.Error, "i-attacker") || !strings.Contains(resp.Error, `"i-victim"`) || !bytes.Equal(before, after) {
		t.Fatalf("name mismatch: %+v, domain changed %v", resp, !bytes.Equal(before, after))
	}
	if _, ok := store.Get("i-victim"); ok {
		t.Fatal("recorded under the name instance.xml chose")
	}
}

// A request from the static dispatcher names what it assumed (config file,
// hook.timeout): a daemon with others answers unavailable and does
// nothing; with the same ones it does the work.
func TestDispatcherAssumptions(t *testing.T) {
	root := t.TempDir()
	inst := &ncsim.Instance{Name: "i-assume", Dir: filepath.Join(root, "work", "U", "i-assume"), Disk: "/d.img",
		Kernel: filepath.Join(root, "k"), Ramdisk: filepath.Join(root, "r"), UserData: []byte("bootparams=ks=x\n")}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "nchookd.toml")
	os.WriteFile(conf, nil, 0o644)
	store, _ := OpenStore(t.TempDir(), quiet)
	cfg := config.Default()
	cfg.Path = conf
	cfg.Hook.InstancesRoot = []string{root}
	srv := New(quiet, cfg, store, "test")
	before, _ := os.ReadFile(inst.DomainFile())
	req := hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot", InstanceDir: inst.Dir}
	for _, bad := range []hookproto.Request{
		{AssumeConfig: config.DefaultPath, AssumeTimeoutMS: 5000},
		{AssumeConfig: conf, AssumeTimeoutMS: 4000},
	} {
		r := req
		r.AssumeConfig, r.AssumeTimeoutMS = bad.AssumeConfig, bad.AssumeTimeoutMS
		resp := srv.Handle(context.Background(), r)
		if after, _ := os.ReadFile(inst.DomainFile()); !resp.Unavailable || resp.OK || !bytes.Equal(before, after) {
			t.Fatalf("assumed %s/%dms: %+v", bad.AssumeConfig, bad.AssumeTimeoutMS, resp)
		}
	}
	// The same file by another path, and the daemon's own timeout.
	req.AssumeConfig, req.AssumeTimeoutMS = filepath.Dir(conf)+"/./nchookd.toml", 5000
	if resp := srv.Handle(context.Background(), req); resp.Unavailable || !resp.OK || !resp.Outcome.Changed {
		t.Fatalf("matching assumptions: %+v", resp)
	}
}

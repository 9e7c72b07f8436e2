package ksserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// get fetches url over conns made by dial (nil: a plain dial).
func get(t *testing.T, method, url string, dial func(addr string) (net.Conn, error)) (int, string) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	if dial != nil {
		tr.DialContext = func(_ context.Context, _, addr string) (net.Conn, error) { return dial(addr) }
	}
	req, _ := http.NewRequest(method, url, nil)
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestKickstartServerPath: the kickstart is served on loopback only, under
// the build's random path only: /ks.cfg (what any local user or guest
// could guess before), other paths and other methods get 404.
func TestKickstartServerPath(t *testing.T) {
	ks := "text\npoweroff\nrootpw --iscrypted $6$salt$hash\n"
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := NewToken()
	if len(tok) != 64 || tok == tok2 {
		t.Fatalf("tokens %q %q", tok, tok2)
	}
	// A state file naming a wildcard address still gets loopback.
	srv, err := Serve([]byte(ks), "0.0.0.0:0", tok, Peers{UID: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if h, _, _ := net.SplitHostPort(srv.Addr()); h != "127.0.0.1" {
		t.Fatalf("listens on %s, want loopback only", srv.Addr())
	}
	base := "http://" + srv.Addr()
	for _, p := range []string{"/ks.cfg", "/", "/" + tok, "/" + tok + "/", "/" + tok2 + "/ks.cfg", "/" + tok + "/ks.cfg/x", "/" + strings.ToUpper(tok) + "/ks.cfg"} {
		if code, body := get(t, "GET", base+p, nil); code != 404 || strings.Contains(body, "rootpw") {
			t.Errorf("GET %s: %d %q, want 404", p, code, body)
		}
	}
	if code, _ := get(t, "POST", base+srv.Path(), nil); code != 404 {
		t.Errorf("POST: %d, want 404", code)
	}
	if code, body := get(t, "GET", base+srv.Path(), nil); code != 200 || body != ks {
		t.Fatalf("GET the build's path: %d %q", code, body)
	}
}

// TestKickstartServerLifetime: once the installer has the kickstart the
// server stops listening; Close (the build's end) stops it too.
func TestKickstartServerLifetime(t *testing.T) {
	tok, _ := NewToken()
	srv, err := Serve([]byte("text\n"), "", tok, Peers{UID: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr() + srv.Path()
	if code, _ := get(t, "HEAD", url, nil); code != 200 {
		t.Fatalf("HEAD: %d", code)
	}
	select {
	case <-srv.Fetched():
		t.Fatal("a HEAD counted as the installer's fetch")
	default:
	}
	if code, body := get(t, "GET", url, nil); code != 200 || body != "text\n" {
		t.Fatalf("GET: %d %q", code, body)
	}
	<-srv.Fetched()
	waitRefused(t, srv.Addr())

	tok, _ = NewToken()
	srv2, err := Serve([]byte("text\n"), "", tok, Peers{UID: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	srv2.Close()
	waitRefused(t, srv2.Addr())
}

func waitRefused(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
	}
}

// TestKickstartServerPeer: a peer whose socket belongs to a uid the server
// does not accept gets 404 even with the right path (a local user who read
// the path from QEMU's command line in /proc).
func TestKickstartServerPeer(t *testing.T) {
	tok, _ := NewToken()
	me := os.Geteuid()
	srv, err := Serve([]byte("secret\n"), "", tok, Peers{UID: func(uid int) bool { return uid != me }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if code, _ := get(t, "GET", "http://"+srv.Addr()+srv.Path(), nil); code != 404 {
		t.Fatalf("GET from a refused uid: %d, want 404", code)
	}
}

// TestKickstartServerOtherUser: as root, a socket made by another uid
// (nobody, as any local user) is refused; the QEMU user's is served.
func TestKickstartServerOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root in CI (make test runs as root)")
		}
		t.Skip("needs root to open a socket as another uid: run 'make test' as root")
	}
	const nobody, qemu = 65534, 64055
	tok, _ := NewToken()
	srv, err := Serve([]byte("secret\n"), "", tok, Peers{UID: func(uid int) bool { return uid == qemu }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr() + srv.Path()
	as := func(uid int) func(string) (net.Conn, error) {
		return func(addr string) (net.Conn, error) { return dialAs(uid, addr) }
	}
	if code, _ := get(t, "GET", url, as(nobody)); code != 404 {
		t.Fatalf("GET as nobody: %d, want 404", code)
	}
	if code, _ := get(t, "GET", url, nil); code != 404 {
		t.Fatalf("GET as root, not accepted here: %d, want 404", code)
	}
	if code, body := get(t, "GET", url, as(qemu)); code != 200 || body != "secret\n" {
		t.Fatalf("GET as the QEMU uid: %d %q", code, body)
	}
}

// dialAs connects to addr from a socket the kernel records as uid's: the
// socket is made on a thread whose filesystem uid is set to uid (the
// thread is then discarded).
func dialAs(uid int, addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(uid), 0, 0)
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		ap, _ := net.ResolveTCPAddr("tcp4", addr)
		sa := &syscall.SockaddrInet4{Port: ap.Port}
		copy(sa.Addr[:], ap.IP.To4())
		if err := syscall.Connect(fd, sa); err != nil {
			syscall.Close(fd)
			ch <- res{nil, err}
			return
		}
		f := os.NewFile(uintptr(fd), "socket")
		c, err := net.FileConn(f)
		f.Close()
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func TestQemuUsers(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "qemu.conf")
	os.WriteFile(conf, []byte("# user = \"root\"\n  user = \"kvmrunner\"\ngroup = \"kvm\"\n"), 0o644)
	if got := qemuUsers(conf); strings.Join(got, ",") != "kvmrunner,libvirt-qemu,qemu" {
		t.Fatalf("qemuUsers = %q", got)
	}
	if got := qemuUsers(filepath.Join(t.TempDir(), "none")); strings.Join(got, ",") != "libvirt-qemu,qemu" {
		t.Fatalf("qemuUsers without a file = %q", got)
	}
}

// A resumed build serves its kickstart again at the address on the
// installer's command line, or says in one line why not: never silently
// on a port the installer does not know.
func TestResumeKickstartSameAddress(t *testing.T) {
	tok, _ := NewToken()
	first, err := Serve([]byte("text\n"), "", tok, Peers{UID: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr()
	// The port still taken (here by the first server): one line, nothing served.
	var se strings.Builder
	if srv := Resume([]byte("text\n"), addr, tok, Peers{UID: func(int) bool { return true }}, &se); srv != nil {
		srv.Close()
		t.Fatalf("served at %s while %s was taken", srv.Addr(), addr)
	}
	if strings.Count(se.String(), "\n") != 1 || !strings.Contains(se.String(), addr) {
		t.Fatalf("port taken: stderr %q", se.String())
	}
	first.Close()
	waitRefused(t, addr)
	// Free again: the same address.
	se.Reset()
	srv := Resume([]byte("text\n"), addr, tok, Peers{UID: func(int) bool { return true }}, &se)
	if srv == nil || srv.Addr() != addr || se.Len() != 0 {
		t.Fatalf("free port: %v, stderr %q", srv, se.String())
	}
	srv.Close()
}

// TestKickstartServerGuest: on a libvirt network or bridge the server
// binds the given address only and answers only the source address the
// guest check accepts (the build's guest); other peers get 404 even with
// the path. A non-loopback bind without a guest check, or a wildcard, is
// refused.
func TestKickstartServerGuest(t *testing.T) {
	tok, _ := NewToken()
	var asked []netip.Addr
	guestIP := netip.MustParseAddr("127.0.0.1")
	accept := false
	srv, err := Serve([]byte("secret\n"), "0.0.0.0:0", tok, Peers{Bind: "127.0.0.1",
		UID:   func(int) bool { return true }, // not asked: the guest check decides
		Guest: func(ip netip.Addr) bool { asked = append(asked, ip); return accept && ip == guestIP }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if h, _, _ := net.SplitHostPort(srv.Addr()); h != "127.0.0.1" {
		t.Fatalf("listens on %s", srv.Addr())
	}
	url := "http://" + srv.Addr() + srv.Path()
	if code, _ := get(t, "GET", url, nil); code != 404 {
		t.Fatalf("GET from a peer that is not the guest: %d, want 404", code)
	}
	if len(asked) != 1 || asked[0] != guestIP {
		t.Fatalf("guest check asked about %v", asked)
	}
	accept = true
	if code, body := get(t, "GET", url, nil); code != 200 || body != "secret\n" {
		t.Fatalf("GET from the guest: %d %q", code, body)
	}
	for _, p := range []Peers{
		{Bind: "0.0.0.0", Guest: func(netip.Addr) bool { return true }},
		{Bind: "192.0.2.1"}, // not loopback, no guest check
		{Bind: "fe80::1", Guest: func(netip.Addr) bool { return true }},
	} {
		if s, err := Serve([]byte("x"), "", tok, p); err == nil {
			s.Close()
			t.Errorf("bind %q accepted", p.Bind)
		}
	}
}

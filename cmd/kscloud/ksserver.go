package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ksServer serves one build's kickstart to its installer (--ks-delivery
// http) and to nobody else:
//
//   - It binds the host's loopback only. The installer runs under QEMU user
//     networking (SLIRP, the libvirt provider's network): the guest reaches
//     the host's 127.0.0.1 as 10.0.2.2, through a socket the QEMU process
//     itself opens. No other address of the host serves it.
//   - The path is /<32 random hex bytes>/ks.cfg, drawn per build from
//     crypto/rand; every other path, method or peer gets 404. Other guests
//     on the host (their SLIRP reaches the same loopback) cannot guess it.
//   - The QEMU command line holds that path and /proc/PID/cmdline is
//     world-readable, so the path alone does not keep out the host's local
//     users: each connection's client socket must belong to a uid allowed
//     to run the installer (the QEMU user, or kscloud's own uid), read from
//     /proc/net/tcp before the request is answered.
//   - It stops after the first complete answer (the installer fetched it)
//     and when the build ends.
type ksServer struct {
	srv  *http.Server
	ln   net.Listener
	path string // /<token>/ks.cfg
	once sync.Once
	// peerOK says whether the uid owning a connection's client socket may
	// fetch the kickstart.
	peerOK func(uid int) bool
	done   chan struct{} // closed once the kickstart was served in full
}

// newKickstartToken draws a per-build path component.
func newKickstartToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kickstart server: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// serveKickstart serves ks at /TOKEN/ks.cfg on addr (a loopback host:port;
// "" or a port taken picks a free loopback port) to peers peerOK accepts.
func serveKickstart(ks []byte, addr, token string, peerOK func(uid int) bool) (*ksServer, error) {
	if len(token) < 32 {
		return nil, errors.New("kickstart server: no token")
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if ap, err := netip.ParseAddrPort(addr); err != nil || !ap.Addr().IsLoopback() {
		addr = "127.0.0.1:0" // never anything but loopback, whatever a state file says
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("kickstart server: %w", err)
		}
	}
	s := &ksServer{ln: ln, path: "/" + token + "/ks.cfg", peerOK: peerOK, done: make(chan struct{})}
	s.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 10 * time.Second,
		MaxHeaderBytes: 8 << 10,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != s.path || (r.Method != http.MethodGet && r.Method != http.MethodHead) || !s.peerAllowed(r) {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", strconv.Itoa(len(ks)))
			w.Header().Set("Cache-Control", "no-store")
			if r.Method == http.MethodHead {
				return
			}
			if n, err := w.Write(ks); err == nil && n == len(ks) {
				s.once.Do(func() { close(s.done) })
			}
		}),
	}
	go s.srv.Serve(ln)
	go func() {
		<-s.done
		// The installer has it: stop listening, letting the answer finish.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.srv.Shutdown(ctx) != nil {
			s.srv.Close()
		}
	}()
	return s, nil
}

// resumeKickstart serves ks again for a resumed build at exactly addr,
// the address on the installer's command line. When that cannot be had
// (the port is taken, the address is not loopback) it says so in one line
// and serves nothing: another port is one the installer does not know.
func resumeKickstart(ks []byte, addr, token string, peerOK func(uid int) bool, stderr io.Writer) *ksServer {
	srv, err := serveKickstart(ks, addr, token, peerOK)
	if err == nil && srv.Addr() == addr {
		return srv
	}
	if err == nil {
		srv.Close()
		err = errors.New("address not available")
	}
	fmt.Fprintf(stderr, "kscloud: kickstart server %s (on the installer's command line): %v; not served again: an installer that has not fetched its kickstart yet will fail\n", addr, err)
	return nil
}

// Addr is where it listens (host:port on loopback).
func (s *ksServer) Addr() string { return s.ln.Addr().String() }

// Path is the secret path the installer fetches.
func (s *ksServer) Path() string { return s.path }

// Close stops serving; safe to call more than once.
func (s *ksServer) Close() { s.srv.Close() }

// Fetched is closed once the kickstart has been served in full.
func (s *ksServer) Fetched() <-chan struct{} { return s.done }

func (s *ksServer) peerAllowed(r *http.Request) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return false
	}
	uid, err := tcpPeerUID(r.RemoteAddr, local.String())
	return err == nil && s.peerOK(uid)
}

// tcpPeerUID returns the uid owning the local TCP socket at client that is
// connected to server (both IPv4 host:port on this host), from
// /proc/net/tcp: the kernel records the creator's uid for every socket.
func tcpPeerUID(client, server string) (int, error) {
	c, err := netip.ParseAddrPort(client)
	if err != nil {
		return -1, err
	}
	sv, err := netip.ParseAddrPort(server)
	if err != nil {
		return -1, err
	}
	want := procNetAddr(c) + " " + procNetAddr(sv)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return -1, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(fl) < 8 || fl[1]+" "+fl[2] != want {
			continue
		}
		return strconv.Atoi(fl[7])
	}
	if err := sc.Err(); err != nil {
		return -1, err
	}
	return -1, fmt.Errorf("no socket %s → %s in /proc/net/tcp", client, server)
}

// procNetAddr spells an IPv4 address and port as /proc/net/tcp does: the
// address as a host-order (little-endian) 32-bit hex word, the port in hex.
func procNetAddr(ap netip.AddrPort) string {
	a := ap.Addr().Unmap().As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], ap.Port())
}

// installerUIDs returns the uids that may fetch a build's kickstart: the
// user libvirt runs QEMU as for a system connection (qemu.conf's user,
// else Debian's libvirt-qemu or Fedora's qemu), and kscloud's own uid (a
// session connection's QEMU runs as the caller; root may read the state
// directory anyway).
func installerUIDs(connect string) func(uid int) bool {
	allowed := map[int]bool{os.Geteuid(): true}
	if !strings.Contains(connect, "session") {
		for _, name := range qemuUsers("/etc/libvirt/qemu.conf") {
			if u, err := user.Lookup(name); err == nil {
				if id, err := strconv.Atoi(u.Uid); err == nil {
					allowed[id] = true
					break
				}
			}
		}
	}
	return func(uid int) bool { return allowed[uid] }
}

var reQemuUser = regexp.MustCompile(`(?m)^\s*user\s*=\s*"([^"]+)"`)

// qemuUsers lists the user names QEMU may run as under libvirt's system
// daemon, the configured one first.
func qemuUsers(qemuConf string) []string {
	var names []string
	if b, err := os.ReadFile(qemuConf); err == nil {
		if m := reQemuUser.FindSubmatch(b); m != nil {
			name := string(m[1])
			if strings.HasPrefix(name, "+") { // "+0": a numeric uid
				if _, err := strconv.Atoi(name[1:]); err == nil {
					if u, err := user.LookupId(name[1:]); err == nil {
						name = u.Username
					}
				}
			}
			names = append(names, name)
		}
	}
	return append(names, "libvirt-qemu", "qemu")
}

// Package ksserve is kscloud's kickstart server (--ks-delivery http): one
// build's kickstart, on one address, at a secret path, to the build's
// installer only, until it is fetched.
package ksserve

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

// Server serves one build's kickstart to its installer (--ks-delivery
// http) and to nobody else:
//
//   - It binds one address, the one the guest reaches the host at, and no
//     other. Under QEMU user networking (--network user) that is the
//     host's loopback: the guest reaches 127.0.0.1 as 10.0.2.2, through a
//     socket the QEMU process itself opens. On a libvirt network it is the
//     network's own address on the host (the NAT gateway, e.g.
//     192.168.122.1), on a bridge the host's address on the bridge: other
//     networks of the host are not offered it.
//   - The path is /<32 random hex bytes>/ks.cfg, drawn per build from
//     crypto/rand; every other path, method or peer gets 404. Other guests
//     cannot guess it.
//   - The path is on the guest's kernel command line (QEMU's in /proc, the
//     domain XML), so the path alone does not keep out local users or
//     other guests on the same network. Loopback: each connection's client
//     socket must belong to a uid allowed to run the installer (the QEMU
//     user, or kscloud's own uid), read from /proc/net/tcp before the
//     request is answered. A network or bridge: the connection's source
//     address must be the build's own guest there (its MAC in the host's
//     neighbour table for that address, on that network's bridge).
//   - It stops after the first complete answer (the installer fetched it)
//     and when the build ends.
type Server struct {
	srv   *http.Server
	ln    net.Listener
	path  string // /<token>/ks.cfg
	once  sync.Once
	peers Peers
	done  chan struct{} // closed once the kickstart was served in full
}

// NewToken draws a per-build path component.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kickstart server: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Peers says where a kickstart server listens and whom it answers.
type Peers struct {
	// Bind is the one IPv4 address to listen on ("": 127.0.0.1). Never a
	// wildcard.
	Bind string
	// UID (loopback, user networking) says whether the uid owning a
	// connection's client socket may fetch the kickstart.
	UID func(uid int) bool
	// Guest (a libvirt network or bridge), when set, is asked instead:
	// whether the connection's source address is the build's guest.
	Guest func(ip netip.Addr) bool
}

// Serve serves ks at /TOKEN/ks.cfg on addr (a host:port on
// peers.Bind; "", another address or a port taken picks a free port on
// peers.Bind) to the peers peers accepts.
func Serve(ks []byte, addr, token string, peers Peers) (*Server, error) {
	if len(token) < 32 {
		return nil, errors.New("kickstart server: no token")
	}
	if peers.Bind == "" {
		peers.Bind = "127.0.0.1"
	}
	bind, err := netip.ParseAddr(peers.Bind)
	if err != nil || !bind.Is4() || bind.IsUnspecified() {
		return nil, fmt.Errorf("kickstart server: bind address %q: want one IPv4 address of this host", peers.Bind)
	}
	if peers.Guest == nil && !bind.IsLoopback() {
		return nil, fmt.Errorf("kickstart server: %s is not loopback and no guest check was given", bind)
	}
	any := netip.AddrPortFrom(bind, 0).String()
	if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Addr() != bind {
		addr = any // only the bind address, whatever a state file says
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		if ln, err = net.Listen("tcp4", any); err != nil {
			return nil, fmt.Errorf("kickstart server: %w", err)
		}
	}
	s := &Server{ln: ln, path: "/" + token + "/ks.cfg", peers: peers, done: make(chan struct{})}
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

// Resume serves ks again for a resumed build at exactly addr,
// the address on the installer's command line. When that cannot be had
// (the port is taken, the address is not loopback) it says so in one line
// and serves nothing: another port is one the installer does not know.
func Resume(ks []byte, addr, token string, peers Peers, stderr io.Writer) *Server {
	srv, err := Serve(ks, addr, token, peers)
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

// Addr is where it listens (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Path is the secret path the installer fetches.
func (s *Server) Path() string { return s.path }

// Close stops serving; safe to call more than once.
func (s *Server) Close() { s.srv.Close() }

// Fetched is closed once the kickstart has been served in full.
func (s *Server) Fetched() <-chan struct{} { return s.done }

func (s *Server) peerAllowed(r *http.Request) bool {
	if s.peers.Guest != nil {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		return err == nil && s.peers.Guest(ap.Addr().Unmap())
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil || s.peers.UID == nil {
		return false
	}
	uid, err := tcpPeerUID(r.RemoteAddr, local.String())
	return err == nil && s.peers.UID(uid)
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

// InstallerUIDs returns the uids that may fetch a build's kickstart: the
// user libvirt runs QEMU as for a system connection (qemu.conf's user,
// else Debian's libvirt-qemu or Fedora's qemu), and kscloud's own uid (a
// session connection's QEMU runs as the caller; root may read the state
// directory anyway).
func InstallerUIDs(connect string) func(uid int) bool {
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

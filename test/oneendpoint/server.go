// Package oneendpoint is a test fixture that plays OpenNebula's oned over
// XML-RPC as closely as the project needs to prove its OpenNebula
// provider: xmlrpc-c's typing and faults, oned's envelopes, error codes
// and texts, the template parser's quirks, and the VM and image state
// machines with real (configurable) delays. Facts and their citations:
// ../../../shared/research/opennebula.md (section 8 lists what this
// endpoint reproduces). It is not a product.
package oneendpoint

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Error codes (one include/Request.h, identical 5.12 → 7.0).
const (
	ErrAuthentication = 0x100
	ErrAuthorization  = 0x200
	ErrNoExists       = 0x400
	ErrAction         = 0x800
	ErrXMLRPCAPI      = 0x1000
	ErrInternal       = 0x2000
	ErrAllocate       = 0x4000
	ErrLocked         = 0x8000
)

// Options configure the endpoint. Durations are the delays of oned's
// asynchronous steps; zero takes the short test defaults below (Real
// returns oned's own defaults).
type Options struct {
	// User and Password the endpoint accepts (default kscloud / kscloud-pw).
	User, Password string
	// Version answered by one.system.version (default "7.0.0"); below 6.2
	// one.vm.updateconf ignores a 4th parameter (always replace), below
	// 6.0 DEPLOY_ID is one-<ID>.
	Version string
	// Dir holds image and VM files (default: a temporary directory).
	Dir string

	Sched   time.Duration // PENDING → PROLOG (scheduler interval)
	Prolog  time.Duration // PROLOG → BOOT (transfer)
	Boot    time.Duration // BOOT → RUNNING
	Epilog  time.Duration // SHUTDOWN/EPILOG steps
	Hotplug time.Duration // attach/detach, saveas copy
	Image   time.Duration // image LOCKED → READY, DELETE → gone
	// Monitor is the state probe period, Misses the miss threshold: a
	// guest power-off reaches SHUTDOWN_POWEROFF then POWEROFF
	// Monitor×Misses after the domain vanished.
	Monitor time.Duration
	Misses  int
	// Install, when > 0, plays a kickstart ending in poweroff: a VM that
	// boots a kernel (an installer) writes InstalledMark at the start of
	// its disk 0 and powers itself off after Install.
	Install time.Duration
	// DeployFail, when set, makes every deploy fail with this text:
	// BOOT_FAILURE with USER_TEMPLATE/ERROR, as a driver error does.
	DeployFail string
	// Node, when set, runs deployments on real libvirt (see node.go).
	Node *Node
	// MonitorProbes are VM monitor probe scripts (remotes/im/kvm-probes.d/
	// vm/monitor/*) run every Monitor with MonitorEnv as environment;
	// their attributes go into the VMs' MONITORING (vmmonitor.go).
	MonitorProbes []string
	MonitorEnv    []string
	// VNCStart is the first VNC port (oned.conf VNC_PORTS START, default
	// 5900): GRAPHICS/PORT is VNCStart + VM ID.
	VNCStart int
}

// InstalledMark is what a played installer writes on its disk 0.
const InstalledMark = "kscloud-oneendpoint-installed\n"

// Real returns oned's default delays (7.0): scheduler window 10 s, state
// probe every 5 s with 5 misses (~25 s to POWEROFF).
func Real() Options {
	return Options{Sched: 10 * time.Second, Prolog: 3 * time.Second, Boot: 2 * time.Second, Epilog: 2 * time.Second,
		Hotplug: 2 * time.Second, Image: 3 * time.Second, Monitor: 5 * time.Second, Misses: 5}
}

func (o *Options) defaults() {
	if o.User == "" {
		o.User = "kscloud"
	}
	if o.Password == "" {
		o.Password = "kscloud-pw"
	}
	if o.Version == "" {
		o.Version = "7.0.0"
	}
	d := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	d(&o.Sched, 150*time.Millisecond)
	d(&o.Prolog, 100*time.Millisecond)
	d(&o.Boot, 100*time.Millisecond)
	d(&o.Epilog, 80*time.Millisecond)
	d(&o.Hotplug, 80*time.Millisecond)
	d(&o.Image, 100*time.Millisecond)
	d(&o.Monitor, 50*time.Millisecond)
	if o.VNCStart <= 0 {
		o.VNCStart = 5900
	}
	if o.Misses <= 0 {
		o.Misses = 5
	}
}

// Server is the endpoint.
type Server struct {
	opts Options
	uid  int
	mu   sync.Mutex
	vms  map[int]*vm
	imgs map[int]*image
	ds   []*datastore
	vnet *vnet

	nextVM, nextImg int
	calls           map[string]int
	closed          bool
	stopProbes      context.CancelFunc
	hs              *http.Server
	ln              net.Listener
	url             string
}

// New makes an endpoint (not yet listening; use Listen or ServeHTTP).
func New(opts Options) (*Server, error) {
	opts.defaults()
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "oneendpoint-")
		if err != nil {
			return nil, err
		}
		opts.Dir = d
	}
	for _, sub := range []string{"datastores/0", "datastores/1", "datastores/2"} {
		if err := os.MkdirAll(opts.Dir+"/"+sub, 0o755); err != nil {
			return nil, err
		}
	}
	s := &Server{opts: opts, uid: 5, vms: map[int]*vm{}, imgs: map[int]*image{}, calls: map[string]int{}}
	s.ds = []*datastore{
		{id: 0, name: "system", typ: 1, dsMad: "-", tmMad: "ssh"},
		{id: 1, name: "default", typ: 0, dsMad: "fs", tmMad: "ssh"},
		{id: 2, name: "files", typ: 2, dsMad: "fs", tmMad: "ssh"},
	}
	for _, d := range s.ds {
		d.path = fmt.Sprintf("%s/datastores/%d", opts.Dir, d.id)
	}
	s.vnet = newVnet()
	if opts.Node != nil {
		if err := opts.Node.start(s); err != nil {
			return nil, fmt.Errorf("node mode: %w", err)
		}
	}
	if len(opts.MonitorProbes) > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopProbes = cancel
		go s.monitorProbes(ctx)
	}
	return s, nil
}

// Start runs an endpoint on a local port for the test's lifetime.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	s.url = hs.URL + "/RPC2"
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s
}

// Listen serves on addr until Close.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String() + "/RPC2"
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.hs.Serve(ln)
	return nil
}

// Close stops timers' effects and the listener.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if s.stopProbes != nil {
		s.stopProbes()
	}
	if s.opts.Node != nil && !already {
		s.opts.Node.close(s)
	}
	if s.hs != nil {
		return s.hs.Shutdown(context.Background())
	}
	return nil
}

// URL is the XML-RPC endpoint (http://…/RPC2).
func (s *Server) URL() string { return s.url }

// Session is the session string the endpoint accepts.
func (s *Server) Session() string { return s.opts.User + ":" + s.opts.Password }

// Options returns the options in effect.
func (s *Server) Options() Options { return s.opts }

// Calls returns how many calls each method received.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// PowerOffDelay is how long after a guest power-off the VM is POWEROFF.
func (s *Server) PowerOffDelay() time.Duration {
	return s.opts.Monitor*time.Duration(s.opts.Misses) + s.opts.Epilog
}

// after runs fn under the lock after d, unless the server closed.
func (s *Server) after(d time.Duration, fn func()) {
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed {
			fn()
		}
	})
}

// rpcError is oned's failure: [false, msg, code, resp_id, replication].
type rpcError struct {
	code int
	msg  string
	id   int
}

func (e *rpcError) Error() string { return e.msg }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	method, vals, err := parseCall(body)
	if err != nil {
		w.Write(encodeFault(err.(*fault)))
		return
	}
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	h, ok := handlerFor(method)
	if !ok {
		w.Write(encodeFault(&fault{faultNoMethod, fmt.Sprintf("Method '%s' not defined", method)}))
		return
	}
	p := params{v: vals}
	session, err := p.str(0)
	if err != nil {
		w.Write(encodeFault(err.(*fault)))
		return
	}
	if session != s.Session() {
		w.Write(encodeResponse(false, "["+method+"] User couldn't be authenticated, aborting call.", ErrAuthentication, -1, int64(0)))
		return
	}
	s.mu.Lock()
	res, err := h(s, p)
	s.mu.Unlock()
	switch e := err.(type) {
	case nil:
		w.Write(encodeResponse(true, res, 0))
	case *fault:
		w.Write(encodeFault(e))
	case *rpcError:
		id := e.id
		if id == 0 {
			id = -1
		}
		w.Write(encodeResponse(false, "["+method+"] "+e.msg, e.code, id, int64(0)))
	default:
		w.Write(encodeResponse(false, "["+method+"] "+err.Error(), ErrInternal, -1, int64(0)))
	}
}

type handler func(s *Server, p params) (any, error)

// handlerFor returns the method's implementation.
func handlerFor(method string) (handler, bool) {
	h, ok := map[string]handler{
		"one.system.version":      (*Server).systemVersion,
		"one.vm.allocate":         (*Server).vmAllocate,
		"one.vm.info":             (*Server).vmInfo,
		"one.vm.action":           (*Server).vmAction,
		"one.vm.updateconf":       (*Server).vmUpdateConf,
		"one.vm.update":           (*Server).vmUpdate,
		"one.vm.disksaveas":       (*Server).vmDiskSaveas,
		"one.vm.attach":           (*Server).vmAttach,
		"one.vm.detach":           (*Server).vmDetach,
		"one.vmpool.info":         func(s *Server, p params) (any, error) { return s.vmPool(p, false) },
		"one.vmpool.infoextended": func(s *Server, p params) (any, error) { return s.vmPool(p, true) },
		"one.image.allocate":      (*Server).imageAllocate,
		"one.image.info":          (*Server).imageInfo,
		"one.image.delete":        (*Server).imageDelete,
		"one.image.update":        (*Server).imageUpdate,
		"one.image.chtype":        (*Server).imageChtype,
		"one.image.clone":         (*Server).imageClone,
		"one.image.persistent":    (*Server).imagePersistent,
		"one.imagepool.info":      (*Server).imagePool,
		"one.datastore.info":      (*Server).datastoreInfo,
		"one.datastorepool.info":  (*Server).datastorePool,
		"one.vn.info":             (*Server).vnInfo,
		"one.vnpool.info":         (*Server).vnPool,
	}[method]
	return h, ok
}

func (s *Server) systemVersion(p params) (any, error) { return s.opts.Version, nil }

// versionAtLeast compares the emulated version with major.minor.
func (s *Server) versionAtLeast(major, minor int) bool {
	var ma, mi int
	fmt.Sscanf(s.opts.Version, "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

func noExists(what string, id int) error {
	return &rpcError{code: ErrNoExists, msg: fmt.Sprintf("Error getting %s [%d].", what, id), id: id}
}

func (s *Server) authzError(msg string) error {
	return &rpcError{code: ErrAuthorization, msg: fmt.Sprintf("User [%d] : %s", s.uid, msg)}
}

func allocateError(object, msg string) error {
	m := "Error allocating a new " + object + "."
	if msg != "" {
		m += " " + msg
	}
	return &rpcError{code: ErrAllocate, msg: m}
}

// validName is PoolObjectSQL::name_is_valid.
func validName(name string) error {
	if name == "" {
		return fmt.Errorf("Invalid NAME, it cannot be empty")
	}
	if len(name) > 128 {
		return fmt.Errorf("Invalid NAME, max length is 128 chars")
	}
	for _, c := range "&|:\\\";/'#{}$<>" {
		if strings.ContainsRune(name, c) {
			return fmt.Errorf("Invalid NAME, char '%c' is not allowed", c)
		}
	}
	if strings.ContainsAny(name, "\t\n\v\f\r") {
		return fmt.Errorf("Invalid NAME, whitespace characters are not allowed")
	}
	return nil
}

func sortedIDs[T any](m map[int]T) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

func now() int64 { return time.Now().Unix() }

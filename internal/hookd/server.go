// Package hookd is the core of the nchookd daemon: it answers the
// Eucalyptus hook and the CLI over a unix socket, runs the pre-boot rewrite,
// and keeps the record of every install it started. It knows nothing of
// flags; cmd/nchookd wires it up.
package hookd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/euca"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/metrics"
	"github.com/kscloud/kscloud/internal/preboot"
)

// Server answers requests on the hook socket.
type Server struct {
	// Metrics counts the hooks answered (nil: not counted). Set before Serve.
	Metrics *metrics.Daemon

	log     *slog.Logger
	cfg     atomic.Pointer[config.Config]
	store   *Store
	version string
	started time.Time

	// fol is the lifecycle follower, once libvirt is connected: it is told
	// of every rewrite, and says which instances must not be cleaned now.
	fol atomic.Pointer[Follower]

	wg sync.WaitGroup
}

// New returns a server using cfg and the store.
func New(log *slog.Logger, cfg *config.Config, store *Store, version string) *Server {
	s := &Server{log: log, store: store, version: version, started: time.Now()}
	s.cfg.Store(cfg)
	return s
}

// SetFollower attaches the lifecycle follower (it may come after Serve
// started, when libvirt was not reachable at first).
func (s *Server) SetFollower(f *Follower) { s.fol.Store(f) }

// Config returns the configuration in force.
func (s *Server) Config() *config.Config { return s.cfg.Load() }

// SetConfig replaces the configuration (a reload).
func (s *Server) SetConfig(c *config.Config) { s.cfg.Store(c) }

// Connection limits.
const (
	// MaxConns bounds the connections handled at once; more wait in the
	// socket's backlog. A slot is held from accept to answer, also while
	// a starved hook process has not yet sent its request, so it is well
	// over a burst of launches; each holds at most hookproto.MaxRequest.
	MaxConns = 512
	// answerTimeout bounds sending the answer.
	answerTimeout = 5 * time.Second
)

// requestTimeout bounds the wait for a request line once connected (a
// variable for tests).
var requestTimeout = 5 * time.Second

// Serve accepts connections on ln until ctx is done, then waits for the
// requests in flight. An accept error (EMFILE, ENFILE, ECONNABORTED, …)
// is logged and retried with a growing delay, as net/http's Server does;
// only the listener's closing ends Serve.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer s.wg.Wait()
	sem := make(chan struct{}, MaxConns)
	bo := wait.Backoff{Initial: 5 * time.Millisecond, Max: time.Second}
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay := bo.Next()
			s.log.Error("hook socket: accept; retrying", "err", err, "retry_in", delay)
			if wait.Sleep(ctx, delay) != nil {
				return nil
			}
			continue
		}
		bo.Reset()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			after := s.handleConn(ctx, conn)
			// The slot is the connection's: work deferred past the answer
			// (the state file's fsync) does not hold it.
			<-sem
			if after != nil {
				after()
			}
		}()
	}
}

// handleConn answers one connection and returns the work to do after the
// answer (nil for none).
func (s *Server) handleConn(ctx context.Context, conn net.Conn) func() {
	defer conn.Close()
	// The peer first, before a byte of it is read.
	uid, err := peerUID(conn)
	if err != nil {
		s.log.Warn("hook socket: peer credentials", "err", err)
		return nil
	}
	if !s.allowed(uid) {
		s.log.Warn("hook socket: peer not allowed", "uid", uid)
		conn.SetDeadline(time.Now().Add(time.Second))
		hookproto.WriteResponse(conn, &hookproto.Response{Denied: true, Error: fmt.Sprintf("uid %d may not use nchookd", uid)})
		// Let a peer still writing its request see the answer, not a
		// broken pipe: drain a little, bounded in size and time.
		if uc, ok := conn.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(conn, 4<<10))
		return nil
	}
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	// The request line is bounded; a one-deploy request widens the bound
	// by the payload it announces (hookproto.OpOneDeploy).
	lr := &io.LimitedReader{R: conn, N: hookproto.MaxRequest + 2}
	br := bufio.NewReaderSize(lr, 4<<10)
	line, req, err := hookproto.ReadRequestLine(br)
	if err == nil && req.Op == hookproto.OpOneDeploy {
		return s.oneDeploy(ctx, conn, line, br, lr)
	}
	if err != nil {
		conn.SetWriteDeadline(time.Now().Add(answerTimeout))
		hookproto.WriteResponse(conn, &hookproto.Response{Error: err.Error()})
		return nil
	}
	resp, after := s.handle(ctx, req)
	conn.SetWriteDeadline(time.Now().Add(answerTimeout))
	if err := hookproto.WriteResponse(conn, resp); err != nil {
		s.log.Warn("hook socket: write answer", "err", err)
	}
	return after
}

func (s *Server) allowed(uid uint32) bool {
	if uid == 0 || uid == uint32(os.Geteuid()) {
		return true
	}
	for _, name := range s.Config().Hook.AllowedUsers {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		if id, err := strconv.ParseUint(u.Uid, 10, 32); err == nil && uint32(id) == uid {
			return true
		}
	}
	return false
}

// Handle answers one request (and does what it defers to after the
// answer at once).
func (s *Server) Handle(ctx context.Context, req hookproto.Request) *hookproto.Response {
	resp, after := s.handle(ctx, req)
	if after != nil {
		after()
	}
	return resp
}

// handle answers one request; after, when not nil, is work to do once the
// answer is sent (persisting state off the NC's critical path).
func (s *Server) handle(ctx context.Context, req hookproto.Request) (*hookproto.Response, func()) {
	cfg := s.Config()
	switch req.Op {
	case hookproto.OpPing:
		return &hookproto.Response{OK: true}, nil
	case hookproto.OpStatus:
		resp := &hookproto.Response{OK: true, Daemon: &hookproto.DaemonStatus{
			Version: s.version, PID: os.Getpid(), Config: cfg.Path, StartedAt: s.started,
		}}
		resp.Daemon.Libvirt = "not connected"
		if f := s.fol.Load(); f != nil {
			resp.Daemon.Libvirt = f.v.State()
		}
		if req.Instance != "" {
			st, ok := s.store.Get(req.Instance)
			if !ok {
				return &hookproto.Response{Error: fmt.Sprintf("instance %q: not known to nchookd", req.Instance)}, nil
			}
			resp.Instances = []hookproto.InstanceStatus{st}
		} else {
			resp.Instances = s.store.List()
		}
		for i := range resp.Instances {
			resp.Instances[i].InstallerXML = ""
		}
		return resp, nil
	case hookproto.OpHook:
		if why := assumed(cfg, req); why != "" {
			s.log.Debug("hook request for another configuration: the Go hook will ask", "why", why)
			return &hookproto.Response{Unavailable: true, Error: why}, nil
		}
		start := time.Now()
		resp, after := s.hook(ctx, req)
		s.Metrics.Hook(req.Event, resp, time.Since(start))
		return resp, after
	}
	return &hookproto.Response{Error: fmt.Sprintf("unknown op %q", req.Op)}, nil
}

// assumed says why the dispatcher's assumptions (req.Assume*) are not
// this daemon's configuration, "" when they are.
func assumed(cfg *config.Config, req hookproto.Request) string {
	if req.AssumeTimeoutMS != 0 && req.AssumeTimeoutMS != cfg.Hook.Timeout.Milliseconds() {
		return fmt.Sprintf("hook.timeout is %s, not %dms", cfg.Hook.Timeout.Duration, req.AssumeTimeoutMS)
	}
	if req.AssumeConfig != "" {
		path := cfg.Path
		if path == "" {
			path = config.DefaultPath // defaults: no file, the hook would find none either
		}
		if filepath.Clean(req.AssumeConfig) != filepath.Clean(path) {
			a, aerr := os.Stat(req.AssumeConfig)
			b, berr := os.Stat(path)
			if aerr != nil || berr != nil || !os.SameFile(a, b) {
				return fmt.Sprintf("serving config %s, not %s", path, req.AssumeConfig)
			}
		}
	}
	return ""
}

// workContext bounds a hook request's work: by the deadline the hook
// sent (after it the hook no longer waits, and has answered the NC without
// this daemon), else by hook.timeout from now.
func workContext(ctx context.Context, cfg *config.Config, req hookproto.Request) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(cfg.Hook.Timeout.Duration)
	if !req.Deadline.IsZero() && req.Deadline.Before(dl) {
		dl = req.Deadline
	}
	return context.WithDeadline(ctx, dl)
}

func (s *Server) hook(ctx context.Context, req hookproto.Request) (*hookproto.Response, func()) {
	cfg := s.Config()
	start := time.Now()
	ctx, cancel := workContext(ctx, cfg, req)
	defer cancel()
	if err := ctx.Err(); err != nil {
		// Queued past the hook's deadline (e.g. while the daemon started):
		// the hook answered the NC by itself; do nothing behind its back.
		s.log.Warn("hook request arrived after the hook's deadline; ignored", "event", req.Event, "dir", req.InstanceDir)
		return &hookproto.Response{Error: "request arrived after the hook's deadline"}, nil
	}
	switch req.Event {
	case euca.EventPreBoot:
		o, err := preboot.PreBootContext(ctx, cfg, req.InstanceDir)
		if err != nil {
			refuse := cfg.Hook.OnError == config.OnErrorRefuse || preboot.AlwaysRefused(err)
			installLog(s.log, baseName(req.InstanceDir), StepRewrite).Error("pre-boot refused", "dir", req.InstanceDir, "err", err, "refuse", refuse)
			return &hookproto.Response{Refuse: refuse, Error: err.Error()}, nil
		}
		var after func()
		if o.Changed {
			s.store.Remember(o)
			after = func() {
				if err := s.store.Persist(o.Instance); err != nil {
					s.stateWriteFailed(o.Instance, StepRewrite, "record install", err)
				}
			}
			installLog(s.log, o.Instance, StepRewrite).Info("pre-boot rewrite", "mode", o.Mode, "installer", o.Installer,
				"vnc", o.VNC != nil, "inline_kickstart", o.Kickstart, "duration_s", time.Since(start).Seconds())
			if f := s.fol.Load(); f != nil {
				f.PreBoot(o)
			}
		} else {
			installLog(s.log, o.Instance, StepRewrite).Debug("pre-boot: nothing to do")
		}
		return &hookproto.Response{OK: true, Outcome: o}, after
	case euca.EventPreClean:
		name := baseName(req.InstanceDir)
		if f := s.fol.Load(); f != nil && f.Busy(name) {
			msg := fmt.Sprintf("instance %s: switching to its final domain; not cleaned now", name)
			installLog(s.log, name, StepClean).Warn("pre-clean refused")
			return &hookproto.Response{Refuse: true, Error: msg}, nil
		}
		o, err := preboot.PreCleanContext(ctx, cfg, req.InstanceDir)
		if err != nil {
			installLog(s.log, name, StepClean).Warn("pre-clean", "dir", req.InstanceDir, "err", err)
			return &hookproto.Response{Error: err.Error()}, nil
		}
		if err := s.store.Cleaned(o.Instance); err != nil {
			// The instance's files are cleaned; only nchookd's record of
			// it stays (a restart loads it again).
			s.stateWriteFailed(o.Instance, StepClean, "pre-clean: forget install", err)
		}
		installLog(s.log, o.Instance, StepClean).Info("pre-clean")
		return &hookproto.Response{OK: true, Outcome: o}, nil
	}
	return &hookproto.Response{OK: true}, nil
}

// stateWriteFailed logs and counts an install record that could not be
// written or removed (the hook was answered already, or its answer does
// not depend on the record).
func (s *Server) stateWriteFailed(name, step, what string, err error) {
	s.Metrics.StateWriteError()
	installLog(s.log, name, step).Error(what+": install record not written", "err", err,
		"remedy", "check that nchookd's state directory is writable and has space")
}

func baseName(dir string) string {
	for len(dir) > 1 && dir[len(dir)-1] == '/' {
		dir = dir[:len(dir)-1]
	}
	for i := len(dir) - 1; i >= 0; i-- {
		if dir[i] == '/' {
			return dir[i+1:]
		}
	}
	return dir
}

func peerUID(conn net.Conn) (uint32, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return cred.Uid, nil
}

// Package hook is the hook program's logic, shared by the static hook
// binaries (hooks/eucalyptus) and `nchookd hook`: ask the daemon over its
// socket (internal/hookproto) and, when it cannot be reached, do the same
// pre-boot rewrite itself (internal/preboot). It must never import libvirt.
package hook

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/euca"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/safetext"
)

// Environment the hook reads (the NC's environment, or the operator's when
// testing by hand).
const (
	EnvSocket  = "NCHOOKD_SOCKET"  // default hook.socket of the config
	EnvConfig  = "NCHOOKD_CONFIG"  // default config.DefaultPath, for the fallback
	EnvTimeout = "NCHOOKD_TIMEOUT" // default hook.timeout of the config: the whole hook
	// EnvNoDaemon "1": the nc-hooks dispatcher already asked the daemon,
	// which took the request and gave no answer (or does not serve this
	// user), and set EnvTimeout to the time left: rewrite here at once.
	// (From the NC's environment it can only skip the daemon, as a
	// NCHOOKD_SOCKET naming nothing can.)
	EnvNoDaemon = "NCHOOKD_NO_DAEMON"
)

// RunHook is the Eucalyptus hook: args are EVENT EUCA_HOME [INSTANCE_DIR]
// as the NC passes them. It returns the exit code: 0 on success, when there
// is nothing to do and for every event nchookd does not handle; non-zero
// only to refuse (a pre-boot refusal cancels the launch), with one line on
// stderr naming the instance and the reason.
//
// The daemon does the work when it answers; when it cannot be reached the
// hook does the same rewrite itself with the same code.
func RunHook(args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) == 0 || !euca.Handled(args[0]) {
		return 0 // pre-hyp-check and friends: return at once
	}
	event := args[0]
	if len(args) < 3 || args[2] == "" {
		fmt.Fprintf(stderr, "nchookd: %s: no instance directory given (usage: HOOK EVENT EUCA_HOME INSTANCE_DIR)\n", event)
		return 2
	}
	euHome, dir := args[1], args[2]
	start := time.Now()
	// hook.timeout bounds the whole hook: the NC runs it under its own
	// lock with no timeout of its own. The configuration is read first
	// for it; when it cannot be read the daemon may still answer.
	cfgPath, explicit := getenv(EnvConfig), true
	if cfgPath == "" {
		cfgPath, explicit = config.DefaultPath, false
	}
	cfg, cerr := config.Load(cfgPath, explicit)
	timeout, socket := budget(cfg, cerr, getenv)
	deadline := start.Add(timeout)
	// The daemon gets four fifths of it; the rest is for the fallback,
	// whose rewrite takes milliseconds (the daemon, past its deadline,
	// writes nothing and lets the lock go). The daemon is told to write
	// nothing after callDeadline, so that when the hook stops waiting
	// nothing changes behind its back.
	callDeadline := start.Add(timeout * 4 / 5)
	ctx, cancel := context.WithDeadline(context.Background(), callDeadline)
	defer cancel()
	var resp *hookproto.Response
	var err error
	if getenv(EnvNoDaemon) == "1" {
		err = fmt.Errorf("%s: %w: the dispatcher had no answer", socket, hookproto.ErrUnavailable)
	} else {
		resp, err = hookproto.Call(ctx, socket, hookproto.Request{Op: hookproto.OpHook, Event: event, EucaHome: euHome, InstanceDir: dir,
			Deadline: callDeadline.Add(-callMargin(timeout))})
	}
	if err == nil && (resp.Denied || resp.Unavailable) {
		err = fmt.Errorf("%s: %w: %s", socket, hookproto.ErrUnavailable, resp.Error)
	}
	if err == nil {
		if resp.Refuse {
			fmt.Fprintf(stderr, "nchookd: %s\n", resp.Error)
			return 1
		}
		if !resp.OK && resp.Error != "" {
			fmt.Fprintf(stderr, "nchookd: %s (booting as the NC wrote it: hook.on_error = boot)\n", resp.Error)
		}
		return 0
	}
	// No daemon: do it here.
	if cerr != nil {
		if event == euca.EventPreClean {
			fmt.Fprintf(stderr, "nchookd: %s: %v; the daemon did not answer either (%v)\n", event, cerr, err)
			return 0 // never keep the NC from cleaning (as LocalContext)
		}
		// A launch that asks nothing of nchookd is none of its business:
		// a broken config (which also stops the daemon) must not stop it.
		if _, perr := preboot.WithoutDirectives(dir, cerr); perr == nil {
			fmt.Fprintf(stderr, "nchookd: instance %s: %v; no kscloud directives: booting as the NC wrote it\n", safetext.Line(filepath.Base(dir)), cerr)
			return 0
		}
		fmt.Fprintf(stderr, "nchookd: %s: %v; the daemon did not answer either (%v)\n", event, cerr, err)
		return 1
	}
	lctx, lcancel := context.WithDeadline(context.Background(), deadline)
	defer lcancel()
	return LocalContext(lctx, cfg, event, dir, stderr)
}

// callMargin is how long before the hook stops waiting the daemon must
// have finished writing: the answer's trip back.
func callMargin(timeout time.Duration) time.Duration {
	return min(timeout/20, 100*time.Millisecond)
}

// Local runs a handled event in this process (the hook's fallback, and the
// daemon's own handler uses the same launch functions).
func Local(cfg *config.Config, event, dir string, stderr io.Writer) int {
	return LocalContext(context.Background(), cfg, event, dir, stderr)
}

// LocalContext is Local bounded by ctx: a lock not had in time ends with
// one line and the outcome hook.on_error names.
func LocalContext(ctx context.Context, cfg *config.Config, event, dir string, stderr io.Writer) int {
	switch event {
	case euca.EventPreBoot:
		_, err := preboot.PreBootContext(ctx, cfg, dir)
		if err == nil {
			return 0
		}
		if cfg.Hook.OnError == config.OnErrorBoot && !preboot.AlwaysRefused(err) {
			fmt.Fprintf(stderr, "nchookd: %v (booting as the NC wrote it: hook.on_error = boot)\n", err)
			return 0
		}
		fmt.Fprintf(stderr, "nchookd: %v\n", err)
		return 1
	case euca.EventPreClean:
		if _, err := preboot.PreCleanContext(ctx, cfg, dir); err != nil {
			// Never keep the NC from cleaning because of our leftovers.
			fmt.Fprintf(stderr, "nchookd: %v\n", err)
		}
		return 0
	}
	return 0
}

// budget is a hook's whole time and the daemon's socket: the
// configuration's (its defaults when it could not be read), overridden by
// the environment (NCHOOKD_TIMEOUT, NCHOOKD_SOCKET).
func budget(cfg *config.Config, cerr error, getenv func(string) string) (time.Duration, string) {
	timeout, socket := config.Default().Hook.Timeout.Duration, config.DefaultSocket
	if cerr == nil {
		timeout, socket = cfg.Hook.Timeout.Duration, cfg.Hook.Socket
	}
	if v := getenv(EnvSocket); v != "" {
		socket = v
	}
	if v := getenv(EnvTimeout); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			timeout = d
		}
	}
	return timeout, socket
}

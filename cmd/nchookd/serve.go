package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/fsnotify/fsnotify"

	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookd"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/metrics"
	"github.com/kscloud/kscloud/internal/slogjournal"
	"github.com/kscloud/kscloud/internal/virt"
)

func cmdServe(args []string, stderr io.Writer) int {
	fs := newFlags("serve", stderr, "[--config FILE] [--log-level debug|info|warn|error]")
	path := configFlag(fs)
	level := fs.String("log-level", "info", "log `level`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "nchookd serve: --log-level %q: %v\n", *level, err)
		return 2
	}
	log := newLogger(stderr, lv)
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		fmt.Fprintf(stderr, "nchookd serve: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, log, cfg, *path); err != nil {
		log.Error("nchookd stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger logs to the journal natively (priorities, INSTANCE=/DOMAIN=
// fields) when stderr is the journal's stream, else text to stderr.
func newLogger(w io.Writer, lv slog.Level) *slog.Logger {
	if slogjournal.UnderJournal() {
		h := slogjournal.New(lv, nil)
		h.Fallback = w
		return slog.New(h)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, log *slog.Logger, cfg *config.Config, cfgPath string) error {
	// What `nchookd check` refuses, the daemon refuses: one typo must not
	// silently stop every launch on the node.
	if errs := cfg.CheckNode(); len(errs) > 0 {
		return fmt.Errorf("config %s: %w (run nchookd check)", cfg.Path, errors.Join(errs...))
	}
	store, err := hookd.OpenStore(cfg.State.Dir, log)
	if err != nil {
		return err
	}
	srv := hookd.New(log, cfg, store, version)
	m := metrics.New(store.List)
	srv.Metrics = m
	if addr := cfg.Metrics.Listen; addr != "" {
		go func() {
			if err := m.Serve(ctx, addr); err != nil {
				log.Error("metrics not served", "err", err)
			}
		}()
	}
	ln, activated, err := listen(cfg)
	if err != nil {
		return err
	}
	defer ln.Close()
	if !activated {
		defer os.Remove(cfg.Hook.Socket)
	}
	// The hook is served from the first moment: libvirt is connected in
	// the background (the follower attaches when it answers and
	// reconciles what the store holds). READY waits for libvirt a little,
	// so that installs are followed from the start when it is up.
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	if uri := cfg.Libvirt.URI; uri != "" {
		connected := make(chan struct{})
		go follow(ctx, log, srv, store, uri, connected, m)
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			log.Warn("libvirt not reachable yet; serving the hook, following installs once it is", "uri", uri)
		case err := <-errc:
			return err
		}
	} else {
		log.Info("libvirt.uri is empty: rewriting launches only, not following installs")
	}
	// SIGHUP (ExecReload= of nchookd.service) reloads the configuration;
	// caught from here on, before READY, so that no reload kills the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go watchConfig(ctx, log, srv, cfgPath, m, hup)
	go watchdog(ctx, log, ln.Addr().String())
	n := len(store.List())
	log.Info("nchookd serving", "socket", cfg.Hook.Socket, "activated", activated, "installs", n, "config", cfg.Path)
	notify(log, daemon.SdNotifyReady, fmt.Sprintf("STATUS=serving on %s, %d install(s) known", cfg.Hook.Socket, n))
	err = <-errc
	notify(log, daemon.SdNotifyStopping, "STATUS=stopping")
	return err
}

// follow connects to libvirt (retrying until it answers) and runs the
// lifecycle follower; connected is closed once it is attached.
func follow(ctx context.Context, log *slog.Logger, srv *hookd.Server, store *hookd.Store, uri string, connected chan<- struct{}, m *metrics.Daemon) {
	bo := wait.Backoff{Initial: 500 * time.Millisecond, Max: 10 * time.Second}
	for {
		c, err := virt.Open(ctx, uri, log)
		if err == nil {
			defer c.Close()
			f := hookd.NewFollower(log, store, c, srv.Config)
			f.Metrics = m
			srv.SetFollower(f)
			close(connected)
			if err := f.Run(ctx); err != nil {
				log.Error("follower stopped", "err", err)
			}
			return
		}
		log.Warn("libvirt connect", "uri", uri, "err", err)
		if wait.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

func notify(log *slog.Logger, lines ...string) {
	msg := ""
	for _, l := range lines {
		msg += l + "\n"
	}
	if _, err := daemon.SdNotify(false, msg); err != nil {
		log.Warn("sd_notify", "err", err)
	}
}

// listen returns the hook socket: from systemd socket activation when
// started that way, else created here with mode 0660, owned by root and
// hook.socket_group.
func listen(cfg *config.Config) (net.Listener, bool, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	for _, ln := range lns {
		if ln != nil {
			return ln, true, nil
		}
	}
	p := cfg.Hook.Socket
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, false, fmt.Errorf("hook socket %s: %w", p, err)
	}
	if st, err := os.Lstat(p); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, false, fmt.Errorf("hook socket %s: exists and is not a socket", p)
		}
		if c, err := net.DialTimeout("unix", p, time.Second); err == nil {
			c.Close()
			return nil, false, fmt.Errorf("hook socket %s: another nchookd is serving it", p)
		}
		os.Remove(p)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", p)
	syscall.Umask(old)
	if err != nil {
		return nil, false, fmt.Errorf("hook socket %s: %w", p, err)
	}
	mode := os.FileMode(0o600)
	if g := cfg.Hook.SocketGroup; g != "" {
		grp, err := user.LookupGroup(g)
		if err != nil {
			ln.Close()
			return nil, false, fmt.Errorf("hook socket %s: hook.socket_group %q: %w", p, g, err)
		}
		gid, _ := strconv.Atoi(grp.Gid)
		if err := os.Chown(p, os.Geteuid(), gid); err != nil {
			ln.Close()
			return nil, false, fmt.Errorf("hook socket %s: chown to group %s: %w", p, g, err)
		}
		mode = 0o660
	}
	if err := os.Chmod(p, mode); err != nil {
		ln.Close()
		return nil, false, fmt.Errorf("hook socket %s: %w", p, err)
	}
	return ln, false, nil
}

// watchConfig reloads the configuration when its file changes and on
// SIGHUP (systemctl reload). It watches the directory (editors and config
// management replace files by rename). A file that does not validate is
// refused; the previous one stays.
func watchConfig(ctx context.Context, log *slog.Logger, srv *hookd.Server, path string, m *metrics.Daemon, hup <-chan os.Signal) {
	// The configuration the daemon started with: the keys read only at
	// start keep its values until a restart, whatever reloads came since.
	atStart := srv.Config()
	// Without a watcher (its channels nil) SIGHUP still reloads.
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if w, err := fsnotify.NewWatcher(); err != nil {
		log.Warn("config reload on change disabled (SIGHUP still reloads)", "err", err)
	} else {
		defer w.Close()
		dir := filepath.Dir(path)
		if err := w.Add(dir); err != nil {
			log.Warn("config reload on change disabled (SIGHUP still reloads)", "dir", dir, "err", err)
		} else {
			events, watchErrs = w.Events, w.Errors
		}
	}
	var timer *time.Timer
	reload := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			select {
			case reload <- struct{}{}:
			default:
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) != filepath.Clean(path) {
				continue
			}
			// Settle bursts of events (write + chmod + rename) into one reload.
			if timer != nil {
				timer.Stop()
			}
			timer = time.AfterFunc(100*time.Millisecond, func() {
				select {
				case reload <- struct{}{}:
				default:
				}
			})
		case err, ok := <-watchErrs:
			if !ok {
				return
			}
			log.Warn("config watch", "err", err)
		case <-reload:
			cfg, err := config.Load(path, false)
			if err != nil {
				log.Error("config reload refused; keeping the previous configuration", "err", err)
				m.ConfigReload(false)
				notify(log, "STATUS=config reload refused: "+oneLine(err.Error()))
				continue
			}
			if errs := cfg.CheckNode(); len(errs) > 0 {
				log.Error("config reload refused; keeping the previous configuration", "err", errors.Join(errs...).Error())
				m.ConfigReload(false)
				notify(log, "STATUS=config reload refused: "+oneLine(errs[0].Error()))
				continue
			}
			restart := config.RestartKeys(atStart, cfg)
			srv.SetConfig(cfg)
			m.ConfigReload(true)
			log.Info("config reloaded", "config", path, "installers", len(cfg.Installer))
			if len(restart) > 0 {
				log.Warn("config reloaded, but these keys take effect only when nchookd restarts (systemctl restart nchookd); the daemon keeps their old values", "keys", strings.Join(restart, ","))
				if slices.Contains(restart, "hook.socket") {
					log.Warn("the hooks read hook.socket from the file at each launch: until nchookd restarts they find no daemon there and rewrite launches themselves", "socket", cfg.Hook.Socket)
				}
			}
			notify(log, "STATUS=config reloaded")
		}
	}
}

func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// watchdog pings systemd's watchdog at half its interval when enabled, and
// only after the daemon answered a ping on its own socket: a hung accept
// loop stops the pings and systemd restarts the daemon.
func watchdog(ctx context.Context, log *slog.Logger, socket string) {
	iv, err := daemon.SdWatchdogEnabled(false)
	if err != nil || iv == 0 {
		return
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, iv/4)
			resp, err := hookproto.Call(pctx, socket, hookproto.Request{Op: hookproto.OpPing})
			cancel()
			if err != nil || !resp.OK {
				log.Warn("watchdog: own socket did not answer", "err", err)
				continue
			}
			notify(log, daemon.SdNotifyWatchdog)
		}
	}
}

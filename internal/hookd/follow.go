package hookd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/metrics"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/progress"
	"github.com/kscloud/kscloud/internal/virt"
)

// Virt is what the follower needs from libvirt (*virt.Conn).
type Virt interface {
	Events() <-chan virt.Event
	CreateXML(ctx context.Context, xml string) error
	Start(ctx context.Context, name string) error
	Info(ctx context.Context, name string) (virt.DomainInfo, error)
	XML(ctx context.Context, name string, secure bool) (string, error)
	InactiveXML(ctx context.Context, name string) (string, error)
	DiskWrites(ctx context.Context, name string) (uint64, error)
	State() string
}

// Follower follows installs through libvirt's lifecycle events: an
// install-in-place installer that ends comes back from its own disk under
// the same name and UUID; a bake's power-off is recorded as finished; a
// crash, a failure on the console or a silent installer is recorded with
// its reason. It reconciles with libvirt's live domains on start and after
// every reconnect, so a daemon or libvirtd restart loses no install.
type Follower struct {
	// Metrics counts libvirt reconnects and failed writes of install
	// records (nil: not counted).
	Metrics *metrics.Daemon

	log   *slog.Logger
	store *Store
	v     Virt
	cfg   func() *config.Config
	now   func() time.Time
	node  string // this host's name, in the VNC notes

	mu       sync.Mutex
	busy     map[string]bool
	watching map[string]*watch // installs whose console and disk we watch
}

type watch struct {
	dir     string // the instance directory ("" for kscloud's own domains)
	console string
	offset  int64
	con     *progress.Follower // progress, failure, inactivity
	writes  uint64
}

// NewFollower returns a follower; call Run.
func NewFollower(log *slog.Logger, store *Store, v Virt, cfg func() *config.Config) *Follower {
	return &Follower{log: log, store: store, v: v, cfg: cfg, now: time.Now, node: nodeName(),
		busy: map[string]bool{}, watching: map[string]*watch{}}
}

// nodeName is the host name the VNC notes give (the host an operator
// tunnels to for a console on loopback).
func nodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// Busy reports whether an instance is being switched to its final domain
// (euca-nc-pre-clean must not remove its files now).
func (f *Follower) Busy(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.busy[name]
}

// PreBoot is told of every rewrite by the hook server.
func (f *Follower) PreBoot(o *preboot.Outcome) {
	f.mu.Lock()
	delete(f.watching, o.Instance)
	f.mu.Unlock()
}

// Run handles events until ctx is done. It reconciles first.
func (f *Follower) Run(ctx context.Context) error {
	f.Reconcile(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-f.v.Events():
			f.handle(ctx, ev)
		case <-tick.C:
			f.poll(ctx)
		}
	}
}

func (f *Follower) handle(ctx context.Context, ev virt.Event) {
	f.eventLog(ev.Domain).Debug("libvirt event", "kind", ev.Kind, "reason", ev.Reason)
	switch ev.Kind {
	case virt.Reconnected:
		f.Metrics.LibvirtReconnect()
		f.Reconcile(ctx)
		return
	case virt.Started:
		f.started(ctx, ev.Domain)
	case virt.Stopped:
		f.stopped(ctx, ev)
	case virt.Crashed:
		f.eventLog(ev.Domain).Warn("guest crashed", "reason", ev.Reason)
	}
}

// started captures the installer's definition (for the final domain), the
// VNC port libvirt assigned, and starts watching the console. Domains that
// nchookd did not rewrite but that carry kscloud install metadata (kscloud
// on plain libvirt, or a launch rewritten by the hook's fallback while the
// daemon was down) are adopted.
func (f *Follower) started(ctx context.Context, name string) {
	st, known := f.store.Get(name)
	if known && st.Phase != PhaseInstalling {
		if st.Phase == PhaseFinal || st.Phase == PhaseFinishing {
			return // our own final domain starting
		}
	}
	live, err := f.v.XML(ctx, name, true)
	if err != nil {
		installLog(f.log, name, StepFollow).Warn("started: read live XML", "err", err)
		return
	}
	meta, ok, err := libvirtxml.ReadMeta([]byte(live))
	if err != nil || !ok || meta.Phase != "install" {
		return // not an installer of ours
	}
	inactive, err := f.v.InactiveXML(ctx, name)
	if err != nil {
		installLog(f.log, name, StepFollow).Warn("started: read inactive XML", "err", err)
		return
	}
	info, _ := f.v.Info(ctx, name)
	console, _ := libvirtxml.SerialLog([]byte(live)) // "" when it has none
	if !known {
		o := &preboot.Outcome{Instance: name, Changed: true, Mode: meta.Mode, Installer: meta.Installer, ConsoleLog: console, Dir: adoptedDir(name, console)}
		if err := f.store.Started(o); err != nil {
			f.stateWriteFailed(name, StepFollow, "adopt install", err)
			return
		}
		installLog(f.log, name, StepFollow).Info("following install", "mode", meta.Mode, "source", "libvirt metadata")
	}
	err = f.store.Update(name, func(s *hookproto.InstanceStatus) {
		if ended(s.Phase) {
			// The installer of an install that ended starts again (a
			// reboot of a failed install whose domain is still the
			// installer's): a new install, timed from now.
			s.StartedAt = f.store.now()
		}
		s.Phase = PhaseInstalling
		s.InstallerXML = inactive
		s.UUID = info.UUID
		s.Persistent = info.Persistent
		if s.ConsoleLog == "" {
			s.ConsoleLog = console
		}
		if v, ok, err := libvirtxml.VNCGraphics([]byte(live)); err == nil && ok && s.VNC != nil {
			s.VNC.Port = v.Port
			if v.Listen != "" {
				s.VNC.Listen = v.Listen
			}
		}
	})
	if err != nil {
		f.stateWriteFailed(name, StepFollow, "record install start", err)
		return
	}
	dir := ""
	if st, ok := f.store.Get(name); ok {
		dir = st.Dir
	}
	f.watch(name, dir, console)
	if st, ok := f.store.Get(name); ok && st.VNC != nil && st.VNC.Port > 0 {
		host := st.VNC.Listen
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = f.node
		}
		v := consolenote.VNC{Instance: name, Node: f.node, Host: host, Port: st.VNC.Port, Password: st.VNC.Password}
		line, err := consolenote.FormatOpen(v)
		if err == nil {
			err = f.note(st, line)
		}
		if err != nil {
			installLog(f.log, name, StepConsole).Warn("vnc note", "err", err)
		} else if st.Dir != "" {
			installLog(f.log, name, StepConsole).Info("vnc console noted for GetConsoleOutput", "host", host, "port", v.Port)
		}
	}
}

// update applies fn to the record of name and persists it. The follower
// runs in an event loop and has nobody to return an error to: a record that
// cannot be written is logged at error level, naming the instance and what
// was being recorded, and counted (nchookd_state_write_errors_total). The
// record stays in memory (status shows it); the next write that succeeds
// persists it. An install that ends here (final, finished or failed) is
// counted once, when its phase changes to one of them
// (nchookd_install_duration_seconds, nchookd_install_failures_total,
// nchookd_watchdog_firings_total).
func (f *Follower) update(name, step, what string, fn func(*hookproto.InstanceStatus)) {
	// The phase before and after fn, read under the store's lock: a hook
	// (pre-clean, a new deploy) may change the record as soon as Update
	// lets it go.
	var was string
	var now hookproto.InstanceStatus
	err := f.store.Update(name, func(s *hookproto.InstanceStatus) { was = s.Phase; fn(s); now = *s })
	if !ended(was) && ended(now.Phase) {
		f.Metrics.InstallEnded(now.Phase, now.Reason, f.store.now().Sub(now.StartedAt))
	}
	if err != nil {
		f.stateWriteFailed(name, step, what, err)
	}
}

// Steps of an install, the step attribute (STEP= in the journal) of every
// line logged about one, with its instance and domain (INSTANCE=, DOMAIN=;
// the follower knows an install by its domain's name, the instance's):
// journalctl INSTANCE=i-1 shows what happened to it, STEP=watchdog every
// stuck install.
const (
	StepRewrite   = "rewrite"    // the pre-boot hook (Eucalyptus) or deploy wrapper (OpenNebula) rewrote the domain
	StepClean     = "clean"      // the pre-clean hook
	StepEvent     = "event"      // a libvirt lifecycle event
	StepFollow    = "follow"     // the installer domain started: followed from now on
	StepConsole   = "console"    // its console: progress, the VNC note
	StepWatchdog  = "watchdog"   // no console output and no disk writes for state.inactivity_timeout
	StepFinish    = "finish"     // the installer stopped: finished or failed
	StepFinalBoot = "final-boot" // in place: the installed system boots from its disk
	StepReconcile = "reconcile"  // the records checked against libvirt's domains after a (re)connect
	StepDone      = "done"       // OpenNebula: the install's end recorded in the VM directory
)

// installLog is log with the install's instance, domain and step.
func installLog(log *slog.Logger, name, step string) *slog.Logger {
	return log.With("instance", name, "domain", name, "step", step)
}

// eventLog is the logger for a libvirt event of domain: with the instance
// when the domain is an install nchookd follows.
func (f *Follower) eventLog(domain string) *slog.Logger {
	if _, ok := f.store.Get(domain); ok {
		return installLog(f.log, domain, StepEvent)
	}
	return f.log.With("domain", domain, "step", StepEvent)
}

// ended says whether phase is the end of an install.
func ended(phase string) bool {
	return phase == PhaseFinal || phase == PhaseFinished || phase == PhaseFailed
}

// stateWriteFailed logs and counts an install record that could not be
// written, with the remedy: the state directory must be writable.
func (f *Follower) stateWriteFailed(name, step, what string, err error) {
	f.Metrics.StateWriteError()
	installLog(f.log, name, step).Error(what+": install record not written", "err", err,
		"remedy", "check that nchookd's state directory is writable and has space; the record is kept in memory until a later write succeeds")
}

func (f *Follower) watch(name, dir, console string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.watching[name]; ok {
		return
	}
	con := progress.NewFollower(20, nil)
	con.Now = f.now
	con.Start()
	f.watching[name] = &watch{dir: dir, console: console, con: con}
}

// note puts line first in the instance directory's console.append.log,
// which the Eucalyptus NC puts before the console in GetConsoleOutput
// (package consolenote), keeping the rest of the file. Instances without
// an instance directory (kscloud on plain libvirt) get none.
func (f *Follower) note(st hookproto.InstanceStatus, line []byte) error {
	if st.Dir == "" {
		return nil
	}
	path := filepath.Join(st.Dir, consolenote.AppendLog)
	old, err := preboot.ReadInstanceFile(f.cfg(), st.Dir, path, 1<<20)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// The note holds the VNC password: 0600 (also when the file was there,
	// wider), a new file owned like the instance directory (the NC's user,
	// who reads it for GetConsoleOutput).
	return preboot.ReplaceInstanceFile(f.cfg(), st.Dir, path, consolenote.Merge(old, line), true)
}

// noteClosed replaces the open note: the install's console is gone.
func (f *Follower) noteClosed(st hookproto.InstanceStatus) {
	line, err := consolenote.FormatClosed(st.Instance)
	if err == nil {
		err = f.note(st, line)
	}
	if err != nil {
		installLog(f.log, st.Instance, StepConsole).Warn("vnc note", "err", err)
	}
}

func (f *Follower) unwatch(name string) *watch {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.watching[name]
	delete(f.watching, name)
	return w
}

// stopped decides how an install ended.
func (f *Follower) stopped(ctx context.Context, ev virt.Event) {
	st, ok := f.store.Get(ev.Domain)
	if !ok {
		return
	}
	switch st.Phase {
	case PhaseInstalling:
	case PhaseFinal:
		f.update(ev.Domain, StepFinish, "record installed system stopped", func(s *hookproto.InstanceStatus) { s.Reason = "installed system stopped: " + ev.Reason })
		return
	case PhaseFailed:
		// Failed while running (the inactivity watchdog keeps the guest
		// for debugging): now it is gone, and its console with it.
		f.unwatch(ev.Domain)
		if st.VNC != nil && st.VNC.Port > 0 {
			f.noteClosed(st)
			f.update(ev.Domain, StepConsole, "record console closed", func(s *hookproto.InstanceStatus) { s.VNC = nil })
		}
		return
	default:
		return
	}
	f.pollOne(ctx, ev.Domain) // read the console to its end
	w := f.unwatch(ev.Domain)
	if st.VNC != nil && st.VNC.Port > 0 && st.Mode != "in-place" {
		f.noteClosed(st) // in place: after the final domain runs (no disk writes in the gap)
	}
	var pst progress.State
	if w != nil {
		pst = w.con.State()
	}
	fail := func(reason string) {
		if st.VNC != nil && st.VNC.Port > 0 && st.Mode == "in-place" {
			f.noteClosed(st)
		}
		installLog(f.log, ev.Domain, StepFinish).Error("install failed", "reason", reason)
		f.update(ev.Domain, StepFinish, "record install failed", func(s *hookproto.InstanceStatus) {
			s.Phase, s.Reason = PhaseFailed, reason
			s.LastLines = pst.Last
		})
	}
	switch {
	case ev.Reason != "shutdown":
		fail("installer stopped: " + ev.Reason)
		return
	case pst.Failure != "":
		fail("installer reported: " + pst.Failure)
		return
	}
	if st.Mode != "in-place" {
		installLog(f.log, ev.Domain, StepFinish).Info("install finished", "mode", st.Mode)
		f.update(ev.Domain, StepFinish, "record install finished", func(s *hookproto.InstanceStatus) {
			s.Phase, s.Reason = PhaseFinished, "installer powered off"
			s.Progress = pst.Line()
		})
		f.installDone(ev.Domain)
		return
	}
	f.finish(ctx, ev.Domain, ev.Time)
}

// finish boots the installed system from its disk under the installer's
// name and UUID. stopAt is when the installer stopped (for the gap).
func (f *Follower) finish(ctx context.Context, name string, stopAt time.Time) {
	f.mu.Lock()
	f.busy[name] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.busy, name)
		f.mu.Unlock()
	}()
	// Memory only: nothing is written to disk between the installer's stop
	// and the final domain's start (a restart re-derives "finishing" from
	// an installing record whose domain is gone).
	f.store.Note(name, func(s *hookproto.InstanceStatus) { s.Phase = PhaseFinishing })
	st, _ := f.store.Get(name)
	var running time.Time
	var err error
	if st.Persistent {
		// virt-install's pattern: the persistent definition boots from disk.
		// kscloud, waiting on the same host, may have started it first.
		if err = f.v.Start(ctx, name); err != nil {
			if info, ierr := f.v.Info(ctx, name); ierr == nil && info.Active {
				err = nil
			}
		}
		running = f.now()
	} else {
		running, err = f.createFinal(ctx, st)
	}
	if st.VNC != nil && st.VNC.Port > 0 {
		f.noteClosed(st) // the installer's console is gone, whatever comes next
	}
	if err != nil {
		reason := "boot installed system: " + err.Error()
		installLog(f.log, name, StepFinalBoot).Error("install in place: final domain", "err", err)
		f.update(name, StepFinalBoot, "record install failed", func(s *hookproto.InstanceStatus) { s.Phase, s.Reason = PhaseFailed, reason })
		return
	}
	gap := running.Sub(stopAt)
	installLog(f.log, name, StepFinalBoot).Info("install in place: installed system booting from disk", "gap_s", gap.Seconds())
	f.update(name, StepFinalBoot, "record installed system booted", func(s *hookproto.InstanceStatus) {
		s.Phase, s.Reason = PhaseFinal, "installer finished; booted from disk"
		s.FinalGapMS = gap.Milliseconds()
		s.VNC = nil
	})
	f.installDone(name)
}

// createFinal starts the final domain and returns when it ran.
func (f *Follower) createFinal(ctx context.Context, st hookproto.InstanceStatus) (time.Time, error) {
	src := []byte(st.InstallerXML)
	if len(src) == 0 && st.DomainFile != "" {
		b, err := preboot.ReadInstanceFile(f.cfg(), st.Dir, st.DomainFile, 4<<20)
		if err != nil {
			return time.Time{}, err
		}
		src = b
	}
	if len(src) == 0 {
		return time.Time{}, errors.New("no installer definition recorded")
	}
	final, err := libvirtxml.FinalDomain(src)
	if err != nil {
		return time.Time{}, err
	}
	// The stopped event can arrive while libvirt still tears the installer
	// down ("already active"): retry briefly, well inside the NC's tolerance.
	deadline := f.now().Add(10 * time.Second)
	for {
		err = f.v.CreateXML(ctx, string(final))
		if err == nil || !errors.Is(err, virt.ErrDomainActive) || f.now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return time.Time{}, err
	}
	running := f.now()
	if st.DomainFile != "" {
		// What the NC reads on a later reboot of the instance is the live
		// XML; the file is kept in step for people and for reconcile,
		// after the domain runs (the NC's tolerance is counted until then).
		if err := preboot.ReplaceInstanceFile(f.cfg(), st.Dir, st.DomainFile, final, false); err != nil {
			installLog(f.log, st.Instance, StepFinalBoot).Warn("write final domain XML", "err", err)
		}
	}
	return running, nil
}

// poll reads new console output and checks the inactivity watchdog.
func (f *Follower) poll(ctx context.Context) {
	f.mu.Lock()
	names := make([]string, 0, len(f.watching))
	for n := range f.watching {
		names = append(names, n)
	}
	f.mu.Unlock()
	for _, n := range names {
		f.pollOne(ctx, n)
	}
}

func (f *Follower) pollOne(ctx context.Context, name string) {
	f.mu.Lock()
	w := f.watching[name]
	f.mu.Unlock()
	if w == nil {
		return
	}
	if w.console != "" {
		if n, err := f.readFrom(w, w.con); err == nil && n > 0 {
			w.offset += n
		}
	}
	if wr, err := f.v.DiskWrites(ctx, name); err == nil && wr != w.writes {
		w.writes = wr
		w.con.Active()
	}
	if line, ok := w.con.NewLine(); ok {
		f.update(name, StepConsole, "record progress", func(s *hookproto.InstanceStatus) { s.Progress = line })
	}
	limit := f.cfg().State.InactivityTimeout.Duration
	st, _ := f.store.Get(name)
	if w.con.Inactive(limit) && st.Phase == PhaseInstalling {
		pst := w.con.State()
		reason := fmt.Sprintf("no console output and no disk writes for %s (last: %s)", limit, pst.LastLine())
		installLog(f.log, name, StepWatchdog).Error("install stuck", "reason", reason)
		f.update(name, StepWatchdog, "record install stuck", func(s *hookproto.InstanceStatus) {
			s.Phase, s.Reason, s.LastLines = PhaseFailed, reason, pst.Last
		})
	}
}

// readFrom feeds the console file from the watch's offset to its end into
// out. An instance directory's console is opened through it (the NC's user
// owns it: no symlink is followed, nothing read that user could not).
func (f *Follower) readFrom(w *watch, out io.Writer) (int64, error) {
	path, off := w.console, w.offset
	var fh *os.File
	var err error
	if w.dir != "" {
		fh, err = preboot.OpenInstanceLog(f.cfg(), w.dir, path)
	} else {
		// Not in an instance directory: still no symlink followed and
		// only a regular file read (a FIFO would block).
		fh, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == nil {
			if fi, serr := fh.Stat(); serr != nil || !fi.Mode().IsRegular() {
				fh.Close()
				return 0, fmt.Errorf("console %s: not a regular file", path)
			}
		}
	}
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("console %s: not a regular file", path)
	}
	if _, err := fh.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(out, io.LimitReader(fh, 16<<20))
}

// Reconcile brings every recorded install in line with libvirt's domains:
// called on start and after each reconnect to libvirtd.
func (f *Follower) Reconcile(ctx context.Context) {
	defer f.sweepOne(ctx)
	for _, st := range f.store.List() {
		switch st.Phase {
		case PhaseInstalling, PhaseFinishing:
		default:
			continue
		}
		info, err := f.v.Info(ctx, st.Instance)
		switch {
		case err == nil && info.Active:
			live, xerr := f.v.XML(ctx, st.Instance, false)
			meta, ok, _ := libvirtxml.ReadMeta([]byte(live))
			if xerr == nil && ok && meta.Phase == "final" || xerr == nil && !ok && st.Phase == PhaseFinishing {
				f.update(st.Instance, StepReconcile, "record installed system found running", func(s *hookproto.InstanceStatus) {
					s.Phase, s.Reason = PhaseFinal, "found running from disk after restart"
				})
				f.installDone(st.Instance)
				continue
			}
			if st.Phase == PhaseInstalling {
				f.started(ctx, st.Instance) // resume watching
			}
		case err == nil || virt.IsNotFound(err):
			// The installer ended while nobody was watching.
			if st.Phase == PhaseInstalling {
				f.watch(st.Instance, st.Dir, st.ConsoleLog)
				installLog(f.log, st.Instance, StepReconcile).Info("reconcile: installer ended while not followed")
			}
			f.stopped(ctx, virt.Event{Domain: st.Instance, Kind: virt.Stopped, Reason: "shutdown", Time: f.now()})
			if st.Phase == PhaseFinishing {
				f.finish(ctx, st.Instance, f.now())
			}
		default:
			installLog(f.log, st.Instance, StepReconcile).Warn("reconcile", "err", err)
		}
	}
}

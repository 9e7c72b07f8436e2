package hookd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/metrics"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/internal/virt"
)

// lockedBuffer is a log sink the follower and the test share.
type lockedBuffer struct{ testenv.Buffer }

func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// breakStateDir makes every later write of an install record fail: the
// records' directory is replaced by a regular file (a permission change
// would not stop root, who runs the tests in CI).
func breakStateDir(t *testing.T, state string) {
	t.Helper()
	d := filepath.Join(state, "instances")
	if err := os.RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func stateWriteErrors(t *testing.T, m *metrics.Daemon) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "nchookd_state_write_errors_total ") {
			return strings.TrimPrefix(line, "nchookd_state_write_errors_total ")
		}
	}
	t.Fatalf("no nchookd_state_write_errors_total in:\n%s", body)
	return ""
}

// Every state change the follower records goes through the store; when
// the write fails (disk full, state directory gone), the follower, which
// has nobody to return the error to, logs it at error level naming the
// instance and counts it.
func TestFollowerStateWriteErrorLoggedAndCounted(t *testing.T) {
	for _, tc := range []struct {
		name, mode, console, reason, what, phase string
	}{
		{"failed", "in-place", "Installing a (1/2)\n", "crashed", "record install failed", PhaseFailed},
		{"final", "in-place", "Installation complete\n", "shutdown", "record installed system booted", PhaseFinal},
		{"finished", "bake", "Installation complete\n", "shutdown", "record install finished", PhaseFinished},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, con, v, store, cfg := followerSetup(t, tc.console)
			var logs lockedBuffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			f := NewFollower(log, store, v, func() *config.Config { return cfg })
			m := metrics.New(nil)
			f.Metrics = m
			ctx := context.Background()
			followInstall(ctx, t, f, v, store, tc.mode, con)
			if got := stateWriteErrors(t, m); got != "0" {
				t.Fatalf("state write errors before the directory broke: %s", got)
			}

			breakStateDir(t, state)
			v.stop("i-1")
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: tc.reason, Time: time.Now()})

			if st, _ := store.Get("i-1"); st.Phase != tc.phase {
				t.Fatalf("record in memory: phase %q, want %q", st.Phase, tc.phase)
			}
			var found bool
			logged := 0
			for _, r := range logs.records(t) {
				msg, _ := r["msg"].(string)
				if strings.HasSuffix(msg, ": install record not written") {
					logged++
				}
				if !strings.HasPrefix(msg, tc.what) {
					continue
				}
				found = true
				if r["level"] != "ERROR" || r["instance"] != "i-1" || r["err"] == nil || r["remedy"] == nil {
					t.Errorf("log record %v: want level ERROR, instance i-1, err and remedy", r)
				}
				if e, _ := r["err"].(string); !strings.Contains(e, "instances") {
					t.Errorf("error %q does not name the state file", e)
				}
			}
			if !found {
				t.Fatalf("no log record %q in:\n%v", tc.what, logs.records(t))
			}
			// Each failed write is logged once and counted once (the
			// console read to its end records progress too).
			if got := stateWriteErrors(t, m); got != fmt.Sprint(logged) {
				t.Errorf("nchookd_state_write_errors_total = %s, %d failed writes logged", got, logged)
			}
		})
	}
}

// A pre-boot rewrite whose record cannot be written is logged and counted
// by the progress poll and the watchdog the same way.
func TestFollowerProgressWriteErrorCounted(t *testing.T) {
	state, con, v, store, cfg := followerSetup(t, "Starting installer, one moment...\n")
	var logs lockedBuffer
	f := NewFollower(slog.New(slog.NewJSONHandler(&logs, nil)), store, v, func() *config.Config { return cfg })
	m := metrics.New(nil)
	f.Metrics = m
	ctx := context.Background()
	v.CreateXML(ctx, installer(t, "in-place", con))
	store.Started(&preboot.Outcome{Instance: "i-1", Mode: "in-place"})
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
	f.poll(ctx)
	breakStateDir(t, state)
	os.WriteFile(con, []byte("Starting installer, one moment...\nInstalling bash (3/9)\n"), 0o644)
	f.poll(ctx)
	if st, _ := store.Get("i-1"); st.Progress != "installing packages 3/9 (bash)" {
		t.Fatalf("progress in memory: %q", st.Progress)
	}
	if got := stateWriteErrors(t, m); got != "1" {
		t.Errorf("nchookd_state_write_errors_total = %s, want 1", got)
	}
	if !strings.Contains(logs.String(), `"msg":"record progress: install record not written"`) {
		t.Errorf("no error logged:\n%s", logs.String())
	}
}

// The pre-clean hook forgets the install's record; when the record cannot
// be removed, the hook still answers OK (the instance's files are clean)
// and the failure is logged with the instance and counted.
func TestPreCleanForgetErrorLoggedAndCounted(t *testing.T) {
	state, root := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "i-1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(state, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Started(&preboot.Outcome{Instance: "i-1", Mode: "bake"}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{root}
	var logs lockedBuffer
	srv := New(slog.New(slog.NewJSONHandler(&logs, nil)), cfg, store, "test")
	m := metrics.New(nil)
	srv.Metrics = m
	breakStateDir(t, state)
	resp, after := srv.handle(context.Background(), hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-clean", InstanceDir: dir})
	if after != nil {
		after()
	}
	if resp == nil || !resp.OK {
		t.Fatalf("pre-clean: %+v", resp)
	}
	if got := stateWriteErrors(t, m); got != "1" {
		t.Errorf("nchookd_state_write_errors_total = %s, want 1", got)
	}
	var found bool
	for _, r := range logs.records(t) {
		if r["msg"] == "pre-clean: forget install: install record not written" {
			found = r["level"] == "ERROR" && r["instance"] == "i-1" && r["err"] != nil
		}
	}
	if !found {
		t.Errorf("no error logged for the record:\n%v", logs.records(t))
	}
}

// metricLine returns the value of the sample written as name (with its
// labels, as the text format writes them).
func metricLine(t *testing.T, m *metrics.Daemon, name string) string {
	t.Helper()
	return testenv.Metric(t, m.Handler(), name)
}

// An install that ends is counted when its phase changes, once: a later
// event for the same domain, or the record's removal, changes no counter.
func TestFollowerCountsEndedInstalls(t *testing.T) {
	for _, tc := range []struct {
		name, mode, console, reason, phase, failures string
	}{
		{"failed", "in-place", "Installing a (1/2)\n", "crashed", PhaseFailed, "1"},
		{"final", "in-place", "Installation complete\n", "shutdown", PhaseFinal, "0"},
		{"finished", "bake", "Installation complete\n", "shutdown", PhaseFinished, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, con, v, store, cfg := followerSetup(t, tc.console)
			f := NewFollower(quiet, store, v, func() *config.Config { return cfg })
			m := metrics.New(store.List)
			f.Metrics = m
			ctx := context.Background()
			followInstall(ctx, t, f, v, store, tc.mode, con)
			if got := metricLine(t, m, "nchookd_install_duration_seconds_count"); got != "0" {
				t.Fatalf("installs ended before any ended: %s", got)
			}
			v.stop("i-1")
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: tc.reason, Time: time.Now()})
			if st, _ := store.Get("i-1"); st.Phase != tc.phase {
				t.Fatalf("phase %q, want %q", st.Phase, tc.phase)
			}
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: tc.reason, Time: time.Now()})
			if err := store.Cleaned("i-1"); err != nil {
				t.Fatal(err)
			}
			if got := metricLine(t, m, "nchookd_install_duration_seconds_count"); got != "1" {
				t.Errorf("nchookd_install_duration_seconds_count = %s, want 1", got)
			}
			if got := metricLine(t, m, `nchookd_install_failures_total{reason="installer_crashed"}`); got != tc.failures {
				t.Errorf(`nchookd_install_failures_total{reason="installer_crashed"} = %s, want %s`, got, tc.failures)
			}
		})
	}
}

// followerSetup is a follower test's set-up: a console log holding
// console, a fake libvirt, a store in a fresh state directory and the
// default configuration with the state directory's parent as instances
// root.
func followerSetup(t *testing.T, console string) (state, con string, v *fakeVirt, store *Store, cfg *config.Config) {
	t.Helper()
	state, con = t.TempDir(), filepath.Join(t.TempDir(), "console.log")
	if err := os.WriteFile(con, []byte(console), 0o644); err != nil {
		t.Fatal(err)
	}
	v = newFakeVirt()
	store, err := OpenStore(state, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg = config.Default()
	cfg.Hook.InstancesRoot = []string{filepath.Dir(state)}
	return state, con, v, store, cfg
}

// The installer of an install that failed starts again (a reboot of the
// same installer domain): a new install, timed from its new start, and its
// end counted again.
func TestFollowerRestartedInstallerTimedAfresh(t *testing.T) {
	_, con, v, store, cfg := followerSetup(t, "Installing a (1/2)\n")
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store.now = func() time.Time { return clock }
	f := NewFollower(quiet, store, v, func() *config.Config { return cfg })
	m := metrics.New(store.List)
	f.Metrics = m
	ctx := context.Background()
	if err := store.Started(&preboot.Outcome{Instance: "i-1", Mode: "in-place"}); err != nil {
		t.Fatal(err)
	}
	for _, took := range []time.Duration{1000 * time.Second, 10 * time.Second} {
		v.CreateXML(ctx, installer(t, "in-place", con))
		f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
		clock = clock.Add(took)
		v.stop("i-1")
		f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: "crashed", Time: clock})
		if st, _ := store.Get("i-1"); st.Phase != PhaseFailed {
			t.Fatalf("phase %q, want failed", st.Phase)
		}
	}
	if got := metricLine(t, m, `nchookd_install_failures_total{reason="installer_crashed"}`); got != "2" {
		t.Errorf("failures = %s, want 2", got)
	}
	if got := metricLine(t, m, "nchookd_install_duration_seconds_sum"); got != "1010" {
		t.Errorf("install_duration_seconds_sum = %s, want 1010 (1000 s, then 10 s from the second start)", got)
	}
}

// followInstall starts installer i-1 (mode, console log con) as a pre-boot
// rewrite records it and libvirt reports its start to f.
func followInstall(ctx context.Context, t *testing.T, f *Follower, v *fakeVirt, store *Store, mode, con string) {
	t.Helper()
	v.CreateXML(ctx, installer(t, mode, con))
	if err := store.Started(&preboot.Outcome{Instance: "i-1", Mode: mode}); err != nil {
		t.Fatal(err)
	}
	f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
}

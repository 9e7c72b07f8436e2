package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookd"
	"github.com/kscloud/kscloud/internal/metrics"
	"github.com/kscloud/kscloud/internal/testenv"
)

// SIGHUP (systemctl reload: ExecReload= of nchookd.service) reloads the
// configuration, also a change the file watcher did not see; a file that
// does not validate is refused and the previous configuration stays.
func TestWatchConfigReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	confDir := filepath.Join(dir, "etc")
	os.Mkdir(confDir, 0o755)
	path := filepath.Join(confDir, "nchookd.toml")
	body := func(onError string) []byte {
		return []byte("[hook]\ninstances_root = [\"" + dir + "\"]\nsocket = \"" + dir + "/s.sock\"\nsocket_group = \"\"\nallowed_users = []\n" +
			"on_error = \"" + onError + "\"\n[state]\ndir = \"" + dir + "/state\"\n[libvirt]\nuri = \"\"\n")
	}
	os.WriteFile(path, body("refuse"), 0o644)
	cfg, err := config.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := hookd.OpenStore(cfg.State.Dir, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := hookd.New(log, cfg, store, "test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() { watchConfig(ctx, log, srv, path, metrics.New(store.List), hup); close(done) }()
	// Changed behind the watcher's back: written before it watches and
	// left alone since; only SIGHUP makes it read again.
	os.WriteFile(path, body("boot"), 0o644)
	time.Sleep(300 * time.Millisecond) // past the watcher's settle time
	srv.SetConfig(cfg)                 // whatever the watcher did, back to refuse
	hup <- os.Interrupt                // the signal's value does not matter
	waitFor(t, func() bool { return srv.Config().Hook.OnError == config.OnErrorBoot }, "SIGHUP reloaded on_error = boot")
	// A file that does not validate: refused, the configuration in force stays.
	os.WriteFile(path, []byte("[hook]\nno_such_key = 1\n"), 0o644)
	hup <- os.Interrupt
	time.Sleep(500 * time.Millisecond)
	if got := srv.Config().Hook.OnError; got != config.OnErrorBoot {
		t.Errorf("after a bad file and SIGHUP: on_error %q, want the previous boot", got)
	}
	cancel()
	<-done
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not within 5 s: %s", what)
}

// reloads reads nchookd_config_reloads_total{outcome} from the handler.
func reloads(t *testing.T, m *metrics.Daemon, outcome string) string {
	t.Helper()
	return testenv.Metric(t, m.Handler(), `nchookd_config_reloads_total{outcome="`+outcome+`"}`)
}

// Every reload is counted by outcome, also one refused by the node checks
// (an instances root that does not exist); a reload that changes a key
// read only at start applies the rest and warns, naming the key.
func TestWatchConfigReloadCountedAndRestartKeysWarned(t *testing.T) {
	dir := t.TempDir()
	confDir := filepath.Join(dir, "etc")
	os.Mkdir(confDir, 0o755)
	path := filepath.Join(confDir, "nchookd.toml")
	body := func(root, onError, listen string) []byte {
		return []byte("[hook]\ninstances_root = [\"" + root + "\"]\nsocket = \"" + dir + "/s.sock\"\nsocket_group = \"\"\nallowed_users = []\n" +
			"on_error = \"" + onError + "\"\n[state]\ndir = \"" + dir + "/state\"\n[libvirt]\nuri = \"\"\n[metrics]\nlisten = \"" + listen + "\"\n")
	}
	os.WriteFile(path, body(dir, "refuse", ""), 0o644)
	cfg, err := config.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	store, err := hookd.OpenStore(cfg.State.Dir, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := hookd.New(log, cfg, store, "test")
	m := metrics.New(store.List)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() { watchConfig(ctx, log, srv, path, m, hup); close(done) }()
	time.Sleep(300 * time.Millisecond)

	// Refused by the node checks: the instances root is not there.
	os.WriteFile(path, body(filepath.Join(dir, "missing"), "boot", ""), 0o644)
	hup <- os.Interrupt
	waitFor(t, func() bool { return reloads(t, m, "refused") != "0" }, "a reload refused by the node checks counted")
	if got := srv.Config().Hook.OnError; got != config.OnErrorRefuse {
		t.Errorf("after a refused reload: on_error %q, want the previous refuse", got)
	}
	// Refused by validation.
	os.WriteFile(path, []byte("[hook]\nno_such_key = 1\n"), 0o644)
	hup <- os.Interrupt
	waitFor(t, func() bool { return reloads(t, m, "refused") == "2" }, "a reload refused by validation counted")
	// Applied, with metrics.listen changed: a restart is needed for it.
	os.WriteFile(path, body(dir, "boot", "127.0.0.1:9639"), 0o644)
	hup <- os.Interrupt
	waitFor(t, func() bool { return srv.Config().Hook.OnError == config.OnErrorBoot }, "reload applied")
	waitFor(t, func() bool { return strings.Contains(logs.String(), "take effect only when nchookd restarts") }, "restart warning logged")
	if got := reloads(t, m, "applied"); got == "0" {
		t.Errorf("applied reloads = %s", got)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "take effect only when nchookd restarts") &&
			(!strings.Contains(line, "level=WARN") || !strings.Contains(line, "keys=metrics.listen")) {
			t.Errorf("restart warning %q: want level WARN and keys=metrics.listen", line)
		}
	}
	// Another reload still differs from what the daemon started with: said
	// again. One that puts the value the daemon runs with back: not said.
	warnings := func() int { return strings.Count(logs.String(), "take effect only when nchookd restarts") }
	os.WriteFile(path, body(dir, "refuse", "127.0.0.1:9639"), 0o644)
	hup <- os.Interrupt
	waitFor(t, func() bool { return srv.Config().Hook.OnError == config.OnErrorRefuse }, "second reload applied")
	waitFor(t, func() bool { return warnings() == 2 }, "restart warning said again while metrics.listen differs from the start")
	os.WriteFile(path, body(dir, "boot", ""), 0o644)
	hup <- os.Interrupt
	waitFor(t, func() bool { return srv.Config().Hook.OnError == config.OnErrorBoot }, "third reload applied")
	time.Sleep(200 * time.Millisecond)
	if n := warnings(); n != 2 {
		t.Errorf("%d restart warnings after metrics.listen was put back to its value at start, want 2:\n%s", n, logs.String())
	}
	cancel()
	<-done
}

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookd"
	"github.com/kscloud/kscloud/internal/metrics"
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

package hookd

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/slogjournal"
	"github.com/kscloud/kscloud/internal/virt"
)

type journalEntry struct {
	msg    string
	fields map[string]string
}

// journalSink is a journal the follower logs to through slogjournal.
type journalSink struct {
	mu      sync.Mutex
	entries []journalEntry
}

func (j *journalSink) send(msg string, _ journal.Priority, fields map[string]string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, journalEntry{msg, fields})
	return nil
}

// Every line the follower logs about an install carries INSTANCE=, DOMAIN=
// and STEP= in the journal (journalctl INSTANCE=i-1 is its whole story):
// one install followed from start to its final boot, one that crashed,
// one the inactivity watchdog ended, each with its record unwritable
// too, and a restart's reconcile.
func TestFollowerJournalFields(t *testing.T) {
	var j journalSink
	log := slog.New(slogjournal.New(slog.LevelDebug, j.send))
	for _, tc := range []struct {
		name, mode, console, reason string
		stuck, broken, adopted      bool
	}{
		{"final", "in-place", "Installation complete\n", "shutdown", false, false, false},
		{"finished", "bake", "Installation complete\n", "shutdown", false, true, false},
		{"crashed", "in-place", "Installing a (1/2)\n", "crashed", false, false, false},
		{"stuck", "in-place", "Installing a (1/2)\n", "", true, true, false},
		{"adopted", "bake", "Installation complete\n", "shutdown", false, false, true},
	} {
		state, con, v, store, cfg := followerSetup(t, tc.console)
		if tc.stuck {
			cfg.State.InactivityTimeout.Duration = time.Nanosecond
		}
		f := NewFollower(log, store, v, func() *config.Config { return cfg })
		ctx := context.Background()
		v.CreateXML(ctx, installer(t, tc.mode, con))
		if !tc.adopted {
			if err := store.Started(&preboot.Outcome{Instance: "i-1", Mode: tc.mode}); err != nil {
				t.Fatal(err)
			}
		}
		f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Started})
		f.poll(ctx)
		if tc.broken {
			breakStateDir(t, state)
		}
		if tc.stuck {
			time.Sleep(time.Millisecond)
			f.poll(ctx)
		} else {
			v.stop("i-1")
			f.handle(ctx, virt.Event{Domain: "i-1", Kind: virt.Stopped, Reason: tc.reason, Time: time.Now()})
		}
		f.Reconcile(ctx)
	}
	steps := map[string]bool{}
	for _, e := range j.entries {
		// A libvirt event of a domain not (yet) followed has no instance:
		// the adopted install's start, before its metadata is read.
		inst := e.fields["INSTANCE"]
		if inst == "" && e.fields["STEP"] == StepEvent {
			inst = "i-1"
		}
		if inst != "i-1" || e.fields["DOMAIN"] != "i-1" || e.fields["STEP"] == "" {
			t.Errorf("journal entry %q: INSTANCE=%q DOMAIN=%q STEP=%q, want i-1, i-1 and a step",
				e.msg, e.fields["INSTANCE"], e.fields["DOMAIN"], e.fields["STEP"])
		}
		steps[e.fields["STEP"]] = true
	}
	for _, s := range []string{StepEvent, StepFollow, StepFinish, StepFinalBoot, StepWatchdog} {
		if !steps[s] {
			t.Errorf("no journal entry with STEP=%s (steps seen: %v)", s, steps)
		}
	}
}

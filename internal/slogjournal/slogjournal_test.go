package slogjournal

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type entry struct {
	msg    string
	pri    journal.Priority
	fields map[string]string
}

func capture() (*[]entry, SendFunc) {
	var got []entry
	return &got, func(m string, p journal.Priority, f map[string]string) error {
		got = append(got, entry{m, p, f})
		return nil
	}
}

func TestPrioritiesAndFields(t *testing.T) {
	got, send := capture()
	log := slog.New(New(slog.LevelDebug, send)).With("domain", "i-1234")
	log.Debug("libvirt event", "kind", "started")
	log.Info("following install", "instance", "i-1234", "step", "installer")
	log.Warn("vnc note", "err", errors.New("disk full"))
	log.Error("pre-boot refused", "instance", "i-9", "step", "rewrite", "message", "x")
	log.WithGroup("vnc").Info("noted", "port", 5901)
	want := []journal.Priority{journal.PriDebug, journal.PriInfo, journal.PriWarning, journal.PriErr, journal.PriInfo}
	if len(*got) != len(want) {
		t.Fatalf("%d entries, want %d", len(*got), len(want))
	}
	for i, e := range *got {
		if e.pri != want[i] {
			t.Errorf("entry %d (%s): priority %d, want %d", i, e.msg, e.pri, want[i])
		}
		if e.fields["DOMAIN"] != "i-1234" {
			t.Errorf("entry %d: DOMAIN=%q", i, e.fields["DOMAIN"])
		}
	}
	e := (*got)[3]
	if e.fields["INSTANCE"] != "i-9" || e.fields["STEP"] != "rewrite" || e.fields["ATTR_MESSAGE"] != "x" {
		t.Errorf("fields %v", e.fields)
	}
	if !strings.HasPrefix(e.msg, "pre-boot refused ") || !strings.Contains(e.msg, `instance="i-9"`) {
		t.Errorf("message %q", e.msg)
	}
	if (*got)[2].fields["ERR"] != "disk full" {
		t.Errorf("err field %v", (*got)[2].fields)
	}
	if (*got)[4].fields["VNC_PORT"] != "5901" {
		t.Errorf("group field %v", (*got)[4].fields)
	}
}

func TestLevel(t *testing.T) {
	got, send := capture()
	log := slog.New(New(slog.LevelWarn, send))
	log.Info("quiet")
	log.Warn("loud")
	if len(*got) != 1 || (*got)[0].msg != "loud" {
		t.Fatalf("got %v", *got)
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"instance": "INSTANCE", "vnc.port": "VNC_PORT", "_x": "X", "9lives": "ATTR_9LIVES", "PRIORITY": "ATTR_PRIORITY", "--": ""} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFallback(t *testing.T) {
	var b strings.Builder
	h := New(slog.LevelInfo, func(string, journal.Priority, map[string]string) error { return errors.New("no journal") })
	h.Fallback = &b
	slog.New(h).Error("refused", "instance", "i-1")
	if b.String() != "<3>refused instance=\"i-1\"\n" {
		t.Fatalf("fallback wrote %q", b.String())
	}
}

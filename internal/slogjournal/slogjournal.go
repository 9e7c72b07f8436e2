// Package slogjournal is a log/slog handler that writes to the systemd
// journal natively: each record is one journal entry with its priority
// (so journalctl -p err finds errors) and its attributes as fields
// (instance=… becomes INSTANCE=…, domain= DOMAIN=, step= STEP=), queried
// with journalctl INSTANCE=i-1234.
package slogjournal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// SendFunc delivers one entry; journal.Send by default.
type SendFunc func(message string, priority journal.Priority, fields map[string]string) error

// Handler sends records to the journal.
type Handler struct {
	level  slog.Leveler
	send   SendFunc
	attrs  []slog.Attr // from WithAttrs, already prefixed
	prefix string      // WithGroup path, "GROUP_"
	mu     *sync.Mutex
	// Fallback gets the entry as "<priority>message" when send fails
	// (journald's stream reads the prefix as the priority).
	Fallback io.Writer
}

// New returns a handler logging records at level and above; send nil
// means journal.Send.
func New(level slog.Leveler, send SendFunc) *Handler {
	if send == nil {
		send = journal.Send
	}
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{level: level, send: send, mu: new(sync.Mutex)}
}

// UnderJournal reports whether stderr is connected to the journal
// (JOURNAL_STREAM names stderr's device and inode, as systemd sets it).
func UnderJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Priority maps slog levels to syslog priorities.
func Priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	fields := map[string]string{}
	for _, a := range h.attrs {
		addField(fields, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		addField(fields, h.prefix, a)
		return true
	})
	msg := r.Message
	// The text beside the message, as the plain handler would print it, so
	// journalctl without -o verbose still shows the fields.
	if len(fields) > 0 {
		var b strings.Builder
		b.WriteString(msg)
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%q", strings.ToLower(k), fields[k])
		}
		msg = b.String()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.send(msg, Priority(r.Level), fields)
	if err != nil && h.Fallback != nil {
		_, err = fmt.Fprintf(h.Fallback, "<%d>%s\n", Priority(r.Level), strings.ReplaceAll(msg, "\n", " "))
	}
	return err
}

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		a.Key = h.prefix + a.Key
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "_"
	return &n
}

// addField adds a (groups flattened with _) under a journal field name:
// upper case letters, digits and _, not starting with _ or a digit.
func addField(fields map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "_"
		}
		for _, g := range v.Group() {
			addField(fields, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	name := FieldName(prefix + a.Key)
	if name == "" {
		return
	}
	var s string
	switch v.Kind() {
	case slog.KindTime:
		s = v.Time().Format(time.RFC3339Nano)
	default:
		s = v.String()
	}
	fields[name] = s
}

// FieldName turns an attribute key into a journal field name ("" if none
// remains): instance → INSTANCE, vnc.port → VNC_PORT. Names the journal
// reserves (MESSAGE, PRIORITY, …, and those starting with _) get an ATTR_
// prefix.
func FieldName(key string) string {
	var b strings.Builder
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	n := strings.Trim(b.String(), "_")
	if n == "" {
		return ""
	}
	switch n {
	case "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "SYSLOG_FACILITY", "SYSLOG_PID", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "MESSAGE_ID", "ERRNO":
		return "ATTR_" + n
	}
	if n[0] >= '0' && n[0] <= '9' {
		n = "ATTR_" + n
	}
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

package slogjournal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

const (
	journaldBin = "/lib/systemd/systemd-journald"
	envInNS     = "SLOGJOURNAL_TEST_JOURNALD" // set inside the private journald's mount namespace
)

// journaldScript runs a real systemd-journald as a plain process in a
// private mount namespace (tmpfs over /run/systemd and /run/log, so the
// host's journal sockets and files are not touched), waits for its native
// socket and runs the test binary again in there.
const journaldScript = `set -e
mkdir -p /run/systemd /run/log
mount -t tmpfs none /run/systemd
mount -t tmpfs none /run/log
mkdir -p /run/systemd/journal
` + journaldBin + ` >/dev/null 2>&1 &
jpid=$!
trap 'kill $jpid' EXIT
i=0
while [ ! -S /run/systemd/journal/socket ]; do
	i=$((i+1)); [ $i -lt 100 ] || { echo "systemd-journald made no socket in 10 s" >&2; exit 1; }
	sleep 0.1
done
"$@"
`

// TestJournaldRoundTrip sends records through the handler to a real
// systemd-journald over its native socket and reads them back with
// journalctl -o json: the priority (journalctl -p err finds the error),
// the structured fields (INSTANCE=, DOMAIN=, STEP=) on every entry, logged
// as the daemon's install lines are (instance, domain and step given to
// With, the step also per record), a multi-line message kept whole, and
// journalctl finds an install's step by its fields.
func TestJournaldRoundTrip(t *testing.T) {
	if os.Getenv(envInNS) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root to run systemd-journald in a private mount namespace")
		}
		for _, p := range []string{journaldBin, "/usr/bin/journalctl", "/usr/bin/unshare"} {
			if _, err := os.Stat(p); err != nil {
				t.Skipf("needs %s (systemd, util-linux)", p)
			}
		}
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", journaldScript, "sh",
			os.Args[0], "-test.run=^TestJournaldRoundTrip$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), envInNS+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestJournaldRoundTrip")) {
			t.Fatalf("in a private journald: %v\n%s", err, out)
		}
		t.Logf("in a private journald:\n%s", out)
		return
	}
	if !journal.Enabled() {
		t.Fatal("no journald socket in the test's namespace")
	}
	inst := fmt.Sprintf("i-rt%d", os.Getpid())
	log := slog.New(New(slog.LevelDebug, nil)).With("instance", inst, "domain", inst)
	log.Error("pre-boot refused", "step", "rewrite", "err", "line one\nline two")
	log.With("step", "follow").Info("following install", "mode", "in-place")
	log.With("step", "event").Debug("libvirt event")

	var entries []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command("journalctl", "-o", "json", "--no-pager", "INSTANCE="+inst).Output()
		if err != nil {
			t.Fatalf("journalctl: %v", err)
		}
		entries = entries[:0]
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("journalctl -o json: %q: %v", sc.Text(), err)
			}
			entries = append(entries, e)
		}
		if len(entries) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(entries) != 3 {
		t.Fatalf("journal holds %d entries for %s, want 3: %v", len(entries), inst, entries)
	}
	e := entries[0]
	if e["PRIORITY"] != "3" || e["STEP"] != "rewrite" || e["DOMAIN"] != inst || e["ERR"] != "line one\nline two" ||
		!strings.HasPrefix(fmt.Sprint(e["MESSAGE"]), "pre-boot refused") || e["_TRANSPORT"] != "journal" {
		t.Fatalf("error entry: %v", e)
	}
	if entries[1]["PRIORITY"] != "6" || entries[1]["STEP"] != "follow" || entries[1]["MODE"] != "in-place" ||
		entries[2]["PRIORITY"] != "7" || entries[2]["STEP"] != "event" {
		t.Fatalf("info/debug entries: %v", entries[1:])
	}
	for _, e := range entries {
		if e["INSTANCE"] != inst || e["DOMAIN"] != inst || e["STEP"] == nil {
			t.Errorf("entry %q: INSTANCE=%v DOMAIN=%v STEP=%v, want %s, %s and a step", e["MESSAGE"], e["INSTANCE"], e["DOMAIN"], e["STEP"], inst, inst)
		}
	}
	// journalctl DOMAIN=… STEP=follow finds that step of the install only.
	out, err := exec.Command("journalctl", "-o", "json", "--no-pager", "DOMAIN="+inst, "STEP=follow").Output()
	if err != nil || bytes.Count(out, []byte("\n")) != 1 || !bytes.Contains(out, []byte("following install")) {
		t.Fatalf("journalctl DOMAIN=%s STEP=follow: %v\n%s", inst, err, out)
	}
	// journalctl -p err finds the error and only it.
	out, err = exec.Command("journalctl", "-o", "json", "--no-pager", "-p", "err", "INSTANCE="+inst).Output()
	if err != nil || bytes.Count(out, []byte("\n")) != 1 || !bytes.Contains(out, []byte("pre-boot refused")) {
		t.Fatalf("journalctl -p err: %v\n%s", err, out)
	}
	t.Logf("read back: %v", e)
}

package progress

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// lines returns n numbered console lines starting at from.
func lines(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "line %04d of the console\r\n", i)
	}
	return b.String()
}

func TestTail(t *testing.T) {
	full := lines(0, 200) // 5000 bytes
	window := func(end, size int) []byte { return []byte(full[max(0, end-size):end]) }
	steps := []struct {
		name string
		out  []byte
		want string
	}{
		{"first read: all of it", []byte(full[:100]), full[:100]},
		{"unchanged", []byte(full[:100]), ""},
		{"grew in place", []byte(full[:1000]), full[100:1000]},
		{"grew by one byte", []byte(full[:1001]), full[1000:1001]},
		{"window slid (EC2's last 64 KiB)", window(1200, 600), full[1001:1200]},
		{"window slid by less than the tail", window(1300, 600), full[1200:1300]},
		{"window unchanged", window(1300, 600), ""},
		{"window slid past the last read: all of it", window(2500, 600), full[1900:2500]},
		{"a new boot starts it anew", []byte("SeaBIOS (version 1.16)\r\n"), "SeaBIOS (version 1.16)\r\n"},
		{"empty read", nil, ""},
		{"after an empty read: all of it", []byte("Linux version 6.1\r\n"), "Linux version 6.1\r\n"},
	}
	var tl Tail
	for _, s := range steps {
		if got := tl.Next(s.out); string(got) != s.want {
			t.Fatalf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
}

// TestTailFeedsEveryByteOnce reads a console through a sliding window in
// steps of varying size: what Tail returns, joined, is the console.
func TestTailFeedsEveryByteOnce(t *testing.T) {
	full := lines(0, 2000)
	const win = 4096
	var tl Tail
	var got bytes.Buffer
	for end, step := 0, 1; end < len(full); step = step*7%997 + 1 {
		end = min(len(full), end+step)
		got.Write(tl.Next([]byte(full[max(0, end-win):end])))
	}
	if got.String() != full {
		t.Fatalf("joined reads differ from the console: %d bytes, want %d", got.Len(), len(full))
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClocked(keep int, m *regexp.Regexp) (*Follower, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	f := NewFollower(keep, m)
	f.Now = c.now
	f.Start()
	return f, c
}

func TestFollowerProgressAndFailure(t *testing.T) {
	f, _ := newClocked(3, nil)
	out := "Starting installer, one moment...\r\nInstalling bash (1/9)\r\n"
	if !f.Read([]byte(out)) {
		t.Fatal("first read held nothing new")
	}
	if l, ok := f.NewLine(); !ok || l != "installing packages 1/9 (bash)" {
		t.Fatalf("line %q %v", l, ok)
	}
	if l, ok := f.NewLine(); ok {
		t.Fatalf("unchanged line reported again: %q", l)
	}
	if f.Read([]byte(out)) {
		t.Fatal("the same read counted as new")
	}
	out += "Traceback (most recent call last):\r\n  File \"x.py\"\r\n"
	f.Read([]byte(out))
	if f.Failure() != "Traceback (most recent call last):" {
		t.Fatalf("failure %q", f.Failure())
	}
	if l, ok := f.NewLine(); !ok || !strings.HasPrefix(l, "failed: Traceback") {
		t.Fatalf("line after failure %q %v", l, ok)
	}
	st := f.State()
	if len(st.Last) != 3 || st.LastLine() != `"File \"x.py\""` {
		t.Fatalf("last lines %q, last %s", st.Last, st.LastLine())
	}
	if (State{}).LastLine() != "no output at all" {
		t.Fatal("empty console described wrongly")
	}
}

func TestFollowerMarker(t *testing.T) {
	f, _ := newClocked(5, DefaultMarker)
	if f.Read([]byte("Fedora Linux 40\r\n")); f.Marker() != "" {
		t.Fatalf("marker %q before the prompt", f.Marker())
	}
	// The prompt ends the output: it is looked for in the whole read.
	if f.Read([]byte("Fedora Linux 40\r\n\r\nvm1 login: ")); f.Marker() != "login: " {
		t.Fatalf("marker %q", f.Marker())
	}
	// Found once, kept.
	f.Read([]byte("a new boot\r\n"))
	if f.Marker() != "login: " {
		t.Fatalf("marker lost: %q", f.Marker())
	}
	g, _ := newClocked(5, nil)
	if g.Read([]byte("kscloud-installed sha256=ab12\r\n")); g.Marker() != "" {
		t.Fatal("a follower without a marker found one")
	}
}

func TestFollowerInactivity(t *testing.T) {
	f, c := newClocked(5, nil)
	const limit = 10 * time.Minute
	c.add(limit)
	if f.Inactive(limit) {
		t.Fatal("inactive at the limit")
	}
	c.add(time.Second)
	if !f.Inactive(limit) || f.Inactive(0) {
		t.Fatal("watchdog: limit passed but not inactive, or 0 not 'never'")
	}
	f.Read([]byte("x")) // console output
	if f.Inactive(limit) || f.Quiet() != 0 {
		t.Fatalf("output did not count: quiet %s", f.Quiet())
	}
	c.add(2 * limit)
	f.Write(nil) // nothing new
	if !f.Inactive(limit) {
		t.Fatal("an empty write counted as activity")
	}
	f.Active() // disk writes
	if f.Inactive(limit) {
		t.Fatal("disk activity did not count")
	}
	c.add(2 * limit)
	f.Read([]byte("x")) // the same console again: nothing new
	if !f.Inactive(limit) {
		t.Fatal("an unchanged read counted as activity")
	}
}

// TestFollowerAppendAndWholeAgree: nchookd feeds appended bytes in any
// chunks, kscloud whole reads; both see the same state.
func TestFollowerAppendAndWholeAgree(t *testing.T) {
	console := "Starting installer\r\nInstalling a (1/2)\r\nInstalling b (2/2)\r\nkscloud-vnc: instance=i-1 node=n host=h port=5900 password=secret\r\nInstallation complete\r\n"
	app, _ := newClocked(10, nil)
	whole, _ := newClocked(10, nil)
	for i := 0; i < len(console); i += 5 {
		end := min(len(console), i+5)
		app.Write([]byte(console[i:end]))
		whole.Read([]byte(console[:end]))
	}
	a, w := app.State(), whole.State()
	if fmt.Sprint(a) != fmt.Sprint(w) || !a.Done {
		t.Fatalf("append %+v\nwhole %+v", a, w)
	}
	if strings.Contains(strings.Join(a.Last, "\n"), "secret") {
		t.Fatal("a VNC note reached the last lines")
	}
}

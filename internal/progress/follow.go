package progress

import (
	"bytes"
	"fmt"
	"regexp"
	"time"
)

// DefaultMarker matches the test installer's marker or a getty login
// prompt ("host login: ") ending a line or the output so far: the
// installed system is up.
var DefaultMarker = regexp.MustCompile(`(?m)kscloud-installed sha256=[0-9a-f]+|\blogin: ?\r?$`)

// Tail finds what is new in successive reads of a console: a local serial
// log grows in place; a cloud's console output is a window (EC2: the last
// 64 KiB) that slides once full; a new boot may start it anew. A slid
// window is placed by the last TailLen bytes of the previous read, found
// again in the new one: output that repeats itself for that long (the
// same lines over and over) can place it too late and skip what came
// between. A window that slid past all of the previous read is taken as
// new in full.
type Tail struct {
	n    int    // length of the last read
	tail []byte // its last bytes
}

// TailLen is how many bytes of the last read Tail keeps to find its place
// in the next one.
const TailLen = 256

// Next returns the part of out, the whole console as read now, that the
// previous reads did not hold.
func (c *Tail) Next(out []byte) []byte {
	var d []byte
	switch {
	case c.n == 0:
		d = out
	case len(out) >= c.n && bytes.Equal(out[c.n-len(c.tail):c.n], c.tail):
		d = out[c.n:] // grew in place
	default:
		if i := bytes.LastIndex(out, c.tail); i >= 0 {
			d = out[i+len(c.tail):] // the window slid
		} else {
			d = out // started anew (a new boot)
		}
	}
	c.n = len(out)
	c.tail = append(c.tail[:0], out[max(0, len(out)-TailLen):]...)
	return d
}

// Follower follows one install's console: how far it is and whether it
// failed (a [Scanner]), whether the installed system is up (a marker) and
// how long the install has been quiet (the inactivity watchdog). kscloud
// feeds it whole console reads ([Follower.Read]), nchookd the bytes
// appended to a serial log since the last read (it is an io.Writer) and
// disk activity ([Follower.Active]); the local provider a whole log. It
// holds no lock: one goroutine feeds it.
type Follower struct {
	// Now is the clock (default time.Now).
	Now func() time.Time

	sc         *Scanner
	tail       Tail
	marker     *regexp.Regexp
	found      string
	lastActive time.Time
	lastLine   string
}

// NewFollower keeps the last keep console lines (for a failure's report)
// and, when marker is not nil, looks for it in the console ([Follower.Marker]).
// The inactivity clock starts now.
func NewFollower(keep int, marker *regexp.Regexp) *Follower {
	f := &Follower{Now: time.Now, sc: NewScanner(keep), marker: marker}
	f.lastActive = f.Now()
	return f
}

// Start restarts the inactivity clock (a follower made before its clock
// was set, or resumed).
func (f *Follower) Start() { f.lastActive = f.Now() }

// Write feeds console bytes appended since the last call; any byte counts
// as activity. It never fails. The marker is not looked for (see Read).
func (f *Follower) Write(p []byte) (int, error) {
	if len(p) > 0 {
		f.lastActive = f.Now()
	}
	return f.sc.Write(p)
}

// Read feeds the whole console output as read now (a log, or a cloud's
// sliding window of it) and reports whether it held anything new. Until
// the marker is found, it is looked for in out (a login prompt is the
// end of the output, not of what is new).
func (f *Follower) Read(out []byte) (grew bool) {
	d := f.tail.Next(out)
	f.Write(d)
	if f.marker != nil && f.found == "" && len(out) > 0 {
		if m := f.marker.Find(out); m != nil {
			f.found = string(m)
		}
	}
	return len(d) > 0
}

// Marker returns the marker text once a read held it, else "".
func (f *Follower) Marker() string { return f.found }

// Active counts something other than console output (the guest writing
// to its disk) as activity.
func (f *Follower) Active() { f.lastActive = f.Now() }

// Quiet returns how long the install has shown no activity.
func (f *Follower) Quiet() time.Duration { return f.Now().Sub(f.lastActive) }

// Inactive reports whether the install has been quiet for longer than
// limit (never when limit is 0 or less).
func (f *Follower) Inactive(limit time.Duration) bool { return limit > 0 && f.Quiet() > limit }

// State returns what the console said so far.
func (f *Follower) State() State { return f.sc.State() }

// Failure returns the console's first failure line, "" when none.
func (f *Follower) Failure() string { return f.sc.st.Failure }

// NewLine returns the progress line ([State.Line]) when it changed since
// the last call and is not empty.
func (f *Follower) NewLine() (string, bool) {
	l := f.sc.st.Line()
	if l == "" || l == f.lastLine {
		return "", false
	}
	f.lastLine = l
	return l, true
}

// LastLine describes the console's last line for a report: quoted, or
// "no output at all".
func (s State) LastLine() string {
	if len(s.Last) == 0 {
		return "no output at all"
	}
	return fmt.Sprintf("%q", s.Last[len(s.Last)-1])
}

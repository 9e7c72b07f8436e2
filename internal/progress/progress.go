// Package progress reads an installer's serial console as it grows and
// tells how far the install is and whether it failed: Anaconda's text-mode
// lines ("Installing foo (12/345)", "Running post-installation scripts"),
// and the failure patterns installers print (Python tracebacks, a kickstart
// that cannot be fetched, kernel panics, dracut timeouts). nchookd shows it
// in its status; kscloud turns it into a live progress line.
package progress

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/safetext"
)

// State is what the console said so far.
type State struct {
	Phase   string // last phase line, e.g. "Running post-installation scripts"
	Package string // package being installed
	N, M    int    // package n of m
	Failure string // first failure line, "" when none
	Done    bool   // the installer said it completed
	Last    []string
}

// Line returns a one-line summary for people.
func (s State) Line() string {
	switch {
	case s.Failure != "":
		return "failed: " + s.Failure
	case s.Done:
		return "installation complete"
	case s.M > 0 && s.Phase == phaseInstalling:
		return "installing packages " + strconv.Itoa(s.N) + "/" + strconv.Itoa(s.M) + " (" + s.Package + ")"
	}
	return s.Phase
}

const phaseInstalling = "Installing packages"

// Scanner consumes console bytes incrementally.
type Scanner struct {
	st      State
	partial []byte
	keep    int
}

// NewScanner keeps the last keep lines (for "last console lines" on
// failure).
func NewScanner(keep int) *Scanner { return &Scanner{keep: keep} }

// State returns the state so far.
func (sc *Scanner) State() State {
	st := sc.st
	st.Last = append([]string(nil), sc.st.Last...)
	return st
}

// maxLine bounds a line kept while waiting for its end.
const maxLine = 4096

// Write feeds console bytes; it never fails.
func (sc *Scanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			sc.partial = append(sc.partial, p...)
			if len(sc.partial) > maxLine {
				sc.line(string(sc.partial))
				sc.partial = sc.partial[:0]
			}
			break
		}
		sc.partial = append(sc.partial, p[:i]...)
		sc.line(string(sc.partial))
		sc.partial = sc.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

var (
	// "Installing bash (12/345)", "Installing bash.x86_64 (12/345)"
	reInstalling = regexp.MustCompile(`Installing ([^ ]+) \((\d+)/(\d+)\)`)
	// [    2.345678] kernel timestamps
	reKernelTS = regexp.MustCompile(`^\[\s*\d+\.\d+\] `)
)

// Phase lines, matched as substrings, in Anaconda's words (and the test
// installer's, which copies them).
var phases = []string{
	"Starting installer",
	"Running pre-installation scripts",
	"Starting package installation process",
	"Creating disklabel",
	"Creating ext4",
	"Creating xfs",
	"Creating swap",
	"Running pre-installation tasks",
	"Installing boot loader",
	"Installing bootloader",
	"Performing post-installation setup tasks",
	"Configuring installed system",
	"Running post-installation scripts",
	"Generating initramfs",
}

// Failure patterns: a line containing one of these means the install failed.
var failures = []string{
	"Traceback (most recent call last)",
	"kickstart file not found",
	"Failed to fetch kickstart",
	"Unable to download the kickstart file",
	"The following problem occurred on line",
	"The following error was found while parsing the kickstart",
	"There was an error running the kickstart script",
	"An unknown error has occurred",
	"Kernel panic - not syncing",
	"dracut-initqueue[",
	"Could not boot.",
	"kscloud-installer: error:",
}

// dracut prints this when it gives up waiting for the root/installer image.
const dracutTimeout = "timeout scripts"

func (sc *Scanner) line(l string) {
	// The console is the guest's: every line kept or shown (phase, failure,
	// last lines) is stripped of escapes and controls here.
	l = safetext.Line(strings.TrimRight(l, "\r"))
	l = strings.TrimSpace(reKernelTS.ReplaceAllString(l, ""))
	if l == "" || consolenote.IsNote(l) { // nchookd's notes hold a password
		return
	}
	if sc.keep > 0 {
		sc.st.Last = append(sc.st.Last, l)
		if len(sc.st.Last) > sc.keep {
			sc.st.Last = sc.st.Last[len(sc.st.Last)-sc.keep:]
		}
	}
	if sc.st.Failure == "" {
		for _, f := range failures {
			if strings.Contains(l, f) {
				if f == "dracut-initqueue[" && !strings.Contains(l, dracutTimeout) {
					continue
				}
				sc.st.Failure = l
				return
			}
		}
	}
	if m := reInstalling.FindStringSubmatch(l); m != nil {
		sc.st.Phase = phaseInstalling
		sc.st.Package = m[1]
		sc.st.N, _ = strconv.Atoi(m[2])
		sc.st.M, _ = strconv.Atoi(m[3])
		return
	}
	if strings.Contains(l, "Installation complete") || strings.Contains(l, "installation complete") {
		sc.st.Done = true
		sc.st.Phase = "Installation complete"
		return
	}
	for _, p := range phases {
		if strings.Contains(l, p) {
			sc.st.Phase = l
			return
		}
	}
}

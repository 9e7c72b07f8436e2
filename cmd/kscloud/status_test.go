package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// screen renders what a terminal shows for s: \r returns to the start of
// the line, ESC[K clears the rest of it, \n starts a new line.
func screen(s string) []string {
	lines := []string{""}
	cur := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\n':
			lines = append(lines, "")
			cur = 0
		case s[i] == '\r':
			cur = 0
		case strings.HasPrefix(s[i:], "\033[K"):
			last := &lines[len(lines)-1]
			*last = (*last)[:cur]
			i += 2
		default:
			last := &lines[len(lines)-1]
			if cur < len(*last) {
				*last = (*last)[:cur] + string(s[i]) + (*last)[cur+1:]
			} else {
				*last += string(s[i])
			}
			cur++
		}
	}
	return lines
}

func TestStatusVNCLineStays(t *testing.T) {
	var buf bytes.Buffer
	s := &status{w: &buf, tty: true}
	s.line("installing: package 1/10")
	s.line("VNC console: vnc://127.0.0.1:5901 (password and tunnel: kscloud vnc ks-1)")
	s.line("installing: package 2/10")
	s.line("installing: package 3/10")
	s.done()
	got := screen(buf.String())
	if len(got) < 2 || !strings.Contains(got[0], "VNC console: vnc://127.0.0.1:5901") || !strings.Contains(got[1], "package 3/10") {
		t.Fatalf("terminal shows %q: want the VNC line kept above the progress line", got)
	}
}

func TestStatusNotATerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("/dev/null counts as a terminal")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer counts as a terminal")
	}
}

// TestStatusFinalLinesStay: on a terminal, what a run leaves for its user
// (kept on error, how to resume, a warning) and what others write to
// stderr during it (the -v log, a step's warning) get lines of their own
// that the progress line neither overwrites nor runs into; done twice
// ends the line once.
func TestStatusFinalLinesStay(t *testing.T) {
	var buf bytes.Buffer
	s := &status{w: &buf, tty: true, start: time.Now()}
	s.line("installing: package 1/10")
	s.keep("kept on error (--keep-on-error): instance i-1")
	s.keep("resume with: kscloud bake --resume ks-1; remove with: kscloud cleanup ks-1")
	s.line("installing: package 2/10")
	fmt.Fprintf(s, "kscloud: kickstart server 10.0.0.1:8080: address in use; not served again\n")
	fmt.Fprintf(s, "time=now level=INFO msg=step step=launch")
	s.line("installing: package 3/10")
	s.done()
	s.done()
	fmt.Fprintf(s, "kscloud bake: failed\n")
	got := screen(buf.String())
	want := []string{
		"[0s] kept on error (--keep-on-error): instance i-1",
		"[0s] resume with: kscloud bake --resume ks-1; remove with: kscloud cleanup ks-1",
		"kscloud: kickstart server 10.0.0.1:8080: address in use; not served again",
		"time=now level=INFO msg=step step=launch",
		"[0s] installing: package 3/10",
		"kscloud bake: failed",
		"",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("terminal shows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Not a terminal: every line once, in order.
	buf.Reset()
	s = &status{w: &buf, start: time.Now()}
	s.line("installing")
	s.keep("resume with: x")
	fmt.Fprintf(s, "log line\n")
	s.done()
	if got := buf.String(); got != "[0s] installing\n[0s] resume with: x\nlog line\n" {
		t.Fatalf("log shows %q", got)
	}
}

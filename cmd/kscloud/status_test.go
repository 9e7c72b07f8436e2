package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
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

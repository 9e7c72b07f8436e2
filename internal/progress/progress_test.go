package progress

import (
	"strings"
	"testing"
)

func feed(sc *Scanner, s string, chunk int) {
	for len(s) > 0 {
		n := chunk
		if n > len(s) {
			n = len(s)
		}
		sc.Write([]byte(s[:n]))
		s = s[n:]
	}
}

func TestAnacondaProgress(t *testing.T) {
	console := "[    1.234567] Linux version 6.1\r\n" +
		"Starting installer, one moment...\n" +
		"Running pre-installation scripts\n" +
		"\x1b[1mStarting package installation process\x1b[0m\n" +
		"Installing libgcc.x86_64 (1/345)\n" +
		"Installing bash.x86_64 (12/345)\n"
	for _, chunk := range []int{1, 7, 1 << 20} {
		sc := NewScanner(3)
		feed(sc, console, chunk)
		st := sc.State()
		if st.N != 12 || st.M != 345 || st.Package != "bash.x86_64" || st.Failure != "" {
			t.Fatalf("chunk %d: %+v", chunk, st)
		}
		if got := st.Line(); got != "installing packages 12/345 (bash.x86_64)" {
			t.Fatalf("line %q", got)
		}
		if len(st.Last) != 3 || st.Last[2] != "Installing bash.x86_64 (12/345)" {
			t.Fatalf("last %q", st.Last)
		}
	}
}

func TestFailures(t *testing.T) {
	for _, l := range []string{
		"Traceback (most recent call last):",
		"kickstart file not found: http://10.0.2.2:8000/ks.cfg",
		"[  125.1] dracut-initqueue[612]: Warning: dracut-initqueue timeout - starting timeout scripts",
		"[    3.2] Kernel panic - not syncing: VFS: Unable to mount root fs",
		"The following error was found while parsing the kickstart configuration file:",
	} {
		sc := NewScanner(5)
		feed(sc, "Running pre-installation scripts\n"+l+"\nInstalling x (1/2)\n", 5)
		st := sc.State()
		if st.Failure == "" || !strings.HasPrefix(st.Line(), "failed: ") {
			t.Fatalf("%q: not a failure: %+v", l, st)
		}
	}
	sc := NewScanner(0)
	feed(sc, "dracut-initqueue[612]: starting\nInstallation complete\n", 3)
	if st := sc.State(); st.Failure != "" || !st.Done {
		t.Fatalf("%+v", st)
	}
}

func TestLongLineBounded(t *testing.T) {
	sc := NewScanner(2)
	sc.Write([]byte(strings.Repeat("x", 100000)))
	if len(sc.partial) > maxLine {
		t.Fatalf("partial line grows without bound: %d", len(sc.partial))
	}
}

// TestHostileConsole: a guest's escapes (window title, clipboard write,
// DCS, carriage-return overwrite, C1 CSI) never reach the state that
// nchookd status and kscloud print.
func TestHostileConsole(t *testing.T) {
	console := "\x1b]0;owned\x07Running pre-installation scripts\x1b]52;c;Y3VybCBldmlsfHNo\x1b\\\r\n" +
		"Installing \x1bP+q\x1b\\bash (2/9)\n" +
		"harmless\rTraceback (most recent call last)\u009b2J\u202e\n"
	sc := NewScanner(5)
	feed(sc, console, 3)
	st := sc.State()
	all := st.Phase + st.Failure + st.Package + strings.Join(st.Last, "")
	if strings.ContainsAny(all, "\x1b\x07\r\u009b\u202e") {
		t.Fatalf("escapes kept: %+v", st)
	}
	if st.Failure != `harmlessTraceback (most recent call last)\u202e` || st.Package != "bash" || st.N != 2 {
		t.Fatalf("state %+v", st)
	}
}

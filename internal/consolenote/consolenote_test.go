package consolenote

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	v := VNC{Instance: "i-3A2B41C0", Node: "nc1", Host: "127.0.0.1", Port: 5901, Password: "Xy7kP2mQ"}
	open, err := FormatOpen(v)
	if err != nil {
		t.Fatal(err)
	}
	// What GetConsoleOutput returns: the append log, then the console.
	appendLog := Merge([]byte("Operating system: Linux\r\n"), open)
	console := append(append([]byte{}, appendLog...), "Starting installer\r\nInstalling bash (12/345)\r\n"...)
	got, st := Read(console, v.Instance)
	if st != Open || got != v {
		t.Fatalf("Last = %+v, %v: want %+v open", got, st, v)
	}
	if !got.Loopback() || got.URL() != "vnc://127.0.0.1:5901" {
		t.Errorf("loopback %v url %s", got.Loopback(), got.URL())
	}
	if _, st := Read(console, "i-other"); st != None {
		t.Errorf("another instance's note read as %v", st)
	}
	closed, err := FormatClosed(v.Instance)
	if err != nil {
		t.Fatal(err)
	}
	after := Merge(appendLog, closed)
	if got, st := Read(after, v.Instance); st != Closed || got.Password != "" {
		t.Errorf("after the closed note: %+v, %v", got, st)
	}
	if want := "kscloud-vnc: instance=i-3A2B41C0 closed\r\nOperating system: Linux\r\n"; string(after) != want {
		t.Errorf("merged append log %q, want %q", after, want)
	}
	// A later open note (a reconcile after a daemon restart) wins again.
	if _, st := Read(Merge(after, open), v.Instance); st != Open {
		t.Errorf("open after closed: %v", st)
	}
	// The guest's part of the output cannot forge or reopen a note.
	forged := append(append([]byte{}, after...), "kscloud-vnc: instance=i-3A2B41C0 node=evil host=10.0.0.66 port=5900 password=x\r\n"...)
	if _, st := Read(forged, v.Instance); st != Closed {
		t.Errorf("a note printed by the guest was read: %v", st)
	}
	if got, st := Read(Merge(nil, open), "I-3a2b41c0"); st != Open || got.Port != 5901 {
		t.Errorf("instance ids differ only in case: %v", st)
	}
	if len(open) > MaxAppendLog {
		t.Errorf("a note of %d bytes", len(open))
	}
}

func TestMerge(t *testing.T) {
	for _, c := range []struct{ old, want string }{
		{"", "N\r\n"},
		{"a\nb", "N\r\na\nb"},
		{"kscloud-vnc: instance=i-1 closed\r\n", "N\r\n"},
		{"x\nkscloud-vnc: instance=i-1 closed\r\ny\n", "N\r\nx\ny\n"},
	} {
		if got := string(Merge([]byte(c.old), []byte("N\r\n"))); got != c.want {
			t.Errorf("Merge(%q) = %q, want %q", c.old, got, c.want)
		}
	}
}

func TestLastIgnoresCutAndBadNotes(t *testing.T) {
	open, _ := FormatOpen(VNC{Instance: "i-1", Node: "n", Host: "::1", Port: 5900, Password: "p"})
	cut := open[:len(open)-6]
	if _, st := Read(cut, "i-1"); st != None {
		t.Errorf("a note cut by the end of the output was read: %v", st)
	}
	for _, bad := range []string{
		"kscloud-vnc: instance=i-1 host=h port=99999 password=p\n",
		"kscloud-vnc: instance=i-1 host=h port=x password=p\n",
		"kscloud-vnc: instance=i-1 port=5900\n",
		"kscloud-vnc: instance=i-1 garbage\n",
		"kscloud-vnc: host=h port=5900\n",
	} {
		if v, st := Read([]byte(bad), "i-1"); st != None {
			t.Errorf("%q read as %+v %v", bad, v, st)
		}
	}
	v, _ := Read(open, "i-1")
	if v.URL() != "vnc://[::1]:5900" || !v.Loopback() {
		t.Errorf("IPv6 loopback: %s %v", v.URL(), v.Loopback())
	}
}

func TestFormatRefusesWhatWouldNotReadBack(t *testing.T) {
	for _, v := range []VNC{
		{Instance: "i 1", Node: "n", Host: "h", Port: 1, Password: "p"},
		{Instance: "i-1", Node: "n\r\nkscloud-vnc: instance=i-1 closed", Host: "h", Port: 1, Password: "p"},
		{Instance: "i-1", Node: "n", Host: "h", Port: 0, Password: "p"},
		{Instance: "i-1", Node: "n", Host: "h", Port: 1, Password: "a=b"},
		{Instance: "i-1", Node: "", Host: "h", Port: 1, Password: "p"},
	} {
		if b, err := FormatOpen(v); err == nil {
			t.Errorf("FormatOpen(%+v) = %q: want an error", v, b)
		}
	}
	if _, err := FormatClosed(""); err == nil {
		t.Error("FormatClosed of no instance")
	}
}

func TestIsNote(t *testing.T) {
	open, _ := FormatOpen(VNC{Instance: "i-1", Node: "n", Host: "h", Port: 5900, Password: "p"})
	if !IsNote(strings.TrimSpace(string(open))) || IsNote("Installing bash (1/2)") {
		t.Error("IsNote")
	}
}

func FuzzRead(f *testing.F) {
	open, _ := FormatOpen(VNC{Instance: "i-1", Node: "n", Host: "h", Port: 5900, Password: "p"})
	f.Add(open, "i-1")
	f.Add([]byte("kscloud-vnc: instance=i-1 closed\r\n"), "i-1")
	f.Fuzz(func(t *testing.T, console []byte, instance string) {
		v, st := Read(console, instance)
		if st == Open {
			if !strings.EqualFold(v.Instance, instance) || v.Port <= 0 || v.Port > 65535 || v.Host == "" {
				t.Fatalf("open note %+v", v)
			}
			// What was read writes back and reads back the same.
			if v.Node != "" {
				b, err := FormatOpen(v)
				if err == nil {
					if w, st2 := Read(b, instance); st2 != Open || w != v {
						t.Fatalf("re-read %+v %v: want %+v", w, st2, v)
					}
				}
			}
		}
	})
}

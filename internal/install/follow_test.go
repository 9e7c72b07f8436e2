package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
)

// scriptedCloud plays an instance whose console and state follow a
// script, one step a read of its state (polled, as a cloud API is). Only
// what follow calls is implemented.
type scriptedCloud struct {
	cloud.Provider
	mu     sync.Mutex
	steps  []scriptStep
	i      int
	window int // the console output is its last window bytes (EC2: 64 KiB)
}

type scriptStep struct {
	console string // the whole console so far
	state   string
}

func (c *scriptedCloud) cur() scriptStep {
	return c.steps[min(c.i, len(c.steps)-1)]
}

func (c *scriptedCloud) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.cur().console
	if c.window > 0 && len(out) > c.window {
		out = out[len(out)-c.window:]
	}
	return []byte(out), nil
}

func (c *scriptedCloud) Instance(ctx context.Context, id string) (cloud.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.cur().state
	c.i++
	return cloud.Instance{ID: id, State: st}, nil
}

func followCase(t *testing.T, c *scriptedCloud, spec Spec, stopAtMarker bool, until ...string) (cloud.Instance, string, []string, error) {
	t.Helper()
	var lines []string
	w := &Workflow{P: c, ConsolePoll: time.Millisecond, ConsolePollMax: 2 * time.Millisecond, LastLines: 3,
		Status: func(l string) { lines = append(lines, l) }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, m, err := w.follow(ctx, &Build{ID: "b-1", Spec: spec}, "i-1", until, stopAtMarker)
	return inst, m, lines, err
}

// TestFollowSlidingWindow: a console longer than the cloud's window is
// followed through it; each progress line is told once, in order; the
// installer's power-off ends the follow.
func TestFollowSlidingWindow(t *testing.T) {
	n := 0
	pad := func() string { // ~300 bytes: the window slides by more than half
		var b strings.Builder
		for range 8 {
			n++
			fmt.Fprintf(&b, "[%8d.000000] kernel: a numbered line\r\n", n)
		}
		return b.String()
	}
	con := "Starting installer, one moment...\r\n" + pad()
	steps := []scriptStep{{con, cloud.InstanceRunning}}
	for i := 1; i <= 3; i++ {
		con += "Installing pkg" + string(rune('0'+i)) + " (" + string(rune('0'+i)) + "/3)\r\n" + pad()
		steps = append(steps, scriptStep{con, cloud.InstanceRunning}, scriptStep{con, cloud.InstanceRunning})
	}
	con += "Running post-installation scripts\r\n"
	steps = append(steps, scriptStep{con, cloud.InstanceRunning}, scriptStep{con, cloud.InstanceStopped})
	c := &scriptedCloud{steps: steps, window: 512}
	inst, m, lines, err := followCase(t, c, Spec{}, false, cloud.InstanceStopped, cloud.InstanceTerminated)
	if err != nil || inst.State != cloud.InstanceStopped || m != "" {
		t.Fatalf("follow = %+v %q %v", inst, m, err)
	}
	want := []string{"Starting installer, one moment...", "installing packages 1/3 (pkg1)", "installing packages 2/3 (pkg2)",
		"installing packages 3/3 (pkg3)", "Running post-installation scripts"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("status lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestFollowFailureOnConsole(t *testing.T) {
	c := &scriptedCloud{steps: []scriptStep{
		{"Starting installer\r\n", cloud.InstanceRunning},
		{"Starting installer\r\nfetching ks\r\nkickstart file not found: http://x/ks.cfg\r\n", cloud.InstanceRunning},
	}}
	_, _, _, err := followCase(t, c, Spec{}, false, cloud.InstanceStopped)
	var ie *InstallError
	if !errors.As(err, &ie) || ie.Reason != "kickstart file not found: http://x/ks.cfg" || len(ie.Last) != 3 || ie.Instance != "i-1" {
		t.Fatalf("err %v (%+v)", err, ie)
	}
}

func TestFollowMarker(t *testing.T) {
	c := &scriptedCloud{steps: []scriptStep{
		{"Starting installer\r\n", cloud.InstanceRunning},
		{"Starting installer\r\nInstallation complete\r\n", cloud.InstanceRunning},
		{"SeaBIOS\r\nFedora Linux 40\r\n\r\nvm1 login: ", cloud.InstanceRunning}, // the installed system's boot
	}}
	_, m, _, err := followCase(t, c, Spec{}, true, cloud.InstanceTerminated)
	if err != nil || m != "login: " {
		t.Fatalf("marker %q, err %v", m, err)
	}
	// Without stopAtMarker the prompt does not end it: the stop does.
	c = &scriptedCloud{steps: []scriptStep{{"vm1 login: ", cloud.InstanceRunning}, {"vm1 login: ", cloud.InstanceRunning}, {"vm1 login: ", cloud.InstanceStopped}}}
	inst, m, _, err := followCase(t, c, Spec{}, false, cloud.InstanceStopped)
	if err != nil || m != "" || inst.State != cloud.InstanceStopped {
		t.Fatalf("follow without marker: %+v %q %v", inst, m, err)
	}
}

func TestFollowInactivityWatchdog(t *testing.T) {
	c := &scriptedCloud{steps: []scriptStep{{"Starting installer\r\nInstalling bash (1/9)\r\n", cloud.InstanceRunning}}}
	start := time.Now()
	_, _, _, err := followCase(t, c, Spec{Inactivity: Duration{50 * time.Millisecond}}, false, cloud.InstanceStopped)
	var ie *InstallError
	if !errors.As(err, &ie) || !strings.Contains(ie.Reason, "no console output for 50ms (inactivity watchdog)") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("watchdog fired after %s", d)
	}
	if len(ie.Last) != 2 || ie.Last[1] != "Installing bash (1/9)" {
		t.Fatalf("last lines %q", ie.Last)
	}
}

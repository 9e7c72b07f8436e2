package ec2

import (
	"testing"
	"time"
)

// TestPauseSchedule: 1 s doubling to a 15 s cap, and jitter within ±20 %.
func TestPauseSchedule(t *testing.T) {
	w := Waiter{Jitter: -1}.withDefaults(time.Minute)
	want := []time.Duration{1, 2, 4, 8, 15, 15, 15}
	for i, d := range want {
		if got := w.pause(i); got != d*time.Second {
			t.Errorf("pause %d = %s, want %s", i, got, d*time.Second)
		}
	}
	j := Waiter{}.withDefaults(time.Minute)
	lo, hi := time.Hour, time.Duration(0)
	for i := 0; i < 1000; i++ {
		d := j.pause(2)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 3200*time.Millisecond || hi > 4800*time.Millisecond || hi-lo < 800*time.Millisecond {
		t.Errorf("jittered 4 s pauses span %s–%s: want within ±20 %% and actually spread", lo, hi)
	}
}

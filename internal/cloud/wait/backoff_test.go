package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPauseSchedule: 1 s doubling to a 15 s cap, and jitter within ±20 %.
func TestPauseSchedule(t *testing.T) {
	w := Waiter{Jitter: -1}.withDefaults(time.Minute).backoff()
	want := []time.Duration{1, 2, 4, 8, 15, 15, 15}
	for i, d := range want {
		if got := w.Pause(i); got != d*time.Second {
			t.Errorf("pause %d = %s, want %s", i, got, d*time.Second)
		}
	}
	j := Waiter{}.withDefaults(time.Minute).backoff()
	lo, hi := time.Hour, time.Duration(0)
	for i := 0; i < 1000; i++ {
		d := j.Pause(2)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 3200*time.Millisecond || hi > 4800*time.Millisecond || hi-lo < 800*time.Millisecond {
		t.Errorf("jittered 4 s pauses span %s–%s: want within ±20 %% and actually spread", lo, hi)
	}
	// Next walks the schedule; Reset starts it again.
	b := Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Jitter: -1}
	var got []time.Duration
	for range 4 {
		got = append(got, b.Next())
	}
	b.Reset()
	got = append(got, b.Next())
	if want := []time.Duration{1e6, 2e6, 4e6, 4e6, 1e6}; !equal(got, want) {
		t.Errorf("Next, Reset: %v, want %v", got, want)
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRetry: retried while retry says so and within the bound, the last
// error returned as op gave it; a cancelled context ends it.
func TestRetry(t *testing.T) {
	errBusy, errBad := errors.New("busy"), errors.New("bad")
	b := Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond}
	isBusy := func(err error) bool { return errors.Is(err, errBusy) }
	n := 0
	err := Retry(context.Background(), b, time.Second, isBusy, func(context.Context) error {
		if n++; n < 3 {
			return errBusy
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("busy twice then done: %v after %d calls", err, n)
	}
	n = 0
	err = Retry(context.Background(), b, time.Second, isBusy, func(context.Context) error { n++; return errBad })
	if err != errBad || n != 1 {
		t.Errorf("an error not retried: %v after %d calls", err, n)
	}
	n = 0
	start := time.Now()
	err = Retry(context.Background(), b, 50*time.Millisecond, isBusy, func(context.Context) error { n++; return errBusy })
	if err != errBusy || n < 5 || time.Since(start) > 50*time.Millisecond+20*time.Millisecond {
		t.Errorf("always busy: %v after %d calls in %s; want busy after about 50 ms", err, n, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n = 0
	err = Retry(ctx, Backoff{Initial: time.Hour}, 2*time.Hour, isBusy, func(context.Context) error { n++; return errBusy })
	if err != errBusy || n != 1 {
		t.Errorf("cancelled: %v after %d calls", err, n)
	}
}

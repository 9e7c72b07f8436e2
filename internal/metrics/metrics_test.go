package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
)

// scrape reads the endpoint over HTTP and parses it with Prometheus' own
// text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the sample of family name whose labels include want
// (counter, gauge or histogram count); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestScrapeMoves(t *testing.T) {
	var mu sync.Mutex
	t0 := time.Now()
	installs := []hookproto.InstanceStatus{}
	d := New(func() []hookproto.InstanceStatus {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookproto.InstanceStatus(nil), installs...)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.ServeListener(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := ln.Addr().String()

	// Before any hook or install every family is there, every series
	// with a known label value at 0 (a dashboard or an alert on rate()
	// sees them from the daemon's start).
	f := scrape(t, addr)
	zero := []struct {
		name   string
		labels map[string]string
	}{
		{"nchookd_installs", map[string]string{"phase": "installing"}},
		{"nchookd_installs", map[string]string{"phase": "failed"}},
		{"nchookd_rewrite_seconds", nil},
		{"nchookd_install_duration_seconds", nil},
		{"nchookd_config_reloads_total", map[string]string{"outcome": "applied"}},
		{"nchookd_config_reloads_total", map[string]string{"outcome": "refused"}},
		{"nchookd_libvirt_reconnects_total", nil},
		{"nchookd_state_write_errors_total", nil},
		{"nchookd_watchdog_firings_total", nil},
	}
	for _, e := range Events {
		for _, o := range Outcomes {
			zero = append(zero, struct {
				name   string
				labels map[string]string
			}{"nchookd_hooks_total", map[string]string{"event": e, "outcome": o}})
		}
	}
	for _, r := range Reasons {
		zero = append(zero, struct {
			name   string
			labels map[string]string
		}{"nchookd_install_failures_total", map[string]string{"reason": r}})
	}
	for _, c := range zero {
		if v := value(f, c.name, c.labels); v != 0 {
			t.Errorf("before any hook or install: %s%v = %v, want 0", c.name, c.labels, v)
		}
	}
	for _, gone := range []string{"nchookd_install_failures", "nchookd_watchdog_firings"} {
		if f[gone] != nil {
			t.Errorf("%s is served: failures and firings are counters (_total)", gone)
		}
	}

	// A launch: the pre-boot hook rewrites, the install runs.
	d.Hook("euca-nc-pre-boot", &hookproto.Response{OK: true, Outcome: &preboot.Outcome{Instance: "i-1", Changed: true}}, 3*time.Millisecond)
	d.Hook("euca-nc-pre-boot", &hookproto.Response{Refuse: true, Error: "instance i-2: bad user-data"}, time.Millisecond)
	d.Hook("euca-nc-pre-clean", &hookproto.Response{OK: true, Outcome: &preboot.Outcome{Instance: "i-0"}}, time.Millisecond)
	mu.Lock()
	installs = append(installs,
		hookproto.InstanceStatus{Outcome: preboot.Outcome{Instance: "i-1"}, Phase: "installing", StartedAt: t0, UpdatedAt: t0},
		hookproto.InstanceStatus{Outcome: preboot.Outcome{Instance: "i-3"}, Phase: "installing", StartedAt: t0, UpdatedAt: t0})
	mu.Unlock()
	d.ConfigReload(true)
	d.ConfigReload(false)
	d.LibvirtReconnect()
	d.StateWriteError()
	d.StateWriteError()
	f = scrape(t, addr)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nchookd_hooks_total", map[string]string{"event": "euca-nc-pre-boot", "outcome": "rewritten"}, 1},
		{"nchookd_hooks_total", map[string]string{"event": "euca-nc-pre-boot", "outcome": "refused"}, 1},
		{"nchookd_hooks_total", map[string]string{"event": "euca-nc-pre-clean", "outcome": "unchanged"}, 1},
		{"nchookd_rewrite_seconds", nil, 1},
		{"nchookd_installs", map[string]string{"phase": "installing"}, 2},
		{"nchookd_install_duration_seconds", nil, 0},
		{"nchookd_config_reloads_total", map[string]string{"outcome": "applied"}, 1},
		{"nchookd_config_reloads_total", map[string]string{"outcome": "refused"}, 1},
		{"nchookd_libvirt_reconnects_total", nil, 1},
		{"nchookd_state_write_errors_total", nil, 2},
		{"nchookd_watchdog_firings_total", nil, 0},
	} {
		if v := value(f, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}

	// One install ends in place after 10 minutes, the other is ended by
	// the inactivity watchdog after 40.
	mu.Lock()
	installs[0].Phase, installs[0].UpdatedAt = "final", t0.Add(10*time.Minute)
	installs[1].Phase, installs[1].UpdatedAt = "failed", t0.Add(40*time.Minute)
	installs[1].Reason = "no console output and no disk writes for 30m0s (last: Installing bash)"
	mu.Unlock()
	d.InstallEnded("final", "installer finished; booted from disk", 10*time.Minute)
	d.InstallEnded("failed", installs[1].Reason, 40*time.Minute)
	f = scrape(t, addr)
	if v := value(f, "nchookd_installs", map[string]string{"phase": "installing"}); v != 0 {
		t.Errorf("installs{installing} = %v after both ended", v)
	}
	if v := value(f, "nchookd_installs", map[string]string{"phase": "final"}); v != 1 {
		t.Errorf("installs{final} = %v", v)
	}
	if v := value(f, "nchookd_install_failures_total", map[string]string{"reason": "inactivity"}); v != 1 {
		t.Errorf("install_failures_total{inactivity} = %v", v)
	}
	if v := value(f, "nchookd_watchdog_firings_total", nil); v != 1 {
		t.Errorf("watchdog_firings_total = %v", v)
	}
	h := f["nchookd_install_duration_seconds"].Metric[0].Histogram
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 3000 {
		t.Errorf("install duration: count %d sum %v, want 2 and 3000 s", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.Bucket {
		want := uint64(0)
		if b.GetUpperBound() >= 600 {
			want = 1
		}
		if b.GetUpperBound() >= 2400 {
			want = 2
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}

	// The records are cleaned (pre-clean) and gone: the gauge follows
	// them, the counters never go down.
	mu.Lock()
	installs = nil
	mu.Unlock()
	f = scrape(t, addr)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nchookd_installs", map[string]string{"phase": "failed"}, 0},
		{"nchookd_install_failures_total", map[string]string{"reason": "inactivity"}, 1},
		{"nchookd_watchdog_firings_total", nil, 1},
		{"nchookd_install_duration_seconds", nil, 2},
	} {
		if v := value(f, c.name, c.labels); v != c.want {
			t.Errorf("records gone: %s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
}

// A peer on the socket chooses the event it sends: one the daemon does not
// answer is counted as "other", never as a label of its own.
func TestUnknownEventIsOther(t *testing.T) {
	d := New(nil)
	for i := 0; i < 100; i++ {
		d.Hook(fmt.Sprintf("made-up-%d", i), &hookproto.Response{OK: true}, 0)
	}
	d.Hook("euca-nc-pre-hyp-check\n", &hookproto.Response{OK: true}, 0)
	fams, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "nchookd_hooks_total" {
			continue
		}
		if n, want := len(f.Metric), len(Events)*len(Outcomes); n != want {
			t.Errorf("nchookd_hooks_total has %d series, want %d (Events × Outcomes)", n, want)
		}
		for _, m := range f.Metric {
			ev := m.Label[0].GetValue()
			if ev == "other" && m.Label[1].GetValue() == "ok" && m.Counter.GetValue() != 101 {
				t.Errorf("hooks_total{event=other,outcome=ok} = %v, want 101", m.Counter.GetValue())
			}
		}
	}
}

func TestReasonClass(t *testing.T) {
	for in, want := range map[string]string{
		"no console output and no disk writes for 30m0s (last: x)": "inactivity",
		"installer stopped: crashed":                               "installer_crashed",
		"installer stopped: something new":                         "installer_other",
		"boot installed system: virDomainCreate failed":            "final_boot",
		"installer reported: Kickstart failed":                     "installer_reported",
		"":                                                         "other",
	} {
		if got := ReasonClass(in); got != want {
			t.Errorf("ReasonClass(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNilDaemonCountsNothing(t *testing.T) {
	var d *Daemon
	d.Hook("euca-nc-pre-boot", nil, 0)
	d.ConfigReload(true)
	d.LibvirtReconnect()
	d.InstallEnded("failed", "x", time.Second)
}

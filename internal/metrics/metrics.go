// Package metrics holds nchookd's Prometheus metrics and serves them.
// Counters are counted where things happen (hooks, config reloads,
// libvirt reconnects); the install figures are read from the daemon's
// install records at every scrape, so they survive restarts like the
// records do.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kscloud/kscloud/internal/hookproto"
)

// Daemon is nchookd's set of metrics. A nil *Daemon counts nothing.
type Daemon struct {
	reg        *prometheus.Registry
	hooks      *prometheus.CounterVec
	rewrite    prometheus.Histogram
	reloads    *prometheus.CounterVec
	reconnects prometheus.Counter
	stateErrs  prometheus.Counter
}

// New registers the metrics; installs lists the install records at scrape
// time (nil: no install metrics).
func New(installs func() []hookproto.InstanceStatus) *Daemon {
	d := &Daemon{
		reg: prometheus.NewRegistry(),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nchookd_hooks_total",
			Help: "Hook requests answered, by event and outcome (rewritten, unchanged, refused, error, ok).",
		}, []string{"event", "outcome"}),
		rewrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nchookd_rewrite_seconds",
			Help:    "Time to answer a pre-boot hook that rewrote the domain.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nchookd_config_reloads_total",
			Help: "Configuration reloads, by result (applied, refused).",
		}, []string{"result"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nchookd_libvirt_reconnects_total",
			Help: "Connections to libvirt after the first (libvirtd restarted or unreachable).",
		}),
		stateErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nchookd_state_write_errors_total",
			Help: "Install records that could not be written to (or removed from) the state directory; each is logged with its instance.",
		}),
	}
	d.reg.MustRegister(d.hooks, d.rewrite, d.reloads, d.reconnects, d.stateErrs,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if installs != nil {
		d.reg.MustRegister(&installCollector{list: installs})
	}
	return d
}

// Hook counts one answered hook request.
func (d *Daemon) Hook(event string, resp *hookproto.Response, took time.Duration) {
	if d == nil {
		return
	}
	outcome := "ok"
	switch {
	case resp == nil || (!resp.OK && !resp.Refuse):
		outcome = "error"
	case resp.Refuse:
		outcome = "refused"
	case resp.Outcome != nil && resp.Outcome.Changed:
		outcome = "rewritten"
		d.rewrite.Observe(took.Seconds())
	case resp.Outcome != nil:
		outcome = "unchanged"
	}
	d.hooks.WithLabelValues(event, outcome).Inc()
}

// ConfigReload counts a reload: applied or refused.
func (d *Daemon) ConfigReload(applied bool) {
	if d == nil {
		return
	}
	r := "applied"
	if !applied {
		r = "refused"
	}
	d.reloads.WithLabelValues(r).Inc()
}

// LibvirtReconnect counts a connection to libvirt after the first.
func (d *Daemon) LibvirtReconnect() {
	if d != nil {
		d.reconnects.Inc()
	}
}

// StateWriteError counts an install record that could not be written to
// or removed from the state directory.
func (d *Daemon) StateWriteError() {
	if d != nil {
		d.stateErrs.Inc()
	}
}

// Handler serves the metrics in the Prometheus text format.
func (d *Daemon) Handler() http.Handler {
	return promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{})
}

// Serve serves /metrics on addr until ctx ends.
func (d *Daemon) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	return d.ServeListener(ctx, ln)
}

// ServeListener serves /metrics on ln until ctx ends.
func (d *Daemon) ServeListener(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics listener %s: %w", ln.Addr(), err)
	}
	return nil
}

var (
	descInstalls = prometheus.NewDesc("nchookd_installs",
		"Installs nchookd holds a record of, by phase (installing, finishing, final, finished, failed, cleaned).", []string{"phase"}, nil)
	descDuration = prometheus.NewDesc("nchookd_install_duration_seconds",
		"Duration of the recorded installs that ended (final, finished, failed): rewrite to end.", nil, nil)
	descFailures = prometheus.NewDesc("nchookd_install_failures",
		"Recorded failed installs by reason: inactivity (the watchdog fired), installer_<how it stopped>, final_boot, other.", []string{"reason"}, nil)
	descWatchdog = prometheus.NewDesc("nchookd_watchdog_firings",
		"Recorded installs the inactivity watchdog ended (no console output and no disk writes).", nil, nil)
	durationBuckets = []float64{60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200}
	phases          = []string{"installing", "finishing", "final", "finished", "failed", "cleaned"}
)

type installCollector struct {
	list func() []hookproto.InstanceStatus
}

func (c *installCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descInstalls
	ch <- descDuration
	ch <- descFailures
	ch <- descWatchdog
}

func (c *installCollector) Collect(ch chan<- prometheus.Metric) {
	byPhase := map[string]float64{}
	for _, p := range phases {
		byPhase[p] = 0
	}
	failures := map[string]float64{}
	buckets := map[float64]uint64{}
	var n uint64
	var sum, watchdog float64
	for _, st := range c.list() {
		byPhase[st.Phase]++
		switch st.Phase {
		case "final", "finished", "failed":
			d := st.UpdatedAt.Sub(st.StartedAt).Seconds()
			if d < 0 {
				d = 0
			}
			n++
			sum += d
			for _, b := range durationBuckets {
				if d <= b {
					buckets[b]++
				}
			}
		}
		if st.Phase == "failed" {
			r := ReasonClass(st.Reason)
			failures[r]++
			if r == "inactivity" {
				watchdog++
			}
		}
	}
	for p, v := range byPhase {
		ch <- prometheus.MustNewConstMetric(descInstalls, prometheus.GaugeValue, v, p)
	}
	ch <- prometheus.MustNewConstHistogram(descDuration, n, sum, buckets)
	for r, v := range failures {
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, v, r)
	}
	ch <- prometheus.MustNewConstMetric(descWatchdog, prometheus.GaugeValue, watchdog)
}

// ReasonClass turns a failure reason (free text) into a label value of
// bounded cardinality.
func ReasonClass(reason string) string {
	switch {
	case strings.HasPrefix(reason, "no console output"):
		return "inactivity"
	case strings.HasPrefix(reason, "installer stopped: "):
		how := strings.TrimPrefix(reason, "installer stopped: ")
		switch how {
		case "crashed", "destroyed", "failed", "migrated", "saved", "shutdown", "from snapshot":
			return "installer_" + strings.ReplaceAll(how, " ", "_")
		}
		return "installer_other"
	case strings.HasPrefix(reason, "boot installed system"):
		return "final_boot"
	}
	return "other"
}

// Package metrics holds nchookd's Prometheus metrics and serves them.
// Counters are counted where things happen (hooks, config reloads,
// libvirt reconnects, installs that end) and only ever go up; every
// series with a known label value is there at 0 from the start, so a
// scrape before the first install shows every family. Label values come
// from fixed lists: anything else (an event a peer made up) is "other".
// Only the number of installs by phase is read from the daemon's install
// records at every scrape (a gauge: records come and go).
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

	"github.com/kscloud/kscloud/internal/euca"
	"github.com/kscloud/kscloud/internal/hookproto"
)

// Label values. A value outside these lists is counted as "other".
var (
	// Events of nchookd_hooks_total: the hooks the daemon answers.
	Events = []string{euca.EventPreBoot, euca.EventPreClean, hookproto.OpOneDeploy, "other"}
	// Outcomes of nchookd_hooks_total.
	Outcomes = []string{"rewritten", "unchanged", "refused", "error", "ok"}
	// ReloadOutcomes of nchookd_config_reloads_total.
	ReloadOutcomes = []string{"applied", "refused"}
	// Reasons of nchookd_install_failures_total (ReasonClass).
	Reasons = []string{"inactivity", "installer_crashed", "installer_destroyed", "installer_failed",
		"installer_migrated", "installer_saved", "installer_shutdown", "installer_from_snapshot",
		"installer_other", "installer_reported", "final_boot", "other"}
)

func known(v string, list []string) string {
	for _, k := range list {
		if v == k {
			return v
		}
	}
	return "other"
}

// Daemon is nchookd's set of metrics. A nil *Daemon counts nothing.
type Daemon struct {
	reg        *prometheus.Registry
	hooks      *prometheus.CounterVec
	rewrite    prometheus.Histogram
	reloads    *prometheus.CounterVec
	reconnects prometheus.Counter
	stateErrs  prometheus.Counter
	duration   prometheus.Histogram
	failures   *prometheus.CounterVec
	watchdog   prometheus.Counter
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
			Help: "Configuration reloads (file change or SIGHUP), by outcome (applied; refused: the file does not validate, the previous configuration stays).",
		}, []string{"outcome"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nchookd_libvirt_reconnects_total",
			Help: "Connections to libvirt after the first (libvirtd restarted or unreachable).",
		}),
		stateErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nchookd_state_write_errors_total",
			Help: "Install records that could not be written to (or removed from) the state directory; each is logged with its instance.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nchookd_install_duration_seconds",
			Help:    "Duration of the installs that ended (final, finished, failed) since the daemon started: rewrite to end.",
			Buckets: []float64{60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200},
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nchookd_install_failures_total",
			Help: "Installs that failed since the daemon started, by reason: inactivity (the watchdog fired), installer_<how it stopped>, installer_reported, final_boot, other.",
		}, []string{"reason"}),
		watchdog: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nchookd_watchdog_firings_total",
			Help: "Installs the inactivity watchdog ended (no console output and no disk writes for state.inactivity_timeout) since the daemon started.",
		}),
	}
	for _, e := range Events {
		for _, o := range Outcomes {
			d.hooks.WithLabelValues(e, o)
		}
	}
	for _, o := range ReloadOutcomes {
		d.reloads.WithLabelValues(o)
	}
	for _, r := range Reasons {
		d.failures.WithLabelValues(r)
	}
	d.reg.MustRegister(d.hooks, d.rewrite, d.reloads, d.reconnects, d.stateErrs, d.duration, d.failures, d.watchdog,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if installs != nil {
		d.reg.MustRegister(&installCollector{list: installs})
	}
	return d
}

// Hook counts one answered hook request; an event not in Events is
// counted as "other".
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
	d.hooks.WithLabelValues(known(event, Events), outcome).Inc()
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

// InstallEnded counts an install that reached phase final, finished or
// failed (reason: the record's, for a failure), took after its rewrite.
func (d *Daemon) InstallEnded(phase, reason string, took time.Duration) {
	if d == nil {
		return
	}
	if took < 0 {
		took = 0
	}
	d.duration.Observe(took.Seconds())
	if phase == "failed" {
		r := ReasonClass(reason)
		d.failures.WithLabelValues(r).Inc()
		if r == "inactivity" {
			d.watchdog.Inc()
		}
	}
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
	phases = []string{"installing", "finishing", "final", "finished", "failed", "cleaned"}
)

// installCollector reads the number of installs by phase from the records
// (a gauge; what only goes up is counted by InstallEnded).
type installCollector struct {
	list func() []hookproto.InstanceStatus
}

func (c *installCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descInstalls
}

func (c *installCollector) Collect(ch chan<- prometheus.Metric) {
	byPhase := map[string]float64{}
	for _, p := range phases {
		byPhase[p] = 0
	}
	for _, st := range c.list() {
		byPhase[known(st.Phase, phases)]++
	}
	for p, v := range byPhase {
		ch <- prometheus.MustNewConstMetric(descInstalls, prometheus.GaugeValue, v, p)
	}
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
	case strings.HasPrefix(reason, "installer reported: "):
		return "installer_reported"
	case strings.HasPrefix(reason, "boot installed system"):
		return "final_boot"
	}
	return "other"
}

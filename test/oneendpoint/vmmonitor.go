package oneendpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// VM monitor probes, as oned's KVM information driver runs them: every
// MONITOR_VM period each script of remotes/im/kvm-probes.d/vm/monitor/
// runs on the host and prints, per VM,
//
//	VM = [ ID="<id>", DEPLOY_ID="<deploy id>", MONITOR="<base64 of KEY=\"VALUE\" lines>"]
//
// (src/im_mad/remotes/lib/domain.rb, BaseDomains#to_monitor and
// BaseDomain#to_monitor, 6.0–7.0). monitord merges each VM's MONITOR
// template into that VM's previous monitoring record
// (src/monitor/src/monitor/HostMonitorManager.cc, monitor_vm), and
// one.vm.info returns the record as <MONITORING> with the keys as
// elements beside ID and TIMESTAMP. Options.MonitorProbes are such
// scripts; the endpoint runs them every Options.Monitor (a failing or
// slow probe only loses that round, as in OpenNebula).

// probeTimeout bounds one probe run.
const probeTimeout = 5 * time.Second

var (
	probeVM   = regexp.MustCompile(`^\s*VM\s*=\s*\[(.*)\]\s*$`)
	probeAttr = regexp.MustCompile(`\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"]*)"\s*,?`)
	monAttr   = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"([^"]*)"|(\S*))\s*$`)
)

// ParseProbeOutput reads a VM monitor probe's output: per VM ID, its
// DEPLOY_ID and the decoded MONITOR attributes. Lines that are not VM
// vectors, or whose MONITOR is not base64 of KEY=VALUE lines, are errors.
func ParseProbeOutput(out []byte) (map[int]ProbedVM, error) {
	vms := map[int]ProbedVM{}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := probeVM.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("probe line %q: not VM = [ … ]", line)
		}
		attrs := map[string]string{}
		for _, a := range probeAttr.FindAllStringSubmatch(m[1], -1) {
			attrs[a[1]] = a[2]
		}
		id, err := strconv.Atoi(attrs["ID"])
		if err != nil {
			return nil, fmt.Errorf("probe line %q: bad ID", line)
		}
		raw, err := base64.StdEncoding.DecodeString(attrs["MONITOR"])
		if err != nil {
			return nil, fmt.Errorf("probe line %q: MONITOR is not base64: %v", line, err)
		}
		p := ProbedVM{DeployID: attrs["DEPLOY_ID"], Monitor: map[string]string{}}
		for _, kv := range strings.Split(string(raw), "\n") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			a := monAttr.FindStringSubmatch(kv)
			if a == nil {
				return nil, fmt.Errorf("VM %d: MONITOR line %q is not KEY=VALUE", id, kv)
			}
			p.Monitor[a[1]] = a[2] + a[3]
		}
		vms[id] = p
	}
	return vms, nil
}

// ProbedVM is one VM of a probe's output.
type ProbedVM struct {
	DeployID string
	Monitor  map[string]string
}

// monitorProbes runs Options.MonitorProbes every Options.Monitor until ctx ends.
func (s *Server) monitorProbes(ctx context.Context) {
	t := time.NewTicker(s.opts.Monitor)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range s.opts.MonitorProbes {
			s.runProbe(ctx, p)
		}
	}
}

func (s *Server) runProbe(ctx context.Context, probe string) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, probe)
	cmd.Env = s.opts.MonitorEnv
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return
	}
	vms, err := ParseProbeOutput(out.Bytes())
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range vms {
		v, ok := s.vms[id]
		// monitord files the data under ID (monitor_vm(oid, …)); an
		// ID not running here is ignored (a probe sees only domains
		// that exist: RUNNING).
		if !ok || v.state != StActive || v.lcm != LcmRunning {
			continue
		}
		if v.monitoring == nil {
			v.monitoring = map[string]string{}
		}
		for k, val := range p.Monitor {
			v.monitoring[k] = val
		}
		v.monTime = now()
	}
}

// monitoringXML is the VM's <MONITORING> as one.vm.info returns it.
func (v *vm) monitoringXML() string {
	if len(v.monitoring) == 0 {
		return "<MONITORING/>"
	}
	keys := make([]string, 0, len(v.monitoring))
	for k := range v.monitoring {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "<MONITORING><ID>%d</ID><TIMESTAMP>%d</TIMESTAMP>", v.id, v.monTime)
	for _, k := range keys {
		if k == "ID" || k == "TIMESTAMP" {
			continue
		}
		fmt.Fprintf(&b, "<%s>%s</%s>", k, cdata(v.monitoring[k]), k)
	}
	b.WriteString("</MONITORING>")
	return b.String()
}

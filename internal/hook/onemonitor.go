package hook

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
)

// OpenNebula VM monitor probe (nchookd-one-monitor, run from
// remotes/im/kvm-probes.d/vm/monitor/ on every host each MONITOR_VM
// period). Its output is the one the stock KVM probe prints
// (src/im_mad/remotes/lib/domain.rb, BaseDomains#to_monitor, 6.0–7.0):
//
//	VM = [ ID="<id>", DEPLOY_ID="<one-id>", MONITOR="<base64 of KEY=\"VALUE\" lines>"]
//
// one line per VM. DEPLOY_ID is the domain's UUID, as the stock probe
// reports it (src/im_mad/remotes/lib/kvm.rb, Domain#info: the UUID of
// virsh dominfo), or the domain name when nchookd has no UUID for it;
// monitord files the data under ID. monitord merges each VM's MONITOR template into the
// VM's last monitoring record (src/monitor/src/monitor/HostMonitorManager.cc,
// monitor_vm: "Get previous monitor info to merge with new data"), so the
// KSCLOUD_* keys sit beside CPU and MEMORY in the VM's MONITORING, which
// one.vm.info returns. The keys:
//
//	KSCLOUD_NCHOOKD   nchookd's version: the host runs nchookd and follows this VM's install
//	KSCLOUD_PHASE     installing, finishing, final, finished, failed
//	KSCLOUD_PROGRESS  the installer's last progress line (console)
//	KSCLOUD_REASON    why it failed or how it ended
//
// Only VMs nchookd follows (domains one-<id> in its store) are reported;
// the probe prints nothing and exits 0 when the daemon does not answer in
// time: it never fails the host's monitoring.

// MonitorKeys are the MONITORING attributes the probe sets.
const (
	MonNchookd  = "KSCLOUD_NCHOOKD"
	MonPhase    = "KSCLOUD_PHASE"
	MonProgress = "KSCLOUD_PROGRESS"
	MonReason   = "KSCLOUD_REASON"
)

// monValueMax bounds a value (a console line is the guest's: hostile).
const monValueMax = 200

// OneMonitor writes the probe's lines for the VMs nchookd follows to w.
// It asks the daemon (hook.socket, NCHOOKD_SOCKET overrides) within
// timeout; any failure is one line on stderr and no output.
func OneMonitor(w, stderr io.Writer, getenv func(string) string, timeout time.Duration) {
	socket := config.DefaultSocket
	cfgPath, explicit := getenv(EnvConfig), true
	if cfgPath == "" {
		cfgPath, explicit = config.DefaultPath, false
	}
	if cfg, err := config.Load(cfgPath, explicit); err == nil {
		socket = cfg.Hook.Socket
	}
	if v := getenv(EnvSocket); v != "" {
		socket = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := hookproto.Call(ctx, socket, hookproto.Request{Op: hookproto.OpStatus})
	if err == nil && !resp.OK {
		err = fmt.Errorf("%s: %s", socket, resp.Error)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nchookd-one-monitor: %v\n", err)
		return
	}
	io.WriteString(w, MonitorLines(resp))
}

// MonitorLines renders a status answer as the probe's output.
func MonitorLines(resp *hookproto.Response) string {
	version := "unknown"
	if resp.Daemon != nil && resp.Daemon.Version != "" {
		version = resp.Daemon.Version
	}
	var b strings.Builder
	for _, st := range resp.Instances {
		id, ok := oneID(st.Instance)
		if !ok || st.Phase == "cleaned" {
			continue
		}
		var m strings.Builder
		kv := func(k, v string) {
			if v = monValue(v); v != "" {
				fmt.Fprintf(&m, "%s=\"%s\"\n", k, v)
			}
		}
		kv(MonNchookd, version)
		kv(MonPhase, st.Phase)
		kv(MonProgress, st.Progress)
		kv(MonReason, st.Reason)
		deployID := st.Instance
		if u := monValue(st.UUID); u != "" {
			deployID = u
		}
		fmt.Fprintf(&b, "VM = [ ID=\"%d\", DEPLOY_ID=\"%s\", MONITOR=\"%s\"]\n",
			id, deployID, base64.StdEncoding.EncodeToString([]byte(m.String())))
	}
	return b.String()
}

// oneID is the VM ID of an OpenNebula domain name one-<id>.
func oneID(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "one-")
	if !ok || s == "" || len(s) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// monValue makes v safe inside an OpenNebula template's double quotes:
// printable ASCII only (control characters, quotes and backslashes
// become spaces), trimmed, at most monValueMax bytes.
func monValue(v string) string {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v) && len(out) < monValueMax; i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			c = ' '
		}
		out = append(out, c)
	}
	return strings.TrimSpace(string(out))
}

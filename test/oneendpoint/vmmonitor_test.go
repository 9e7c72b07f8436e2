package oneendpoint_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// The stock KVM probe's line (domain.rb BaseDomains#to_monitor) and
// nchookd's parse the same; bad lines are errors.
func TestParseProbeOutput(t *testing.T) {
	mon := base64.StdEncoding.EncodeToString([]byte("CPU=\"12.5\"\nMEMORY=\"1024\"\nKSCLOUD_PHASE=\"final\"\n"))
	out := "VM = [ ID=\"3\", DEPLOY_ID=\"5e1c…\", MONITOR=\"" + mon + "\"]\nVM = [ID=\"4\",DEPLOY_ID=\"one-4\",MONITOR=\"\"]\n\n"
	vms, err := oneendpoint.ParseProbeOutput([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 2 || vms[3].DeployID != "5e1c…" || vms[3].Monitor["CPU"] != "12.5" || vms[3].Monitor["KSCLOUD_PHASE"] != "final" || len(vms[4].Monitor) != 0 {
		t.Fatalf("parsed %+v", vms)
	}
	for _, bad := range []string{
		"HYPERVISOR=kvm\n",
		"VM = [ ID=\"x\", MONITOR=\"\" ]\n",
		"VM = [ ID=\"1\", MONITOR=\"%%%\" ]\n",
		"VM = [ ID=\"1\", MONITOR=\"" + base64.StdEncoding.EncodeToString([]byte("not a pair\n")) + "\" ]\n",
	} {
		if _, err := oneendpoint.ParseProbeOutput([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// statusDaemon answers nchookd's status request with what set gave last.
type statusDaemon struct {
	mu   sync.Mutex
	resp hookproto.Response
}

func (d *statusDaemon) set(phase, progress string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resp = hookproto.Response{OK: true, Daemon: &hookproto.DaemonStatus{Version: "v-test"}, Instances: []hookproto.InstanceStatus{{Phase: phase, Progress: progress}}}
	d.resp.Instances[0].Instance = "one-0"
}

func (d *statusDaemon) serve(t *testing.T) string {
	sock := filepath.Join(t.TempDir(), "nchookd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadBytes('\n')
			d.mu.Lock()
			b, _ := json.Marshal(d.resp)
			d.mu.Unlock()
			c.Write(append(b, '\n'))
			c.Close()
		}
	}()
	return sock
}

// TestMonitorProbeMonitoring: the endpoint runs nchookd's installed VM
// monitor probe (the script of remotes/im/kvm-probes.d/vm/monitor/ and
// the static nchookd-one-monitor it execs) as oned's monitor does, and
// one.vm.info — read by Python's xmlrpc.client — carries its
// KSCLOUD_* attributes in MONITORING as they change. (The daemon here
// answers status requests only: the probe's side is what is tested.)
func TestMonitorProbeMonitoring(t *testing.T) {
	if _, err := os.Stat(python3); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI (scripts/deps.sh installs python3)", python3)
		}
		t.Skipf("needs %s (Debian's python3; scripts/deps.sh installs it)", python3)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nchookd-one-monitor")
	build := exec.Command("go", "build", "-o", bin, "../../hooks/opennebula/monitor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, out)
	}
	src, err := os.ReadFile("../../hooks/opennebula/nchookd-probe")
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, "nchookd")
	os.WriteFile(probe, []byte(strings.Replace(string(src), "PROBE=/usr/lib/nchookd/nchookd-one-monitor", "PROBE="+bin, 1)), 0o755)

	d := &statusDaemon{}
	d.set("installing", `Installing glibc (3/10) "x"`)
	sock := d.serve(t)
	srv := oneendpoint.Start(t, oneendpoint.Options{Monitor: 100 * time.Millisecond, MonitorProbes: []string{probe},
		MonitorEnv: []string{"NCHOOKD_SOCKET=" + sock, "NCHOOKD_CONFIG=" + filepath.Join(dir, "none.toml")}})
	py := exec.Command(python3, "-c", `
import sys, time, xmlrpc.client, xml.etree.ElementTree as ET
one = xmlrpc.client.ServerProxy(sys.argv[1])
r = one.one.vm.allocate(sys.argv[2], 'CPU=1\nMEMORY=64\nDISK=[TYPE=fs,SIZE=1]', False)
assert r[0], r
def mon(key):
    x = ET.fromstring(one.one.vm.info(sys.argv[2], r[1])[1])
    return x.findtext("MONITORING/" + key)
def wait(key, want):
    for _ in range(100):
        if mon(key) == want:
            return
        time.sleep(0.05)
    raise SystemExit("MONITORING/%s = %r, want %r" % (key, mon(key), want))
wait("KSCLOUD_PHASE", "installing")
print(mon("KSCLOUD_NCHOOKD"), "|", mon("KSCLOUD_PROGRESS"), "|", mon("ID"))
sys.stdout.flush()
sys.stdin.readline()
wait("KSCLOUD_PHASE", "final")
print(mon("KSCLOUD_PHASE"), "|", mon("KSCLOUD_PROGRESS"))
`, srv.URL(), srv.Session())
	in, _ := py.StdinPipe()
	outp, _ := py.StdoutPipe()
	py.Stderr = os.Stderr
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(outp)
	l1, _ := rd.ReadString('\n')
	if got := strings.TrimSpace(l1); got != "v-test | Installing glibc (3/10)  x | 0" {
		t.Errorf("installing: %q", got)
	}
	d.set("final", "")
	in.Write([]byte("\n"))
	l2, _ := rd.ReadString('\n')
	// monitord merges: the progress of an earlier round stays.
	if got := strings.TrimSpace(l2); got != "final | Installing glibc (3/10)  x" {
		t.Errorf("final: %q", got)
	}
	if err := py.Wait(); err != nil {
		t.Fatalf("python: %v", err)
	}
}

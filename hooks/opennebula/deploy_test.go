package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookd"
	"github.com/kscloud/kscloud/internal/testenv"
)

// hookBin is nchookd-one-deploy, built once for the package's tests.
var hookBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "one-deploy-test-")
	if err != nil {
		panic(err)
	}
	hookBin = filepath.Join(dir, "nchookd-one-deploy")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", hookBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build nchookd-one-deploy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const stubUUID = "9b2e7d14-0c3a-4f58-8e21-6a4d1c7f0e42"

// stubOriginal plays OpenNebula's deploy (one@release-6.10.0:
// src/vmm_mad/remotes/kvm/deploy): write stdin to the deployment file,
// then print the UUID; STUB_FAIL makes it fail as virsh create does.
const stubOriginal = `#!/bin/sh
DEP_FILE=$1
mkdir -p "$(dirname "$DEP_FILE")"
cat > "$DEP_FILE"
if [ -n "$STUB_FAIL" ]; then
	echo "ERROR: Could not create domain from $DEP_FILE" >&2
	exit 255
fi
echo ` + stubUUID + `
`

type node struct {
	remotes string // .../vmm/kvm
	deploy  string // our wrapper, installed as deploy
	vmDir   string
	dfile   string
	env     []string
}

// newNode lays out a host as onehost sync leaves it (remotes/vmm/kvm with
// our deploy and OpenNebula's moved to deploy.one) and a VM directory;
// hook is the path the wrapper execs (the built binary, or absent).
func newNode(t testing.TB, hook string, vmXML []byte, cfgText string) *node {
	t.Helper()
	root := t.TempDir()
	n := &node{remotes: filepath.Join(root, "remotes", "vmm", "kvm"), vmDir: filepath.Join(root, "datastores", "0", "42")}
	os.MkdirAll(n.remotes, 0o755)
	os.MkdirAll(n.vmDir, 0o755)
	src, err := os.ReadFile("deploy")
	if err != nil {
		t.Fatal(err)
	}
	script := strings.Replace(string(src), "HOOK=/usr/lib/nchookd/nchookd-one-deploy", "HOOK="+hook, 1)
	if script == string(src) {
		t.Fatal("hooks/opennebula/deploy: HOOK= line not found")
	}
	n.deploy = filepath.Join(n.remotes, "deploy")
	os.WriteFile(n.deploy, []byte(script), 0o755)
	os.WriteFile(filepath.Join(n.remotes, "deploy.one"), []byte(stubOriginal), 0o755)
	if vmXML != nil {
		os.WriteFile(filepath.Join(n.vmDir, "vm.xml"), vmXML, 0o644)
	}
	n.dfile = filepath.Join(n.vmDir, "deployment.0")
	cfg := filepath.Join(root, "nchookd.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[hook]\ninstances_root = [%q]\n", filepath.Join(root, "datastores"))+cfgText), 0o644)
	n.env = append(os.Environ(), "NCHOOKD_CONFIG="+cfg, "NCHOOKD_SOCKET="+filepath.Join(root, "absent.sock"))
	return n
}

func (n *node) config() string {
	for _, e := range n.env {
		if p, ok := strings.CutPrefix(e, "NCHOOKD_CONFIG="); ok {
			return p
		}
	}
	return ""
}

type result struct {
	code           int
	stdout, stderr string
	deployed       []byte
	took           time.Duration
	cpu            time.Duration // user+system time of the process tree
}

func (n *node) run(t testing.TB, stdin []byte, env ...string) result {
	t.Helper()
	cmd := exec.Command(n.deploy, n.dfile, "node1")
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(append([]string{}, n.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r.deployed, _ = os.ReadFile(n.dfile)
	return r
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "preboot", "testdata", "opennebula", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const catalog = `[installer.fedora-40]
kernel = "/var/lib/nchookd/installers/fedora-40/vmlinuz"
initrd = "/var/lib/nchookd/installers/fedora-40/initrd.img"
`

// The daemon is down: the wrapper rewrites itself and OpenNebula's
// script deploys the result; its output is the driver's, byte for byte.
func TestWrapperFallbackRewrites(t *testing.T) {
	n := newNode(t, hookBin, testdata(t, "vm-userdata.xml"), catalog)
	in := testdata(t, "deployment-7.0.xml")
	r := n.run(t, in)
	if r.code != 0 || r.stdout != stubUUID+"\n" || r.stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, must := range []string{"<on_reboot>destroy</on_reboot>", "fedora-40/vmlinuz", "<source path='" + n.vmDir + "/console.log' append='on'/>"} {
		if !bytes.Contains(r.deployed, []byte(must)) {
			t.Fatalf("deployed domain lacks %s:\n%s", must, r.deployed)
		}
	}
}

// serveDaemon runs nchookd's socket server with cfg on a fresh socket.
func serveDaemon(t testing.TB, cfg *config.Config) (sock string, store *hookd.Store) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := hookd.OpenStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := hookd.New(quiet, cfg, store, "test")
	sock = filepath.Join(t.TempDir(), "nchookd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.Serve(ctx, ln)
	return sock, store
}

// The daemon answers: its configuration (with the catalog) decides, not
// the wrapper's (without one, which would refuse the installer).
func TestWrapperAsksDaemon(t *testing.T) {
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{os.TempDir()}
	cfg.Installer["fedora-40"] = config.Installer{Kernel: "/daemon/vmlinuz", Initrd: "/daemon/initrd.img"}
	sock, store := serveDaemon(t, cfg)
	n := newNode(t, hookBin, testdata(t, "vm-userdata.xml"), "")
	r := n.run(t, testdata(t, "deployment-6.10.xml"), "NCHOOKD_SOCKET="+sock)
	if r.code != 0 || r.stdout != stubUUID+"\n" || r.stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if !bytes.Contains(r.deployed, []byte("<kernel>/daemon/vmlinuz</kernel>")) {
		t.Fatalf("not the daemon's rewrite:\n%s", r.deployed)
	}
	if st, ok := store.Get("one-42"); !ok || st.DomainFile != n.dfile {
		t.Fatalf("daemon did not record the install: %+v", st)
	}
}

// Never block a deploy: whatever goes wrong in nchookd's part, the VM
// deploys exactly as OpenNebula wrote it, with one line on stderr, in
// bounded time; the original's output is untouched.
func TestWrapperDeploysUnchanged(t *testing.T) {
	hung := filepath.Join(t.TempDir(), "hung.sock")
	ln, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // read nothing, answer nothing
		}
	}()
	in := testdata(t, "deployment-7.0.xml")
	for _, tc := range []struct {
		name  string
		vm    []byte
		setup func(n *node)
		env   []string
		want  string
	}{
		{"no vm.xml (5.12)", nil, nil, nil, "no vm.xml"},
		{"vm.xml not XML", []byte("<VM><ID>42"), nil, nil, "vm.xml"},
		{"vm.xml empty", []byte(""), nil, nil, "empty"},
		{"stale vm.xml", []byte("<VM><ID>7</ID></VM>"), nil, nil, "stale vm.xml"},
		{"no directives", testdata(t, "vm-none.xml"), nil, nil, "no kscloud directives"},
		{"bad user-data", []byte("<VM><ID>42</ID><TEMPLATE><CONTEXT><USER_DATA>bootparams=a\nkscloud.bogus=1</USER_DATA></CONTEXT></TEMPLATE></VM>"), nil, nil, "kscloud.bogus"},
		{"installer not in catalog", testdata(t, "vm-userdata.xml"), nil, nil, "not in the operator's catalog"},
		{"vm.xml a symlink", nil, func(n *node) {
			os.Symlink("/etc/passwd", filepath.Join(n.vmDir, "vm.xml"))
		}, nil, "symbolic link"},
		{"vm.xml a FIFO", nil, func(n *node) {
			exec.Command("mkfifo", filepath.Join(n.vmDir, "vm.xml")).Run()
		}, nil, "not a regular file"},
		{"bad config", testdata(t, "vm-userdata.xml"), func(n *node) {
			os.WriteFile(n.config(), []byte("bogus = 1\n"), 0o644)
		}, nil, "unknown key"},
		{"outside instances root", testdata(t, "vm-attrs.xml"), func(n *node) {
			os.WriteFile(n.config(), []byte("[hook]\ninstances_root = [\"/var/lib/one/datastores\"]\n"), 0o644)
		}, nil, "outside the configured instances root"},
		{"daemon hangs", testdata(t, "vm-userdata.xml"), nil, []string{"NCHOOKD_SOCKET=" + hung, "NCHOOKD_TIMEOUT=600ms"}, "no answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, hookBin, tc.vm, "")
			if tc.setup != nil {
				tc.setup(n)
			}
			r := n.run(t, in, tc.env...)
			if r.code != 0 || r.stdout != stubUUID+"\n" {
				t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			if !bytes.Equal(r.deployed, in) {
				t.Fatalf("domain changed:\n%s", r.deployed)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "nchookd: ") || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "unchanged") {
				t.Fatalf("stderr %q: want one line with %q", r.stderr, tc.want)
			}
			if r.took > 5*time.Second {
				t.Fatalf("took %v", r.took)
			}
		})
	}
}

// The original's failure is the driver's: its exit status and stderr
// pass through, and nchookd adds nothing.
func TestWrapperPassesFailureThrough(t *testing.T) {
	n := newNode(t, hookBin, testdata(t, "vm-userdata.xml"), catalog)
	r := n.run(t, testdata(t, "deployment-7.0.xml"), "STUB_FAIL=1")
	if r.code != 255 || r.stdout != "" || r.stderr != "ERROR: Could not create domain from "+n.dfile+"\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// Input over the 4 MiB limit is passed on whole, unread by nchookd.
func TestWrapperHugeInputPassedOn(t *testing.T) {
	n := newNode(t, hookBin, testdata(t, "vm-userdata.xml"), catalog)
	in := append(testdata(t, "deployment-7.0.xml"), bytes.Repeat([]byte("<!-- padding -->\n"), 5<<20/17)...)
	r := n.run(t, in)
	if r.code != 0 || r.stdout != stubUUID+"\n" || !bytes.Equal(r.deployed, in) || !strings.Contains(r.stderr, "over") {
		t.Fatalf("exit %d stdout %q stderr %q, %d of %d bytes deployed", r.code, r.stdout, r.stderr, len(r.deployed), len(in))
	}
}

// A host without nchookd (the wrapper is distributed to every host by
// onehost sync) runs OpenNebula's script directly.
func TestWrapperWithoutNchookd(t *testing.T) {
	n := newNode(t, "/nonexistent/nchookd-one-deploy", testdata(t, "vm-userdata.xml"), catalog)
	in := testdata(t, "deployment-7.0.xml")
	r := n.run(t, in)
	if r.code != 0 || r.stdout != stubUUID+"\n" || r.stderr != "" || !bytes.Equal(r.deployed, in) {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// Part 7 of issue 13: the wrapper's added latency per deploy, beside
// OpenNebula's deploy script alone (a stub that writes the deployment file
// and prints a UUID, so that the difference is nchookd's). Every iteration
// runs the original alone and then each wrapper case, interleaved, so that
// all see the same load on a shared machine. Reported per case as p50-ms
// and p99-ms over b.N deploys, and the added median (case p50 minus the
// original's p50) as add-p50-ms; the median CPU time (user+system, the
// process and what it ran) as cpu-p50-ms, which the load does not inflate.
func BenchmarkDeploy(b *testing.B) {
	in := testdata(b, "deployment-7.0.xml")
	daemonCfg := config.Default()
	daemonCfg.Hook.InstancesRoot = []string{os.TempDir()}
	daemonCfg.Installer["fedora-40"] = config.Installer{Kernel: "/k", Initrd: "/i"}
	sock, _ := serveDaemon(b, daemonCfg)
	cases := []struct {
		name string
		vm   []byte
		orig bool
		env  []string
		ctx  bool // OpenNebula 5.12: no vm.xml, a CONTEXT CD-ROM
		n    *node
		in   []byte
		durs []time.Duration
		cpus []time.Duration
	}{
		{name: "original-alone", orig: true},
		{name: "rewrite-daemon", vm: testdata(b, "vm-userdata.xml"), env: []string{"NCHOOKD_SOCKET=" + sock}},
		{name: "rewrite-fallback", vm: testdata(b, "vm-userdata.xml")},
		{name: "no-directives-daemon", vm: testdata(b, "vm-none.xml"), env: []string{"NCHOOKD_SOCKET=" + sock}},
		{name: "no-vmxml", vm: nil},
		{name: "rewrite-512-daemon", ctx: true, env: []string{"NCHOOKD_SOCKET=" + sock}},
		{name: "rewrite-512-fallback", ctx: true},
	}
	for i := range cases {
		c := &cases[i]
		c.n, c.in = newNode(b, hookBin, c.vm, catalog), in
		if c.ctx {
			testenv.OneContextISO(b, filepath.Join(c.n.vmDir, "disk.1"), context512(userData512), nil)
			c.in = bytes.ReplaceAll(testdata(b, "deployment-5.12.xml"), []byte("/var/lib/one//datastores/0/42/"), []byte(c.n.vmDir+"/"))
		}
		if c.orig {
			c.n.deploy = filepath.Join(c.n.remotes, "deploy.one")
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range cases {
			c := &cases[j]
			r := c.n.run(b, c.in, c.env...)
			if r.code != 0 || r.stdout != stubUUID+"\n" || (c.ctx && !bytes.Contains(r.deployed, []byte("<on_reboot>destroy</on_reboot>"))) {
				b.Fatalf("%s: exit %d stdout %q stderr %q", c.name, r.code, r.stdout, r.stderr)
			}
			c.durs = append(c.durs, r.took)
			c.cpus = append(c.cpus, r.cpu)
		}
	}
	b.StopTimer()
	q := func(d []time.Duration, p float64) float64 {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
	}
	base := q(cases[0].durs, 0.5)
	for _, c := range cases {
		b.ReportMetric(q(c.durs, 0.50), c.name+"-p50-ms")
		b.ReportMetric(q(c.durs, 0.99), c.name+"-p99-ms")
		// CPU time does not wait for the shared machine's other work.
		b.ReportMetric(q(c.cpus, 0.50), c.name+"-cpu-p50-ms")
		if !c.orig {
			b.ReportMetric(q(c.durs, 0.50)-base, c.name+"-add-p50-ms")
		}
	}
}

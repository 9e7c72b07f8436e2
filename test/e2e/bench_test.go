package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/test/ncsim"
)

// benchHook execs the hook as the NC does, b.N times, and reports the
// median and p99 of exec → exit (the domain file rewritten when it exits).
func benchHook(b *testing.B, n *node, event string, dir string, reset func()) {
	hook := filepath.Join(n.hooks, "nchookd")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if reset != nil {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		cmd := exec.Command(hook, event, "/", dir)
		cmd.Env = n.env
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("hook: %v: %s", err, out)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func benchInstance(b *testing.B, n *node) (*ncsim.Instance, func()) {
	dir := filepath.Join(n.root, "work", "AIDA", "i-bench")
	kdir := b.TempDir()
	inst := &ncsim.Instance{Name: "i-bench", Dir: dir, Disk: filepath.Join(kdir, "disk.img"),
		Kernel: filepath.Join(kdir, "vmlinuz"), Ramdisk: filepath.Join(kdir, "initrd"),
		UserData: []byte("bootparams=ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp\n")}
	if err := ncsim.Write(inst); err != nil {
		b.Fatal(err)
	}
	orig, _ := os.ReadFile(inst.DomainFile())
	reset := func() {
		os.WriteFile(inst.DomainFile(), orig, 0o644)
		os.Remove(inst.DomainFile() + ".orig")
	}
	return inst, reset
}

// BenchmarkHookPreBoot: NC exec of the hook → domain XML rewritten.
func BenchmarkHookPreBoot(b *testing.B) {
	b.Run("daemon", func(b *testing.B) {
		n := newNode(b)
		n.serve(b)
		inst, reset := benchInstance(b, n)
		benchHook(b, n, "euca-nc-pre-boot", inst.Dir, reset)
	})
	b.Run("no-daemon", func(b *testing.B) {
		n := newNode(b)
		inst, reset := benchInstance(b, n)
		benchHook(b, n, "euca-nc-pre-boot", inst.Dir, reset)
	})
}

// BenchmarkHookUnhandled: the cost of an event nchookd ignores
// (pre-hyp-check runs on every hypervisor access under the NC's lock).
func BenchmarkHookUnhandled(b *testing.B) {
	n := newNode(b)
	benchHook(b, n, "euca-nc-pre-hyp-check", "", nil)
}

// BenchmarkTrue is the floor: exec of /bin/true from this process.
func BenchmarkTrue(b *testing.B) {
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkBakeOverhead runs a whole local bake with the test installer
// and reports the installer's run time and kscloud's own overhead after
// the installer powered off (power-off event → image registered).
func BenchmarkBakeOverhead(b *testing.B) {
	uri := os.Getenv("KSCLOUD_TEST_LIBVIRT")
	if uri == "" {
		b.Skip("needs a real libvirtd: run make bench as root after make test, or set KSCLOUD_TEST_LIBVIRT")
	}
	k, i := benchInstaller(b)
	ks := filepath.Join(b.TempDir(), "ks.cfg")
	os.WriteFile(ks, []byte(baseKS+"poweroff\n"), 0o644)
	state := b.TempDir()
	var install, overhead float64
	for n := 0; n < b.N; n++ {
		out, err := exec.Command(bins.kscloud, "bake", "--state-dir", state, "--connect", uri, "--ks", ks,
			"--kernel", k, "--initrd", i, "--disk", "1", "--output", "json").Output()
		if err != nil {
			b.Fatalf("bake: %v", err)
		}
		var r struct {
			Result struct {
				InstallSeconds  float64 `json:"install_seconds"`
				OverheadSeconds float64 `json:"overhead_seconds"`
			} `json:"result"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatal(err)
		}
		install += r.Result.InstallSeconds
		overhead += r.Result.OverheadSeconds
	}
	b.ReportMetric(install/float64(b.N), "install-s")
	b.ReportMetric(overhead/float64(b.N), "overhead-s")
}

func benchInstaller(b *testing.B) (string, string) {
	dir := filepath.Join(bins.dir, "test-installer")
	if out, err := exec.Command("../installer/build.sh", dir).CombinedOutput(); err != nil {
		b.Fatalf("test installer: %v\n%s", err, out)
	}
	return filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
}

// BenchmarkEC2Bake runs a whole kscloud bake --provider ec2 against the
// test endpoint in node mode (the real hook, nchookd and QEMU, the
// endpoint's default state delays) and reports the requests per bake by
// action, the installer's run and kscloud's time after the installer's
// power-off (stopped → detach → snapshot → image registered → installer
// and volume removed).
func BenchmarkEC2Bake(b *testing.B) {
	if os.Getenv("KSCLOUD_TEST_LIBVIRT") == "" {
		b.Skip("needs a real libvirtd: run make bench as root, or set KSCLOUD_TEST_LIBVIRT")
	}
	e := newEC2Env(b, nil)
	ks := filepath.Join(b.TempDir(), "ks.cfg")
	os.WriteFile(ks, []byte(ec2KS), 0o644)
	var install, overhead, wall float64
	counts := map[string]int{}
	total := 0
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		e.srv.ResetCounts()
		start := time.Now()
		r := e.kscloud(b, context.Background(), append(e.bakeArgs(ks, fmt.Sprintf("bench-%d", n)), "--output", "json")...)
		wall += time.Since(start).Seconds()
		if r.code != 0 {
			b.Fatalf("bake: exit %d\n%s", r.code, r.stderr)
		}
		var out bakeOutput
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			b.Fatal(err)
		}
		install += out.Result.InstallSeconds
		overhead += out.Result.OverheadSeconds
		c, t := e.counts()
		for k, v := range c {
			counts[k] += v
		}
		total += t
	}
	N := float64(b.N)
	b.ReportMetric(wall/N, "wall-s")
	b.ReportMetric(install/N, "install-s")
	b.ReportMetric(overhead/N, "overhead-s")
	b.ReportMetric(float64(total)/N, "requests")
	for k := range counts {
		counts[k] /= b.N
	}
	b.Logf("requests per bake by action: %s", fmtCounts(counts))
}

// BenchmarkHookCost measures, in one run and interleaved (every round runs
// each case once, so a busy machine slows them alike), what the NC waits
// for under its lock: /bin/true (the floor), an event nchookd ignores and
// a pre-boot rewrite with and without the daemon, beside seed 001's bash +
// xsltproc hook on the same instances; and the Go hook run directly for an
// ignored event (what nc-hooks held before the dispatcher), and the floor
// of a fallback in Go (the dispatcher exec'ing an empty static Go program
// for a pre-boot). It reports each median and the ratios. Each round's
// pre-boot uses a fresh instance (as the NC launches them), written outside
// the timing. One op is hookCostRounds rounds, so that the default
// -benchtime still gives medians of 30 samples.
func BenchmarkHookCost(b *testing.B) {
	if _, err := exec.LookPath("xsltproc"); err != nil {
		b.Skip("the seed's hook needs xsltproc (scripts/deps.sh installs it)")
	}
	n := newNode(b) // no daemon: the hook rewrites by itself
	nd := newNode(b)
	nd.serve(b)
	seedDir := b.TempDir()
	for _, f := range []string{"nc-hook", "get-user-data.xsl", "insert-boot-params.xsl"} {
		data, err := os.ReadFile(filepath.Join("testdata", "seedhook", f))
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(seedDir, f), data, 0o755)
	}
	seed := filepath.Join(seedDir, "nc-hook")
	// The floor of any fallback in Go: the dispatcher exec'ing an empty
	// static Go program (runtime start-up and exit, no package of ours)
	// where the Go hook would run, on the same pre-boot path.
	floorDir := b.TempDir()
	os.WriteFile(filepath.Join(floorDir, "go.mod"), []byte("module floor\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(floorDir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	build := exec.Command("go", "build", "-o", "floor", ".")
	build.Dir = floorDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("empty Go program: %v\n%s", err, out)
	}
	floor := filepath.Join(floorDir, "nc-hook-floor")
	if err := ncsim.BuildDispatcher(filepath.Join(floorDir, "floor"), floor); err != nil {
		b.Fatal(err)
	}
	const bootparams = "ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp"
	seq := 0
	newInstance := func(n *node) string {
		seq++
		name := fmt.Sprintf("i-%08X", seq)
		kdir := filepath.Join(n.root, "kernels", name)
		os.MkdirAll(kdir, 0o755)
		inst := &ncsim.Instance{Name: name, Version: "3.1", Dir: filepath.Join(n.root, "work", "AIDA", name),
			Disk: filepath.Join(kdir, "disk.img"), Kernel: filepath.Join(kdir, "vmlinuz"), Ramdisk: filepath.Join(kdir, "initrd"),
			UserData: []byte("bootparams=" + bootparams + "\n")}
		if err := ncsim.Write(inst); err != nil {
			b.Fatal(err)
		}
		return inst.Dir
	}
	type hookCase struct {
		name, exe, event string
		n                *node
		lat              []time.Duration
	}
	cases := []*hookCase{
		{name: "true", exe: "/bin/true"},
		{name: "ignored", exe: filepath.Join(n.hooks, "nchookd"), event: "euca-nc-pre-hyp-check", n: n},
		{name: "ignored-go", exe: bins.hook, event: "euca-nc-pre-hyp-check", n: n},
		{name: "seed-ignored", exe: seed, event: "euca-nc-pre-hyp-check", n: n},
		{name: "preboot-daemon", exe: filepath.Join(nd.hooks, "nchookd"), event: "euca-nc-pre-boot", n: nd},
		{name: "preboot-nodaemon", exe: filepath.Join(n.hooks, "nchookd"), event: "euca-nc-pre-boot", n: n},
		{name: "seed-preboot", exe: seed, event: "euca-nc-pre-boot", n: n},
		{name: "floor-nodaemon", exe: floor, event: "euca-nc-pre-boot", n: n},
	}
	const hookCostRounds = 30
	b.ResetTimer()
	for i := 0; i < b.N*hookCostRounds; i++ {
		for _, c := range cases {
			var cmd *exec.Cmd
			dir := ""
			switch {
			case c.n == nil:
				cmd = exec.Command(c.exe)
			case c.event == "euca-nc-pre-boot":
				b.StopTimer()
				dir = newInstance(c.n)
				b.StartTimer()
				cmd = exec.Command(c.exe, c.event, "/", dir)
			default:
				cmd = exec.Command(c.exe, c.event, "/", "")
			}
			if c.n != nil {
				cmd.Env = c.n.env
			}
			start := time.Now()
			out, err := cmd.CombinedOutput()
			c.lat = append(c.lat, time.Since(start))
			if err != nil {
				b.Fatalf("%s: %v: %s", c.name, err, out)
			}
			if dir != "" && c.name != "floor-nodaemon" {
				b.StopTimer()
				dom, _ := os.ReadFile(filepath.Join(dir, "libvirt.xml"))
				if !strings.Contains(string(dom), bootparams) {
					b.Fatalf("%s: %s not rewritten:\n%s", c.name, dir, dom)
				}
				b.StartTimer()
			}
		}
	}
	b.StopTimer()
	med := map[string]float64{}
	for _, c := range cases {
		sort.Slice(c.lat, func(i, j int) bool { return c.lat[i] < c.lat[j] })
		med[c.name] = float64(c.lat[len(c.lat)/2].Microseconds()) / 1000
		b.ReportMetric(med[c.name], c.name+"-ms")
	}
	b.ReportMetric(med["ignored"]/med["true"], "ignored/true")
	b.ReportMetric(med["ignored-go"]/med["true"], "ignored-go/true")
	b.ReportMetric(med["seed-ignored"]/med["ignored"], "seed-ignored/ignored")
	b.ReportMetric(med["seed-preboot"]/med["preboot-daemon"], "seed/preboot-daemon")
	b.ReportMetric(med["seed-preboot"]/med["preboot-nodaemon"], "seed/preboot-nodaemon")
	// The best seed/preboot-nodaemon any Go fallback could reach here.
	b.ReportMetric(med["seed-preboot"]/med["floor-nodaemon"], "seed/floor-nodaemon")
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/ncsim"
)

// loadHooks is how many pre-boot hooks BenchmarkHookLoad runs at once.
const loadHooks = 200

// BenchmarkHookLoad execs loadHooks pre-boot hooks at the same moment
// against one daemon (plain files, libvirt not used), as many NCs' worth of
// launches arriving together would. Every hook must be answered by the
// daemon (the fallback is made to fail: NCHOOKD_CONFIG names no file) and
// every domain file must be rewritten exactly once (one "pre-boot rewrite"
// line per instance in the daemon's log). It reports p50, p99 and max of
// exec → exit and the daemon's peak RSS.
func BenchmarkHookLoad(b *testing.B) {
	n := newNode(b)
	conf, err := os.ReadFile(n.cfg)
	if err != nil {
		b.Fatal(err)
	}
	conf = regexp.MustCompile(`(?m)^uri = .*$`).ReplaceAll(conf, []byte(`uri = ""`))
	if err := os.WriteFile(n.cfg, conf, 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := n.serve(b)
	logs := cmd.Stderr.(*testenv.Buffer)
	kdir := b.TempDir()
	kernel, ramdisk := filepath.Join(kdir, "vmlinuz"), filepath.Join(kdir, "initrd")
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	os.WriteFile(ramdisk, []byte("initrd"), 0o644)
	env := append(append([]string{}, n.env...), "NCHOOKD_CONFIG="+filepath.Join(kdir, "absent.toml"))
	hook := filepath.Join(n.hooks, "nchookd")
	var lat, work []time.Duration
	for round := 0; round < b.N; round++ {
		b.StopTimer()
		insts := make([]*ncsim.Instance, loadHooks)
		for i := range insts {
			name := fmt.Sprintf("i-load%d-%03d", round, i)
			insts[i] = &ncsim.Instance{Name: name, Dir: filepath.Join(n.root, "work", "AIDALOAD", name),
				Disk: filepath.Join(kdir, "disk.img"), Kernel: kernel, Ramdisk: ramdisk,
				UserData: []byte("bootparams=ks=http://10.0.0.1/ks.cfg ip=dhcp\n")}
			if err := ncsim.Write(insts[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			fails []string
			start = make(chan struct{})
		)
		for _, inst := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := exec.Command(hook, "euca-nc-pre-boot", "/", inst.Dir)
				c.Env = env
				<-start
				t0 := time.Now()
				out, err := c.CombinedOutput()
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				lat = append(lat, d)
				if err != nil || len(out) > 0 {
					fails = append(fails, fmt.Sprintf("%s: %v: %s", inst.Name, err, strings.TrimSpace(string(out))))
				}
			}()
		}
		close(start)
		wg.Wait()
		b.StopTimer()
		if len(fails) > 0 {
			b.Fatalf("%d of %d hooks failed, first: %s", len(fails), loadHooks, fails[0])
		}
		log := logs.String()
		for _, inst := range insts {
			if k := strings.Count(log, `msg="pre-boot rewrite" instance=`+inst.Name+" "); k != 1 {
				b.Fatalf("%s rewritten %d times by the daemon, want 1", inst.Name, k)
			}
			if m := regexp.MustCompile(`msg="pre-boot rewrite" instance=` + inst.Name + ` .*duration_s=([0-9.e-]+)`).FindStringSubmatch(log); m != nil {
				var s float64
				fmt.Sscan(m[1], &s)
				work = append(work, time.Duration(s*float64(time.Second)))
			}
			if dom, err := os.ReadFile(inst.DomainFile()); err != nil || !strings.Contains(string(dom), "ks=http://10.0.0.1/ks.cfg") {
				b.Fatalf("%s: domain file not rewritten (%v)", inst.Name, err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	// The daemon's own time per rewrite (request read → rewritten), from
	// its log: the rest of a hook's latency is exec and scheduling.
	if len(work) > 0 {
		sort.Slice(work, func(i, j int) bool { return work[i] < work[j] })
		b.ReportMetric(ms(work[len(work)/2]), "daemon-p50-ms")
		b.ReportMetric(ms(work[len(work)-1]), "daemon-max-ms")
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			var kb float64
			if _, err := fmt.Sscanf(l, "VmHWM: %f kB", &kb); err == nil {
				b.ReportMetric(kb/1024, "daemon-peak-RSS-MB")
			}
		}
	}
}

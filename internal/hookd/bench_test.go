package hookd

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/test/ncsim"
)

// BenchmarkServerConcurrentPreBoot: 200 pre-boot requests at once over the
// socket to one in-process server (plain files, no libvirt, no process
// start-up): the daemon's own latency under a burst, p50/p99/max.
func BenchmarkServerConcurrentPreBoot(b *testing.B) {
	const burst = 200
	root := b.TempDir()
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{root}
	store, err := OpenStore(b.TempDir(), quiet)
	if err != nil {
		b.Fatal(err)
	}
	srv := New(quiet, cfg, store, "bench")
	sock := filepath.Join(b.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	// Serve returns once the state files written after the answers are.
	defer func() { cancel(); <-done }()
	var lat []time.Duration
	for round := 0; round < b.N; round++ {
		b.StopTimer()
		dirs := make([]string, burst)
		for i := range dirs {
			name := fmt.Sprintf("i-b%d-%03d", round, i)
			inst := &ncsim.Instance{Name: name, Dir: filepath.Join(root, "work", "U", name), Disk: "/d.img",
				Kernel: "/k", Ramdisk: "/r", UserData: []byte("bootparams=ks=http://10.0.0.1/ks.cfg\n")}
			if err := ncsim.Write(inst); err != nil {
				b.Fatal(err)
			}
			dirs[i] = inst.Dir
		}
		b.StartTimer()
		var mu sync.Mutex
		var wg sync.WaitGroup
		var fails []error
		for _, dir := range dirs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, ccancel := context.WithTimeout(ctx, 4*time.Second)
				defer ccancel()
				t0 := time.Now()
				resp, err := hookproto.Call(cctx, sock, hookproto.Request{Op: hookproto.OpHook, Event: "euca-nc-pre-boot", InstanceDir: dir, Deadline: t0.Add(4 * time.Second)})
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				lat = append(lat, d)
				if err == nil && (!resp.OK || resp.Outcome == nil || !resp.Outcome.Changed) {
					err = fmt.Errorf("%s: %+v", dir, resp)
				}
				if err != nil {
					fails = append(fails, err)
				}
			}()
		}
		wg.Wait()
		if len(fails) > 0 {
			b.Fatalf("%d of %d failed, first: %v", len(fails), burst, fails[0])
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

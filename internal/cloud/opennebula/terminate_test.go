package opennebula_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// TestCancelDuringProlog: a bake cancelled while oned is still copying the
// installer's images (PROLOG, where oned refuses terminate with "wrong
// state PROLOG") ends its VM all the same and leaves nothing behind.
func TestCancelDuringProlog(t *testing.T) {
	r := newRig(t, oneendpoint.Options{Prolog: 3 * time.Second})
	op, err := r.srv.Operator()
	if err != nil {
		t.Fatal(err)
	}
	b := r.build("bake")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sawProlog := make(chan int, 1)
	go func() {
		defer cancel()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if res, ok := b.Resource("installer"); ok && res.ID != "" {
				n := vmNum(t, res.ID)
				if info, err := op.Call("one.vm.info", n); err == nil {
					if s, _ := info.(string); strings.Contains(s, "<STATE>3</STATE>") && strings.Contains(s, "<LCM_STATE>1</LCM_STATE>") {
						sawProlog <- n
						return
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err = r.engine().Run(ctx, b, r.wf.BakeSteps())
	var vm int
	select {
	case vm = <-sawProlog:
	default:
		t.Fatalf("the installer VM was never seen in PROLOG (run: %v)", err)
	}
	if !errors.Is(err, install.ErrInterrupted) || strings.Contains(err.Error(), "cleanup") {
		t.Fatalf("cancelled run: %v; want interrupted with a clean cleanup", err)
	}
	info, err := op.Call("one.vm.info", vm)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := info.(string); !strings.Contains(s, "<STATE>6</STATE>") {
		t.Errorf("installer VM %d after cleanup is not DONE:\n%s", vm, s)
	}
	found, err := r.p.FindTagged(context.Background(), cloud.TagBuild, b.ID)
	if err != nil || len(found) != 0 {
		t.Errorf("after the cancelled bake, build %s still has %+v, %v", b.ID, found, err)
	}
}

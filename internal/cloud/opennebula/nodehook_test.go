package opennebula_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// probeRig is an endpoint whose VM monitor probe reports, for VM 0, the
// MONITOR lines in the file mon (what nchookd's probe prints on a host
// that runs it; an empty file: a host without nchookd).
func probeRig(t *testing.T, install time.Duration) (*rig, func(string), *[]string) {
	dir := t.TempDir()
	mon := filepath.Join(dir, "mon")
	os.WriteFile(mon, nil, 0o644)
	probe := filepath.Join(dir, "probe")
	os.WriteFile(probe, []byte("#!/bin/sh\n[ -s \""+mon+"\" ] || exit 0\nprintf 'VM = [ ID=\"0\", DEPLOY_ID=\"one-0\", MONITOR=\"%s\"]\\n' \"$(cat \""+mon+"\")\"\n"), 0o755)
	r := newRig(t, oneendpoint.Options{Install: install, Monitor: 100 * time.Millisecond, MonitorProbes: []string{probe}})
	var mu sync.Mutex
	lines := &[]string{}
	r.wf.Status = func(l string) {
		t.Log(l)
		mu.Lock()
		*lines = append(*lines, l)
		mu.Unlock()
	}
	set := func(kv string) {
		os.WriteFile(mon, []byte(base64.StdEncoding.EncodeToString([]byte(kv))), 0o644)
	}
	return r, set, lines
}

// TestRunInPlaceNchookd: on a host whose probe reports nchookd, kscloud
// shows the install's progress and takes phase final on a RUNNING VM as
// the end of the install in place — the installer never powers off (its
// played poweroff here comes only after 60 s), the VM boots once.
func TestRunInPlaceNchookd(t *testing.T) {
	r, set, lines := probeRig(t, 60*time.Second)
	set("KSCLOUD_NCHOOKD=\"v-test\"\nKSCLOUD_PHASE=\"installing\"\nKSCLOUD_PROGRESS=\"Installing glibc (3/10)\"\n")
	go func() {
		time.Sleep(2 * time.Second)
		set("KSCLOUD_NCHOOKD=\"v-test\"\nKSCLOUD_PHASE=\"final\"\nKSCLOUD_PROGRESS=\"Installing glibc (3/10)\"\n")
	}()
	b := r.build("run")
	start := time.Now()
	if err := r.engine().Run(context.Background(), b, r.wf.RunSteps()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("install took %v: kscloud waited for POWEROFF, not nchookd's final phase", d)
	}
	id := b.Result.InstanceID
	if got := r.srv.Boots(vmNum(t, id)); got != 1 {
		t.Errorf("%s booted %d times, want 1 (nchookd switched to the disk on the node)", id, got)
	}
	if inst, err := r.p.Instance(context.Background(), id); err != nil || inst.State != cloud.InstanceRunning {
		t.Errorf("instance %s: %+v, %v", id, inst, err)
	}
	if b.Value("nchookd") != "v-test" {
		t.Errorf("build value nchookd = %q", b.Value("nchookd"))
	}
	all := strings.Join(*lines, "\n")
	for _, want := range []string{"runs nchookd v-test", "progress: Installing glibc (3/10)", "install final (nchookd)", "installed in place"} {
		if !strings.Contains(all, want) {
			t.Errorf("status lines lack %q:\n%s", want, all)
		}
	}
}

// TestNchookdInstallFailed: a failure nchookd saw ends the wait with its
// reason; the build cleans up.
func TestNchookdInstallFailed(t *testing.T) {
	r, set, _ := probeRig(t, 60*time.Second)
	set("KSCLOUD_NCHOOKD=\"v-test\"\nKSCLOUD_PHASE=\"failed\"\nKSCLOUD_REASON=\"installer: no space left on device\"\n")
	b := r.build("bake")
	err := r.engine().Run(context.Background(), b, r.wf.BakeSteps())
	var ie *install.InstallError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "nchookd") || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("got %v: want an install error with nchookd's reason", err)
	}
}

// TestBakeNchookdPowersOff: a bake on a host with nchookd still ends at
// POWEROFF (nchookd leaves the power-off to OpenNebula), even when the
// probe already says final.
func TestBakeNchookdPowersOff(t *testing.T) {
	r, set, _ := probeRig(t, 500*time.Millisecond)
	set("KSCLOUD_NCHOOKD=\"v-test\"\nKSCLOUD_PHASE=\"final\"\n")
	b := r.build("bake")
	if err := r.engine().Run(context.Background(), b, r.wf.BakeSteps()); err != nil {
		t.Fatal(err)
	}
	if b.Result == nil || b.Result.ImageID == "" {
		t.Fatalf("bake result %+v", b.Result)
	}
}

// TestNeedNodeHookMissing: a kickstart that relies on nchookd (--nchookd)
// on a host whose probe reports none fails once the VM ran the grace
// period, with one reason naming the VM and the cause.
func TestNeedNodeHookMissing(t *testing.T) {
	r, _, _ := probeRig(t, 60*time.Second)
	r.wf.NeedNodeHook, r.wf.NodeHookGrace = true, time.Second
	b := r.build("run")
	start := time.Now()
	err := r.engine().Run(context.Background(), b, r.wf.RunSteps())
	var ie *install.InstallError
	if !errors.As(err, &ie) || !strings.Contains(ie.Reason, "relies on nchookd") || !strings.Contains(ie.Reason, "KSCLOUD_NCHOOKD") {
		t.Fatalf("got %v: want an install error naming the missing nchookd", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v: the grace is 1 s", d)
	}
}

// TestNeedNodeHookPresent: with the probe reporting nchookd the same
// build installs in place.
func TestNeedNodeHookPresent(t *testing.T) {
	r, set, _ := probeRig(t, 60*time.Second)
	r.wf.NeedNodeHook, r.wf.NodeHookGrace = true, time.Second
	set("KSCLOUD_NCHOOKD=\"v-test\"\nKSCLOUD_PHASE=\"installing\"\n")
	go func() {
		time.Sleep(2500 * time.Millisecond)
		set("KSCLOUD_NCHOOKD=\"v-test\"\nKSCLOUD_PHASE=\"final\"\n")
	}()
	b := r.build("run")
	if err := r.engine().Run(context.Background(), b, r.wf.RunSteps()); err != nil {
		t.Fatal(err)
	}
}

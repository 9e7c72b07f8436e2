package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/install"
)

// domainWatcher records the live XML of each domain an env's instances
// get, while a command runs (the installer domain is transient: gone once
// the install ends).
type domainWatcher struct {
	mu   sync.Mutex
	seen map[string]string
	stop chan struct{}
	done chan struct{}
}

func (e *ksEnv) watchDomains() *domainWatcher {
	w := &domainWatcher{seen: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			recs, _ := filepath.Glob(filepath.Join(e.state, "local", "i-*.json"))
			for _, r := range recs {
				name := strings.TrimSuffix(filepath.Base(r), ".json")
				w.mu.Lock()
				_, ok := w.seen[name]
				w.mu.Unlock()
				if ok {
					continue
				}
				if out, err := exec.Command("virsh", "-c", e.uri, "dumpxml", name).Output(); err == nil && strings.Contains(string(out), "<kernel>") {
					w.mu.Lock()
					w.seen[name] = string(out)
					w.mu.Unlock()
				}
			}
			select {
			case <-w.stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return w
}

// installers stops watching and returns the installer domains' live XML.
func (w *domainWatcher) installers() []string {
	close(w.stop)
	<-w.done
	var out []string
	for _, x := range w.seen {
		out = append(out, x)
	}
	return out
}

func bakeResult(t *testing.T, stdout string) install.Result {
	t.Helper()
	var out struct{ Result install.Result }
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Result.ImageID == "" {
		t.Fatalf("bake output %q: %v", stdout, err)
	}
	return out.Result
}

// TestE2EKscloudAccel: --accel tcg makes a type='qemu' domain on real
// libvirt and the install finishes; --accel auto asks libvirt and, on a
// host where KVM is not usable (this one: /dev/kvm hangs, libvirt says
// "the accel 'kvm' is not supported"), says so in one line and uses tcg;
// --accel kvm there is refused in one line before anything is created.
func TestE2EKscloudAccel(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	ks := writeKS(t, baseKS+"poweroff\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	kvmUsable := exec.Command("virsh", "-c", e.uri, "domcapabilities", "--virttype", "kvm").Run() == nil
	times := map[string]time.Duration{}
	for _, accel := range []string{"tcg", "auto"} {
		w := e.watchDomains()
		start := time.Now()
		r := e.kscloud(t, ctx, "bake", "--accel", accel, "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--name", "accel-"+accel, "--output", "json")
		times[accel] = time.Since(start)
		doms := w.installers()
		if r.code != 0 {
			t.Fatalf("bake --accel %s: exit %d\n%s", accel, r.code, r.stderr)
		}
		bakeResult(t, r.stdout)
		want := "type='qemu'"
		if accel == "auto" && kvmUsable {
			want = "type='kvm'"
		}
		if len(doms) != 1 || !strings.Contains(doms[0], "<domain "+want) {
			t.Fatalf("--accel %s: installer domains %d, want one with %s:\n%s", accel, len(doms), want, strings.Join(doms, "\n"))
		}
		note := strings.Contains(r.stderr, "kvm is not usable on this host") && strings.Contains(r.stderr, "using tcg")
		if accel == "auto" && note == kvmUsable {
			t.Fatalf("--accel auto (kvm usable %v): note %v in\n%s", kvmUsable, note, r.stderr)
		}
		if accel == "tcg" && note {
			t.Fatalf("--accel tcg printed the auto note:\n%s", r.stderr)
		}
	}
	t.Logf("install wall time: --accel tcg %v, --accel auto %v (kvm usable here: %v)", times["tcg"].Round(time.Second), times["auto"].Round(time.Second), kvmUsable)
	if !kvmUsable {
		r := e.kscloud(t, ctx, "bake", "--accel", "kvm", "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1")
		if r.code == 0 || !strings.Contains(r.stderr, "--accel kvm: not offered by this host") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Fatalf("--accel kvm without kvm: exit %d\n%s", r.code, r.stderr)
		}
		if left := e.leftovers(t); len(left) != 0 {
			t.Fatalf("refused launch left %v", left)
		}
	}
}

// TestE2EKscloudUEFI: --boot uefi boots the installer under OVMF (libvirt's
// firmware auto-selection from Debian's ovmf package; the direct kernel
// boot goes through OVMF's fw_cfg loader) and the install finishes. The
// test installer's installed system cannot boot under UEFI: it writes
// extlinux's BIOS MBR boot code on an MBR disk without an EFI system
// partition, so there is no \EFI\BOOT\BOOTX64.EFI for OVMF to start.
func TestE2EKscloudUEFI(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	if _, err := os.Stat("/usr/share/qemu/firmware/60-edk2-x86_64.json"); err != nil {
		t.Fatal("OVMF is not installed (Debian's ovmf; scripts/deps.sh installs it)")
	}
	ks := writeKS(t, baseKS+"poweroff\n")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w := e.watchDomains()
	r := e.kscloud(t, ctx, "bake", "--accel", "tcg", "--boot", "uefi", "--memory", "512", "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1", "--extra-args", tcgArgs, "--name", "uefi", "--output", "json")
	doms := w.installers()
	if r.code != 0 {
		t.Fatalf("bake --boot uefi: exit %d\n%s", r.code, r.stderr)
	}
	bakeResult(t, r.stdout)
	if len(doms) != 1 || !strings.Contains(doms[0], "OVMF") || !strings.Contains(doms[0], "<nvram") {
		t.Fatalf("installer domain does not boot OVMF:\n%s", strings.Join(doms, "\n"))
	}
	// A refused combination costs nothing.
	r = e.kscloud(t, ctx, "bake", "--accel", "tcg", "--cpu", "host-passthrough", "--ks", ks, "--kernel", k, "--initrd", i)
	if r.code == 0 || !strings.Contains(r.stderr, "--cpu host-passthrough: needs KVM") {
		t.Fatalf("--cpu host-passthrough with tcg: exit %d\n%s", r.code, r.stderr)
	}
	// aarch64 where libvirt offers no aarch64 emulator (no qemu-system-arm
	// here): one line naming the arch, before anything is created.
	if exec.Command("virsh", "-c", e.uri, "domcapabilities", "--virttype", "qemu", "--arch", "aarch64").Run() != nil {
		r = e.kscloud(t, ctx, "bake", "--arch", "aarch64", "--ks", ks, "--kernel", k, "--initrd", i)
		if r.code == 0 || !strings.Contains(r.stderr, "--arch aarch64: not offered by this host") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Fatalf("--arch aarch64 without an aarch64 emulator: exit %d\n%s", r.code, r.stderr)
		}
	}
	if left := e.leftovers(t); len(left) != 0 {
		t.Fatalf("refused launches left %v", left)
	}
}

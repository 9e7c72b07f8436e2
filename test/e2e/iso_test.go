package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EKscloudISO: --location takes an ISO image built here from the
// test installer (xorriso, Rock Ridge) with a .treeinfo: kscloud reads
// kernel and initrd out of it without mounting, attaches it as a CD-ROM,
// and the installer sees the medium (its %pre prints the CD-ROM's label)
// and installs.
func TestE2EKscloudISO(t *testing.T) {
	e := newKsEnv(t)
	k, i := testInstaller(t)
	tree := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(tree, "images", "pxeboot"), 0o755)
	for src, dst := range map[string]string{k: "vmlinuz", i: "initrd.img"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tree, "images", "pxeboot", dst), b, 0o644)
	}
	kb, _ := os.ReadFile(k)
	os.WriteFile(filepath.Join(tree, ".treeinfo"), []byte("[general]\nname = kscloud test installer\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n[checksums]\nimages/pxeboot/vmlinuz = sha256:"+sha(string(kb))+"\n"), 0o644)
	iso := filepath.Join(t.TempDir(), "kscloud-test.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-R", "-V", "KSCLOUD-TEST", "-o", iso, tree).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	ks := writeKS(t, baseKS+"poweroff\n%pre\necho \"kscloud-test-cdrom: $(blkid /dev/sr0)\"\n%end\n")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w := e.watchDomains()
	r := e.kscloud(t, ctx, "bake", "--accel", "tcg", "--location", iso, "--ks", ks, "--disk", "1", "--extra-args", tcgArgs, "--name", "iso", "--output", "json")
	doms := w.installers()
	if r.code != 0 {
		t.Fatalf("bake --location ISO: exit %d\n%s", r.code, r.stderr)
	}
	bakeResult(t, r.stdout)
	if len(doms) != 1 || !strings.Contains(doms[0], "device='cdrom'") || !strings.Contains(doms[0], iso) || !strings.Contains(doms[0], `inst.stage2=hd:LABEL=KSCLOUD-TEST`) {
		t.Fatalf("installer domain has no CD-ROM with %s:\n%s", iso, strings.Join(doms, "\n"))
	}
	logs, _ := filepath.Glob(filepath.Join(e.state, "local", "console", "i-*.log"))
	var console string
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		console += string(b)
	}
	if !strings.Contains(console, `kscloud-test-cdrom: /dev/sr0: `) || !strings.Contains(console, `LABEL="KSCLOUD-TEST"`) {
		t.Fatalf("the installer did not see the CD-ROM:\n%s", console)
	}
	// The extracted kernel is in the cache, named by its sha256.
	if _, err := os.Stat(filepath.Join(e.state, "cache", sha(string(kb)))); err != nil {
		t.Fatalf("kernel not cached by sha256: %v", err)
	}
}

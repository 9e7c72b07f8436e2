package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/testenv"
)

// nchookd rewrite --vm-xml: the OpenNebula dry run prints what the deploy
// wrapper would boot; a bad vm.xml is one line and exit 2; --vm-xml and
// --instance-xml together are a usage error.
func TestRewriteOpenNebula(t *testing.T) {
	td := filepath.Join("..", "..", "internal", "preboot", "testdata", "opennebula")
	root := t.TempDir()
	vmDir := filepath.Join(root, "0", "42")
	os.MkdirAll(vmDir, 0o755)
	dom, _ := os.ReadFile(filepath.Join(td, "deployment-7.0.xml"))
	dfile := filepath.Join(vmDir, "deployment.0")
	os.WriteFile(dfile, dom, 0o644)
	cfg := filepath.Join(root, "nchookd.toml")
	os.WriteFile(cfg, []byte("[hook]\ninstances_root = [\""+root+"\"]\n"), 0o644)
	code, out, stderr := runCLI("rewrite", "--config", cfg, "--vm-xml", filepath.Join(td, "vm-attrs.xml"), "--domain-xml", dfile)
	if code != 0 || !strings.Contains(out, "<on_reboot>destroy</on_reboot>") || !strings.Contains(out, vmDir+"/console.log") {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	bad := filepath.Join(root, "vm.xml")
	os.WriteFile(bad, []byte("<VM><ID>9</ID></VM>"), 0o644)
	code, out, stderr = runCLI("rewrite", "--config", cfg, "--vm-xml", bad, "--domain-xml", dfile)
	if code != 1 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "stale vm.xml") {
		t.Fatalf("stale vm.xml: exit %d %q %q", code, out, stderr)
	}
	if code, _, _ = runCLI("rewrite", "--config", cfg, "--vm-xml", bad, "--instance-xml", bad, "--domain-xml", dfile); code != 2 {
		t.Fatalf("both inputs: exit %d", code)
	}
}

// nchookd rewrite --one-context: the OpenNebula 5.12 dry run reads the
// deployment file's CONTEXT CD-ROM; without one it is one line, exit 1.
func TestRewriteOpenNebula512(t *testing.T) {
	td := filepath.Join("..", "..", "internal", "preboot", "testdata", "opennebula")
	root := t.TempDir()
	vmDir := filepath.Join(root, "0", "42")
	os.MkdirAll(vmDir, 0o755)
	dom, _ := os.ReadFile(filepath.Join(td, "deployment-5.12.xml"))
	dom = []byte(strings.ReplaceAll(string(dom), "/var/lib/one//datastores/0/42/", vmDir+"/"))
	dfile := filepath.Join(vmDir, "deployment.0")
	os.WriteFile(dfile, dom, 0o644)
	cfg := filepath.Join(root, "nchookd.toml")
	os.WriteFile(cfg, []byte("[hook]\ninstances_root = [\""+root+"\"]\n"), 0o644)
	code, out, stderr := runCLI("rewrite", "--config", cfg, "--one-context", "--domain-xml", dfile)
	if code != 1 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "disk.1: no such file") {
		t.Fatalf("no ISO: exit %d %q %q", code, out, stderr)
	}
	testenv.OneContextISO(t, filepath.Join(vmDir, "disk.1"), testenv.OneContextSh(map[string]string{"USER_DATA": "kscloud.mode=bake\n"}), nil)
	code, out, stderr = runCLI("rewrite", "--config", cfg, "--one-context", "--domain-xml", dfile)
	if code != 0 || !strings.Contains(out, "<on_reboot>destroy</on_reboot>") || !strings.Contains(out, vmDir+"/console.log") {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	if code, _, _ = runCLI("rewrite", "--config", cfg, "--one-context", "--vm-xml", dfile, "--domain-xml", dfile); code != 2 {
		t.Fatalf("both inputs: exit %d", code)
	}
}

package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const samples = "../../../shared/samples/eucalyptus"

func runCLI(args ...string) (int, string, string) {
	var so, se bytes.Buffer
	code := run(args, &so, &se)
	return code, so.String(), se.String()
}

func TestRewriteSamples(t *testing.T) {
	for _, pair := range [][2]string{{"instance-3.1.xml", "libvirt-3.1.xml"}, {"instance-3.4.xml", "instance-libvirt-3.4.2.xml"}} {
		code, out, stderr := runCLI("rewrite", "--config", "/dev/null",
			"--instance-xml", filepath.Join(samples, pair[0]), "--domain-xml", filepath.Join(samples, pair[1]))
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", pair[1], code, stderr)
		}
		if !strings.Contains(out, "<cmdline>ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp console=ttyS1</cmdline>") {
			t.Fatalf("%s: output:\n%s", pair[1], out)
		}
	}
}

func TestRewriteNoBootparamsAndBadInput(t *testing.T) {
	dir := t.TempDir()
	inst, _ := os.ReadFile(filepath.Join(samples, "instance-3.4.xml"))
	plain := strings.Replace(string(inst), "Ym9vdHBhcmFtcz1rcz1odHRwOi8vMTAuMC4wLjEva3MuY2ZnIGtzZGV2aWNlPWxpbmsgaXA9ZGhjcAo=",
		base64.StdEncoding.EncodeToString([]byte("#cloud-config\n")), 1)
	ip := filepath.Join(dir, "instance.xml")
	os.WriteFile(ip, []byte(plain), 0o644)
	dom := filepath.Join(samples, "instance-libvirt-3.4.2.xml")
	want, _ := os.ReadFile(dom)
	code, out, stderr := runCLI("rewrite", "--config", "/dev/null", "--instance-xml", ip, "--domain-xml", dom)
	if code != 0 || out != string(want) || !strings.Contains(stderr, "no bootparams") {
		t.Fatalf("no bootparams: exit %d, changed=%v, stderr %q", code, out != string(want), stderr)
	}
	bad := strings.Replace(string(inst), "Ym9vdHBhcmFtcz1", "%%%", 1)
	os.WriteFile(ip, []byte(bad), 0o644)
	code, out, stderr = runCLI("rewrite", "--config", "/dev/null", "--instance-xml", ip, "--domain-xml", dom)
	if code != 2 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "i-3A2B41C0") {
		t.Fatalf("bad base64: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	os.WriteFile(filepath.Join(dir, "d.xml"), []byte("<domain><os></domain>"), 0o644)
	code, _, stderr = runCLI("rewrite", "--config", "/dev/null", "--instance-xml", filepath.Join(samples, "instance-3.4.xml"), "--domain-xml", filepath.Join(dir, "d.xml"))
	if code != 2 || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("bad domain XML: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI("rewrite", "--instance-xml", ip); code != 2 {
		t.Fatalf("missing flag: exit %d", code)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "nchookd.toml")
	os.WriteFile(cfg, []byte("[installer.f40]\nkernel = \"/nonexistent/vmlinuz\"\ninitrd = \"/nonexistent/initrd.img\"\n"), 0o644)
	code, _, stderr := runCLI("check", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, `installer "f40": kernel /nonexistent/vmlinuz`) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// A node this machine can be: its instances root exists, no group
	// or users that it lacks.
	node := "[hook]\ninstances_root = [\"" + dir + "\"]\nsocket_group = \"\"\nallowed_users = []\n"
	os.WriteFile(cfg, []byte(node+"[policy]\nvnc = \"loopback\"\n"), 0o644)
	code, out, stderr := runCLI("check", "--config", cfg, "--print")
	if code != 0 || !strings.Contains(out, `vnc = "loopback"`) {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
}

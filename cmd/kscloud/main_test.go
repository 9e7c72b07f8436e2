package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/userdata"
)

func runCLI(args ...string) (int, string, string) {
	var so, se bytes.Buffer
	code := run(args, &so, &se)
	return code, so.String(), se.String()
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"bake", "--state-dir", t.TempDir()}, "--ks FILE|URL is required"},
		{[]string{"bake", "--state-dir", t.TempDir(), "--ks", "x.ks"}, "an installer is required"},
		{[]string{"bake", "--state-dir", t.TempDir(), "--ks", "x.ks", "--installer", "c9"}, "--installer NAME is for ec2"},
		{[]string{"bake", "--state-dir", t.TempDir(), "--ks", "x.ks", "--kernel", "k", "--initrd", "i", "--disk", "0"}, "--disk 0"},
		{[]string{"run", "--state-dir", t.TempDir(), "--image", "a", "--ks", "x.ks"}, "--image boots an installed system"},
		{[]string{"bake", "--state-dir", t.TempDir(), "--provider", "gce"}, `--provider "gce"`},
		{[]string{"bake", "--state-dir", t.TempDir(), "--output", "yaml"}, `--output "yaml"`},
		{[]string{"bake", "--state-dir", t.TempDir(), "--resume", "ks-none"}, "no such build"},
		{[]string{"bake", "--state-dir", t.TempDir(), "--ks", "x.ks", "--kernel", "k", "--initrd", "i", "--name", "a:b"}, `--name "a:b"`},
	} {
		code, _, stderr := runCLI(tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 && !strings.Contains(stderr, "usage") {
			t.Errorf("%v: more than one line: %q", tc.args, stderr)
		}
	}
}

func TestUserdataCommand(t *testing.T) {
	dir := t.TempDir()
	ks := filepath.Join(dir, "ks.cfg")
	os.WriteFile(ks, []byte("text\npoweroff\n"), 0o644)
	code, out, stderr := runCLI("userdata", "--bootparams", "ip=dhcp", "--mode", "in-place", "--ks", ks, "--vnc")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	req, err := userdata.Parse([]byte(out), userdata.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if req.BootParams != "ip=dhcp inst.ks=file:/ks.cfg" || req.Mode != userdata.ModeInPlace || !req.VNC || string(req.Kickstart) != "text\npoweroff\n" {
		t.Fatalf("round trip: %+v", req)
	}
	big := filepath.Join(dir, "big.ks")
	var b strings.Builder
	for i := 0; b.Len() < 40000; i++ {
		b.WriteString("# comment line with some varied text ")
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), i%50))
		b.WriteString("\n")
	}
	os.WriteFile(big, []byte(b.String()), 0o644)
	code, _, stderr = runCLI("userdata", "--bootparams", "ip=dhcp", "--ks", big, "--compress", "never")
	if code == 0 || !strings.Contains(stderr, "over the 16384-byte limit") {
		t.Fatalf("oversized user-data: exit %d %q", code, stderr)
	}
}

// TestEC2FlagErrors: ids and image settings an ec2 bake or run would only
// trip over at launch or at register time (after the whole install) are
// refused at once, in one line, with exit 2 and no build state.
func TestEC2FlagErrors(t *testing.T) {
	bake := []string{"bake", "--provider", "ec2", "--ks", "x.ks", "--installer-image", "emi-12345678", "--kernel", "eki-12345678", "--initrd", "eri-12345678"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(bake[:5:5], "--installer-image", "emi-123"), `--installer-image: image "emi-123": not an image id`},
		{append(bake[:5:5], "--installer-image", "eki-12345678"), `--installer-image: image "eki-12345678"`},
		{append(bake, "--kernel", "eri-12345678"), `--kernel: kernel "eri-12345678"`},
		{append(bake, "--initrd", "initrd.img"), `--initrd: ramdisk "initrd.img"`},
		{append(bake, "--virtualization", "pv"), `--virtualization "pv": want hvm or paravirtual`},
		{append(bake, "--arch", "sparc"), `--arch "sparc"`},
		{append(bake, "--virtualization", "paravirtual"), "needs --image-kernel"},
		{append(bake, "--virtualization", "paravirtual", "--image-kernel", "emi-12345678"), `--image-kernel: kernel "emi-12345678"`},
		{append(bake, "--image-kernel", "eki-12345678"), "are for --virtualization paravirtual"},
		{append(bake, "--name", strings.Repeat("n", 113)), "--name"},
		{[]string{"run", "--provider", "ec2", "--image", "f40"}, `--image: image "f40": not an image id`},
	} {
		state := t.TempDir()
		code, _, stderr := runCLI(append(tc.args, "--state-dir", state)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
		if builds, _ := os.ReadDir(filepath.Join(state, "builds")); len(builds) != 0 {
			t.Errorf("%v: a build state was written", tc.args)
		}
	}
}

// TestStatusEscapes: a failure the installer's console reported (kept in
// the state file) and a marker the guest printed reach the terminal
// without escapes or control characters; format characters show escaped.
func TestStatusEscapes(t *testing.T) {
	state := t.TempDir()
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	b := &install.Build{ID: "ks-esc", Kind: "bake", Provider: "libvirt", Status: install.StatusFailed, Created: time.Now(),
		Error:  "install failed: \x1b]52;c;Y3VybCBldmlsfHNo\x07Traceback\rok \u202eexe.txt",
		Result: &install.Result{Marker: "kscloud-installed \x1b[2J\x1b]0;t\x07sha256=ab"}}
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI("status", "--state-dir", state, "ks-esc")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.ContainsAny(out, "\x1b\x07\r\u202e") || !strings.Contains(out, `install failed: Tracebackok \u202eexe.txt`) || !strings.Contains(out, "kscloud-installed sha256=ab") {
		t.Fatalf("status output:\n%q", out)
	}
	var se bytes.Buffer
	fail(&se, "bake", &install.InstallError{Instance: "i-1", Last: []string{"\x1bP+q\x1b\\x\ry"}, Reason: "\x1b]0;x\x07boom"})
	if strings.ContainsAny(se.String(), "\x1b\x07\r") || !strings.Contains(se.String(), "  | xy\n") || !strings.Contains(se.String(), "install failed: boom") {
		t.Fatalf("failure output %q", se.String())
	}
}

// TestStatusRedacts: kscloud status (text and JSON) never prints a
// kickstart URL's credentials or query token, nor the rendered user-data
// or the HTTP delivery's path, which the state file keeps for a resume.
func TestStatusRedacts(t *testing.T) {
	state := t.TempDir()
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://deploy:hunter2@ks.example.com/f40.cfg?token=9f8e7d"
	b := &install.Build{ID: "ks-url", Kind: "bake", Provider: "ec2", Status: install.StatusFailed, Created: time.Now(),
		Spec:  install.Spec{Kickstart: url, Delivery: "url"},
		Error: "kickstart " + url + `: Get "` + url + `": connection refused`,
		Values: map[string]string{"bootparams": "ip=dhcp inst.ks=" + url, "userdata": "Ym9vdHBhcmFtcz0K", "http.token": "9f8e7d9f8e7d",
			"cmdline": "ip=dhcp inst.ks=http://10.0.2.2:4321/9f8e7d9f8e7d/ks.cfg"}}
	if err := store.Save(b); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(state, "builds", "ks-url.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", st.Mode(), err)
	}
	for _, args := range [][]string{{"status", "--state-dir", state, "ks-url"}, {"status", "--state-dir", state}, {"status", "--state-dir", state, "--output", "json"}} {
		code, out, stderr := runCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if strings.Contains(out, "hunter2") || strings.Contains(out, "9f8e7d") || strings.Contains(out, "Ym9vdHBhcmFtcz0K") {
			t.Errorf("%v: output holds a secret:\n%s", args, out)
		}
		if len(args) == 4 && !strings.Contains(out, "https://REDACTED@ks.example.com/f40.cfg?token=REDACTED") {
			t.Errorf("%v: output lost the URL's host and path:\n%s", args, out)
		}
	}
}

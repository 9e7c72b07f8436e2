package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{[]string{"bake", "--state-dir", t.TempDir(), "--ks", "x.ks", "--kernel", "k", "--initrd", "i", "--disk", "0"}, "--disk 0"},
		{[]string{"run", "--state-dir", t.TempDir(), "--image", "a", "--ks", "x.ks"}, "--image boots an installed system"},
		{[]string{"bake", "--state-dir", t.TempDir(), "--provider", "gce"}, `--provider "gce"`},
		{[]string{"bake", "--state-dir", t.TempDir(), "--output", "yaml"}, `--output "yaml"`},
		{[]string{"bake", "--state-dir", t.TempDir(), "--resume", "ks-none"}, "no such build"},
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

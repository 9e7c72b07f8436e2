package main

import (
	"strings"
	"testing"
)

// Machine, network and format flags are checked before anything exists:
// one line, non-zero exit.
func TestHostFlagErrors(t *testing.T) {
	base := func(extra ...string) []string {
		return append([]string{"bake", "--state-dir", t.TempDir(), "--ks", "x.ks", "--kernel", "k", "--initrd", "i"}, extra...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{base("--accel", "hvf"), `--accel "hvf": want auto, kvm or tcg`},
		{base("--boot", "coreboot"), `--boot "coreboot": want bios or uefi`},
		{base("--cpu", "host-model"), `--cpu "host-model": want host-passthrough`},
		{base("--accel", "tcg", "--cpu", "host-passthrough"), "--cpu host-passthrough: needs KVM"},
		{base("--network", "bridge="), "--network bridge=: name the bridge"},
		{base("--format", "ova"), `--format "ova": want qcow2, raw, vmdk or vdi`},
		{base("--provider", "ec2", "--accel", "kvm"), "--accel, --boot, --cpu and --network are for the libvirt provider"},
		{base("--provider", "opennebula", "--boot", "uefi"), "--accel, --boot, --cpu and --network are for the libvirt provider"},
		{[]string{"images", "export", "img", "--format", "qed", "/tmp/x"}, `--format "qed"`},
		{[]string{"images", "export", "img", "--compress", "gzip", "/tmp/x"}, `--compress "gzip": want zstd or xz`},
		{[]string{"images", "import", "/tmp/x.raw"}, "--provenance FILE is required"},
	} {
		code, _, stderr := runCLI(tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: more than one line: %q", tc.args, stderr)
		}
	}
}

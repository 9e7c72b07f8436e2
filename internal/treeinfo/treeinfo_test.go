package treeinfo

import "testing"

func TestTreeArch(t *testing.T) {
	for in, want := range map[string]string{"": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"} {
		if got := Arch(in); got != want {
			t.Errorf("treeArch(%q) = %q", in, got)
		}
	}
}

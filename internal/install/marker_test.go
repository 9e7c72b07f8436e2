package install

import (
	"strings"
	"testing"
)

func TestDefaultMarker(t *testing.T) {
	for in, want := range map[string]string{
		"...\r\nkscloud-installed sha256=ab12\r\n":                           "kscloud-installed sha256=ab12",
		"Fedora Linux 40\r\nKernel 6.8 on an x86_64\r\n\r\nvm1 login: ":      "login: ",
		"vm1 login: \r\n[   12.3] random: crng init done\r\n":                "login: \r", // the caller trims
		"CentOS Linux 7 (Core)\nKernel 3.10 on an x86_64\n\nc7 login:":       "login:",
		"Last login: Sun Nov 22 05:00:00 on ttyS0\r\n":                       "",
		"Starting installer, one moment...\r\nInstalling bash (1/9)\r\n":     "",
		"auth: set root login: disabled for ssh\r\nRunning post-install\r\n": "",
	} {
		if got := DefaultMarker.FindString(in); got != want {
			t.Errorf("%q: matched %q, want %q", in, got, want)
		}
	}
}

func TestDescribeFitsEC2(t *testing.T) {
	p := &Provenance{KscloudVersion: "v0.3.0-12-gabcdef0", KickstartSHA256: strings.Repeat("a", 64),
		KickstartSource: "https://ks.example.com/" + strings.Repeat("very-long-directory/", 12) + "fedora-40-server.ks",
		GitRevision:     strings.Repeat("b", 40), GitDirty: true, Build: "ks-20261122-0123456789ab"}
	d := p.Describe()
	if len(d) > MaxDescription {
		t.Fatalf("%d bytes: %s", len(d), d)
	}
	for _, want := range []string{p.KickstartSHA256, p.GitRevision + "+dirty", p.Build, "fedora-40-server.ks", "src:..."} {
		if !strings.Contains(d, want) {
			t.Errorf("%q lacks %q", d, want)
		}
	}
	p.KickstartSource = "/srv/ks/f40.ks"
	if d := p.Describe(); !strings.Contains(d, " src:/srv/ks/f40.ks ") {
		t.Errorf("short source changed: %q", d)
	}
}

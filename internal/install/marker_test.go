package install

import "testing"

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

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nchookd.toml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShippedConfigIsTheDefaults(t *testing.T) {
	c, err := Load("../../packaging/nchookd.toml", true)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Encode()
	b, _ := Default().Encode()
	if string(a) != string(b) {
		t.Fatalf("packaging/nchookd.toml differs from Default():\n%s\n----\n%s", a, b)
	}
}

func TestMissingDefaultFileMeansDefaults(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "absent.toml"), false)
	if err != nil || c.Hook.Socket != DefaultSocket {
		t.Fatalf("got %v, %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.toml"), true); err == nil {
		t.Fatal("explicit missing file accepted")
	}
}

func TestCatalog(t *testing.T) {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, []byte("k"), 0o644)
	p := write(t, `
[policy]
vnc = "off"
modes = ["in-place"]
[installer.f40]
kernel = "`+k+`"
initrd = "`+i+`"
`)
	c, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.AllowsMode("bake") || !c.AllowsMode("in-place") || c.VNCListenAddr() != "" {
		t.Fatalf("policy not applied: %+v", c.Policy)
	}
	errs := c.Check()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `installer "f40": initrd`) {
		t.Fatalf("Check: %v", errs)
	}
	os.WriteFile(i, []byte("i"), 0o644)
	if errs := c.Check(); len(errs) != 0 {
		t.Fatalf("Check after fix: %v", errs)
	}
}

func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", "[policy]\nvnc_listn = \"x\"\n", "unknown key policy.vnc_listn"},
		{"syntax", "[policy\n", "line 2: expected"},
		{"bad vnc", "[policy]\nvnc = \"public\"\n", `policy.vnc "public"`},
		{"address without listen", "[policy]\nvnc = \"address\"\n", "vnc_listen"},
		{"bad mode", "[policy]\nmodes = [\"fry\"]\n", `unknown mode "fry"`},
		{"relative kernel", "[installer.x]\nkernel = \"vmlinuz\"\ninitrd = \"/i\"\n", `installer "x"`},
		{"bad name", "[installer.\"a/b\"]\nkernel = \"/k\"\ninitrd = \"/i\"\n", `installer "a/b"`},
		{"bad on_error", "[hook]\non_error = \"maybe\"\n", "hook.on_error"},
		{"bad duration", "[hook]\ntimeout = \"soon\"\n", "timeout"},
		{"metrics not loopback", "[metrics]\nlisten = \"0.0.0.0:9639\"\n", "metrics.listen"},
		{"metrics any address", "[metrics]\nlisten = \":9639\"\n", "metrics.listen"},
		{"metrics no port", "[metrics]\nlisten = \"127.0.0.1\"\n", "metrics.listen"},
		{"metrics port 0", "[metrics]\nlisten = \"127.0.0.1:0\"\n", "metrics.listen"},
		{"metrics port too big", "[metrics]\nlisten = \"127.0.0.1:65536\"\n", "metrics.listen"},
		{"metrics port negative", "[metrics]\nlisten = \"[::1]:-1\"\n", "metrics.listen"},
		{"metrics service name", "[metrics]\nlisten = \"localhost:http\"\n", "metrics.listen"},
		{"metrics empty port", "[metrics]\nlisten = \"127.0.0.1:\"\n", "metrics.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(t, tc.body), true)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line containing %q", err, tc.want)
			}
			if tc.name != "syntax" && tc.name != "bad duration" && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestMetricsListen(t *testing.T) {
	for _, l := range []string{"127.0.0.1:9639", "[::1]:9639", "localhost:1", "127.0.0.2:65535"} {
		if _, err := Load(write(t, "[metrics]\nlisten = \""+l+"\"\n"), true); err != nil {
			t.Errorf("metrics.listen %q refused: %v", l, err)
		}
	}
}

// A reload applies what the daemon reads per request; the keys it read
// once at start are named so the reload can say they wait for a restart.
func TestRestartKeys(t *testing.T) {
	old := Default()
	same := Default()
	same.Hook.OnError = OnErrorBoot
	same.Policy.VNC = VNCOff
	if k := RestartKeys(old, same); len(k) != 0 {
		t.Errorf("policy and on_error changed: restart keys %v, want none", k)
	}
	changed := Default()
	changed.Hook.Socket = "/run/other.sock"
	changed.State.Dir = "/srv/nchookd"
	changed.Libvirt.URI = "qemu+ssh://x/system"
	changed.Metrics.Listen = "127.0.0.1:9639"
	changed.Hook.SocketGroup = "root"
	want := "hook.socket hook.socket_group state.dir libvirt.uri metrics.listen"
	if k := strings.Join(RestartKeys(old, changed), " "); k != want {
		t.Errorf("restart keys %q, want %q", k, want)
	}
}

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

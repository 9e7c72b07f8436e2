package ec2endpoint

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kscloud/kscloud/test/ncsim"
)

// Hook is an nc-hooks directory holding the real Eucalyptus hook as `make
// install` lays it out — the static dispatcher (hooks/eucalyptus/dispatch)
// in nc-hooks, the static Go hook (hooks/eucalyptus) beside it, outside
// nc-hooks — and the nchookd configuration the hook reads.
type Hook struct {
	Dir    string   // the nc-hooks directory: NodeOptions.HooksDir
	Env    []string // the hooks' environment: NodeOptions.HookEnv
	Config string   // the nchookd.toml the hook (and a daemon, if a test starts one) reads
	Socket string   // where nchookd serve would listen; no daemon: the hook works alone
}

// InstallHook builds the real hook into a fresh nc-hooks directory and
// writes an nchookd configuration whose instances_root is nodeDir's
// instances directory, so that the hook acts on the endpoint's launches.
func InstallHook(t testing.TB, nodeDir, libvirtURI string) Hook {
	t.Helper()
	base := t.TempDir()
	h := Hook{
		Dir:    filepath.Join(base, "nc-hooks"),
		Config: filepath.Join(base, "nchookd.toml"),
		Socket: filepath.Join(base, "nchookd.sock"),
	}
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	goHook := filepath.Join(base, "lib", "nchookd-euca-hook")
	cmd := exec.Command("go", "build", "-trimpath", "-o", goHook, "github.com/kscloud/kscloud/hooks/eucalyptus")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the Eucalyptus hook: %v\n%s", err, out)
	}
	if err := ncsim.BuildDispatcher(goHook, filepath.Join(h.Dir, "nchookd")); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("[hook]\nsocket = %q\ninstances_root = [%q]\nsocket_group = \"\"\n[state]\ndir = %q\n[libvirt]\nuri = %q\n",
		h.Socket, filepath.Join(nodeDir, "instances"), filepath.Join(base, "state"), libvirtURI)
	if err := os.WriteFile(h.Config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Env = append(os.Environ(), "NCHOOKD_CONFIG="+h.Config, "NCHOOKD_SOCKET="+h.Socket)
	return h
}

// Package e2e holds the end-to-end tests: real binaries, a real libvirtd
// with real QEMU guests (software emulation), the Eucalyptus NC's launch
// sequence played by test/ncsim. Run them with 'make test' (root:
// it starts libvirtd) or 'make e2e'.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kscloud/kscloud/test/ncsim"
)

// bins holds the binaries built once for all tests.
var bins struct {
	dir     string
	nchookd string
	hook    string // the Go hook (make install: /usr/lib/nchookd/nchookd-euca-hook)
	ncHook  string // the dispatcher nc-hooks holds, handing pre-boot/pre-clean to hook
	kscloud string
	// oneDeploy is the OpenNebula deploy wrapper's Go half (make install:
	// /usr/lib/nchookd/nchookd-one-deploy).
	oneDeploy string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kscloud-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.nchookd = filepath.Join(dir, "nchookd")
	bins.hook = filepath.Join(dir, "nchookd-euca-hook")
	bins.kscloud = filepath.Join(dir, "kscloud")
	build := func(out, pkg string, static bool) {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = os.Environ()
		if static {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	build(bins.nchookd, "github.com/kscloud/kscloud/cmd/nchookd", false)
	build(bins.hook, "github.com/kscloud/kscloud/hooks/eucalyptus", true)
	build(bins.kscloud, "github.com/kscloud/kscloud/cmd/kscloud", false)
	bins.oneDeploy = filepath.Join(dir, "nchookd-one-deploy")
	build(bins.oneDeploy, "github.com/kscloud/kscloud/hooks/opennebula", true)
	bins.ncHook = filepath.Join(dir, "nc-hook")
	if err := ncsim.BuildDispatcher(bins.hook, bins.ncHook); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

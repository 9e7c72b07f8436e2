package hookd

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
)

func oneTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "preboot", "testdata", "opennebula", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The one-deploy op over the real socket: a VM with directives gets its
// domain back rewritten (raw bytes after the answer line, as large as the
// domain is), recorded in the store; one without gets no domain; a bad
// vm.xml gets an error and no domain; bad payload lengths get an error,
// not a hang; a status request on the same server still works.
func TestServerOneDeploy(t *testing.T) {
	store, err := OpenStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{"/var/lib/one/datastores"}
	cfg.Installer["fedora-40"] = config.Installer{Kernel: "/k", Initrd: "/i"}
	srv := New(quiet, cfg, store, "test")
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	dom := oneTestdata(t, "deployment-7.0.xml")
	dfile := "/var/lib/one//datastores/0/42/deployment.0"
	call := func(vm []byte) (*hookproto.OneDeployResponse, []byte) {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		resp, out, err := hookproto.CallOneDeploy(cctx, sock, hookproto.OneDeploy{DeployFile: dfile, Host: "node1", DomainXML: dom, VMXML: vm})
		if err != nil {
			t.Fatal(err)
		}
		return resp, out
	}
	resp, out := call(oneTestdata(t, "vm-userdata.xml"))
	if !resp.OK || out == nil || resp.Outcome == nil || !resp.Outcome.Changed || resp.Outcome.Instance != "one-42" || resp.Outcome.DomainFile != dfile {
		t.Fatalf("rewrite: %+v %+v", resp, resp.Outcome)
	}
	if !bytes.Contains(out, []byte("<on_reboot>destroy</on_reboot>")) || !bytes.Contains(out, []byte("console.log")) {
		t.Fatalf("rewritten domain:\n%s", out)
	}
	if st, ok := store.Get("one-42"); !ok || st.Mode != "in-place" {
		t.Fatalf("not recorded: %+v", st)
	}
	resp, out = call(oneTestdata(t, "vm-none.xml"))
	if !resp.OK || out != nil || resp.Outcome.Changed {
		t.Fatalf("no directives: %+v", resp)
	}
	resp, out = call([]byte("<VM><ID>41</ID></VM>"))
	if resp.OK || out != nil || !strings.Contains(resp.Error, "stale vm.xml") {
		t.Fatalf("stale vm.xml: %+v", resp)
	}
	resp, out = call(nil)
	if resp.OK || out != nil || !strings.Contains(resp.Error, "no vm.xml") {
		t.Fatalf("no vm.xml: %+v", resp)
	}
	// Lengths out of bounds.
	for _, hdr := range []string{
		`{"op":"one-deploy","deploy_file":"/x/deployment.0","domain_len":0,"vm_len":0}`,
		`{"op":"one-deploy","deploy_file":"/x/deployment.0","domain_len":99999999,"vm_len":0}`,
		`{"op":"one-deploy","deploy_file":"/x/deployment.0","domain_len":10,"vm_len":-1}`,
	} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(hdr + "\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.Contains(line, "bad one-deploy payload") {
			t.Fatalf("%s: answer %q", hdr, line)
		}
	}
	if r, err := hookproto.Call(ctx, sock, hookproto.Request{Op: hookproto.OpStatus}); err != nil || !r.OK {
		t.Fatalf("status after one-deploy: %+v %v", r, err)
	}
}

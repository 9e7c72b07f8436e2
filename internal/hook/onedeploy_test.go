package hook

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func oneFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "preboot", "testdata", "opennebula", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// PrepareOneDeploy in process (the binary and its exec are tested in
// hooks/opennebula): no original given is the only error; without a
// deployment file the input passes on unread; the fallback rewrite uses
// the wrapper's own configuration.
func TestPrepareOneDeploy(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := PrepareOneDeploy(nil, strings.NewReader("x"), func(string) string { return "" }, &stderr); err == nil {
		t.Fatal("no arguments accepted")
	}
	d, err := PrepareOneDeploy([]string{"/orig"}, strings.NewReader("<domain/>"), func(string) string { return "" }, &stderr)
	if err != nil || d.Rest == nil || d.Changed || d.Original != "/orig" || len(d.Args) != 0 {
		t.Fatalf("%+v %v", d, err)
	}
	if rest, _ := io.ReadAll(d.Rest); string(rest) != "<domain/>" || !strings.Contains(stderr.String(), "no deployment file") {
		t.Fatalf("input not passed on: %q, stderr %q", rest, stderr.String())
	}

	root := t.TempDir()
	vmDir := filepath.Join(root, "0", "42")
	os.MkdirAll(vmDir, 0o755)
	os.WriteFile(filepath.Join(vmDir, VMXMLFile), oneFixture(t, "vm-attrs.xml"), 0o644)
	cfg := filepath.Join(root, "nchookd.toml")
	os.WriteFile(cfg, []byte("[hook]\ninstances_root = [\""+root+"\"]\n"), 0o644)
	env := map[string]string{EnvConfig: cfg, EnvSocket: filepath.Join(root, "absent.sock")}
	in := oneFixture(t, "deployment-6.10.xml")
	stderr.Reset()
	d, err = PrepareOneDeploy([]string{"/orig", filepath.Join(vmDir, "deployment.3"), "node1", "extra"}, bytes.NewReader(in), func(k string) string { return env[k] }, &stderr)
	if err != nil || !d.Changed || d.Rest != nil || stderr.Len() != 0 {
		t.Fatalf("%+v %v %q", d, err, stderr.String())
	}
	if strings.Join(d.Args, " ") != filepath.Join(vmDir, "deployment.3")+" node1 extra" {
		t.Fatalf("arguments for the original: %q", d.Args)
	}
	if !bytes.Contains(d.Domain, []byte(vmDir+"/console.log")) || !bytes.Contains(d.Domain, []byte("<on_reboot>destroy</on_reboot>")) {
		t.Fatalf("not rewritten:\n%s", d.Domain)
	}
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// TestOpenNebulaCLI drives kscloud itself against the OpenNebula test
// endpoint (plain mode, installer played): bake → image with provenance,
// run --image boots it, run in place, cleanup --orphans.
func TestOpenNebulaCLI(t *testing.T) {
	srv := oneendpoint.Start(t, oneendpoint.Options{Install: 300 * time.Millisecond})
	dir := t.TempDir()
	auth := filepath.Join(dir, "one_auth")
	os.WriteFile(auth, []byte(srv.Session()+"\n"), 0o600)
	ks := filepath.Join(dir, "base.ks")
	os.WriteFile(ks, []byte("text\nrootpw --lock\npoweroff\n"), 0o644)
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, []byte("kernel"), 0o644)
	os.WriteFile(i, []byte("initrd"), 0o644)
	state := filepath.Join(dir, "state")
	common := []string{"--provider", "opennebula", "--one-endpoint", srv.URL(), "--one-auth", auth, "--state-dir", state, "--output", "json"}
	launch := append([]string{"--no-lint"}, common...)

	code, out, stderr := runCLI(append([]string{"bake", "--ks", ks, "--kernel", k, "--initrd", i, "--name", "base", "--disk", "1"}, launch...)...)
	if code != 0 {
		t.Fatalf("bake: exit %d: %s", code, stderr)
	}
	var res struct {
		Build  string `json:"build"`
		Result struct {
			ImageID    string `json:"image_id"`
			InstanceID string `json:"instance_id"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !strings.HasPrefix(res.Result.ImageID, "img-") {
		t.Fatalf("bake output %q: %v", out, err)
	}
	var n int
	fmtSscan(strings.TrimPrefix(res.Result.ImageID, "img-"), &n)
	if a := srv.ImageAttrs(n); a["KSCLOUD_BUILD"] != res.Build || !strings.Contains(a["DESCRIPTION"], "Source: base.ks") || a["KSCLOUD_KS_SHA256"] == "" {
		t.Errorf("image %s attributes %v: want the build, DESCRIPTION as seed 003, the kickstart's sha256", res.Result.ImageID, a)
	}

	code, out, stderr = runCLI(append([]string{"run", "--image", res.Result.ImageID}, launch...)...)
	if code != 0 {
		t.Fatalf("run --image: exit %d: %s", code, stderr)
	}
	json.Unmarshal([]byte(out), &res)
	if !strings.HasPrefix(res.Result.InstanceID, "vm-") {
		t.Fatalf("run --image output %q", out)
	}

	code, out, stderr = runCLI(append([]string{"run", "--ks", ks, "--kernel", k, "--initrd", i, "--vnc"}, launch...)...)
	if code != 0 {
		t.Fatalf("run in place: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "resumed from its disk") || !strings.Contains(out, `"vnc": "vnc://node1:59`) {
		t.Errorf("run in place said: %s\n%s", stderr, out)
	}

	// An orphan: a target volume tagged by kscloud that no state file owns.
	p, err := opennebula.New(context.Background(), opennebula.Config{Endpoint: srv.URL(), Session: srv.Session()})
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := p.CreateVolume(context.Background(), cloud.VolumeSpec{SizeGiB: 1, Tags: cloud.Tags{cloud.TagBuild: "ks-gone", cloud.TagCreator: "kscloud", cloud.TagRole: "target"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // LOCKED → READY
	code, _, stderr = runCLI(append([]string{"cleanup", "--orphans"}, common...)...)
	if code != 0 || !strings.Contains(stderr, "removed orphan volume "+orphan.ID) {
		t.Fatalf("cleanup --orphans: exit %d: %s", code, stderr)
	}
	if imgs, _ := p.Images(context.Background(), cloud.Tags{cloud.TagRole: "image"}); len(imgs) != 1 {
		t.Errorf("after --orphans: images %+v: want the baked one kept", imgs)
	}

	// Bad credentials: one clear line.
	os.WriteFile(auth, []byte("kscloud:wrong\n"), 0o600)
	code, _, stderr = runCLI(append([]string{"run", "--image", res.Result.ImageID}, launch...)...)
	if code == 0 || !strings.Contains(stderr, "User couldn't be authenticated") || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
		t.Errorf("bad credentials: exit %d: %q", code, stderr)
	}
}

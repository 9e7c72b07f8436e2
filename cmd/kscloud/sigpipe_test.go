package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// TestMain lets a test run this test binary as kscloud itself (main, with
// its signal setup, and real file descriptors 1 and 2).
func TestMain(m *testing.M) {
	if os.Getenv("KSCLOUD_TEST_AS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestClosedStdoutKeepsBuilding: kscloud bake … 2>&1 | head -3. The
// reader goes away after the third progress line, while the build has a
// volume and an installer VM; the build must go on to its end (done, only
// the image left), not die of SIGPIPE as "running" with both behind.
func TestClosedStdoutKeepsBuilding(t *testing.T) {
	t.Parallel() // ~10 s of the endpoint's delays each
	srv := oneendpoint.Start(t, oneendpoint.Options{Install: 500 * time.Millisecond})
	dir, auth, ks := oneCLIFiles(t, srv)
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, []byte("kernel"), 0o644)
	os.WriteFile(i, []byte("initrd"), 0o644)
	state := filepath.Join(dir, "state")
	cmd := exec.Command(os.Args[0], "bake", "--no-lint", "--provider", "opennebula", "--one-endpoint", srv.URL(), "--one-auth", auth,
		"--state-dir", state, "--ks", ks, "--kernel", k, "--initrd", i, "--disk", "1")
	cmd.Env = append(os.Environ(), "KSCLOUD_TEST_AS_MAIN=1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var id string
	sc := bufio.NewScanner(r)
	for n := 0; n < 3 && sc.Scan(); n++ {
		if m := regexp.MustCompile(`build (ks-[0-9a-f-]+) `).FindStringSubmatch(sc.Text()); m != nil {
			id = m[1]
		}
	}
	r.Close() // head exits
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("kscloud bake did not end within 2 minutes")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("kscloud bake with its output closed: %v (want exit 0: the build goes on)", err)
	}
	if id == "" {
		t.Fatal("no build id in the first lines")
	}
	store, err := install.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != install.StatusDone || b.Result == nil || b.ResourceSummary() != "image "+b.Result.ImageID+" (image)" {
		t.Fatalf("build %s: status %s, resources %s: want done, only the image left", id, b.Status, b.ResourceSummary())
	}
}

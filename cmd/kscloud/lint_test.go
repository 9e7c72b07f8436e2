package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/kickstart"
)

// lintGood is a kickstart with no findings for a bake (internal/kickstart's).
var lintGood = func() string {
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "kickstart", "testdata", "good-bake.ks"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func runLint(r lintRun, inputs ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := r.Run(inputs, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLintRunExitCodesAndText(t *testing.T) {
	dir := t.TempDir()
	clean := writeFile(t, dir, "clean.ks", lintGood)
	bad := writeFile(t, dir, "bad.ks", strings.Replace(lintGood, "poweroff", "reboot", 1))

	code, out, errs := runLint(lintRun{Mode: kickstart.ModeBake}, clean)
	if code != lintClean || out != "" || errs != "" {
		t.Errorf("clean: %d %q %q", code, out, errs)
	}
	code, out, _ = runLint(lintRun{Mode: kickstart.ModeBake}, bad)
	want := bad + ":17: error: power-action-mode: reboot in a bake boots"
	if code != lintErrors || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
		t.Errorf("bad: %d %q, want prefix %q", code, out, want)
	}
	code, out, _ = runLint(lintRun{Mode: kickstart.ModeInPlace}, bad)
	if code != lintClean || out != "" {
		t.Errorf("bad in place: %d %q", code, out)
	}
	missing := filepath.Join(dir, "missing.ks")
	code, out, errs = runLint(lintRun{Mode: kickstart.ModeBake}, missing, bad)
	if code != lintUsage || !strings.HasPrefix(errs, "kscloud lint: read "+missing+": open "+missing) || strings.Count(errs, "\n") != 1 {
		t.Errorf("missing: %d %q", code, errs)
	}
	if !strings.Contains(out, "bad.ks:17:") {
		t.Errorf("the readable file was not checked: %q", out)
	}
	if code, _, errs := runLint(lintRun{Output: "yaml"}, clean); code != lintUsage || !strings.Contains(errs, `--output "yaml"`) {
		t.Errorf("format: %d %q", code, errs)
	}
	if code, _, errs := runLint(lintRun{Version: "RHEL99"}, clean); code != lintUsage || !strings.Contains(errs, "--version") {
		t.Errorf("version: %d %q", code, errs)
	}
	if _, err := parseLintMode("later"); err == nil {
		t.Error("ParseMode accepted a bad mode")
	}
}

func TestLintRunJSON(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.ks", strings.Replace(lintGood, "rootpw --lock", "rootpw secret", 1))
	clean := writeFile(t, dir, "clean.ks", lintGood)
	code, out, _ := runLint(lintRun{Mode: kickstart.ModeBake, Output: "json"}, bad, clean)
	if code != lintClean {
		t.Fatalf("exit %d", code)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(got) != 1 || got[0]["file"] != bad || got[0]["line"] != 6.0 || got[0]["severity"] != "info" || got[0]["rule"] != "rootpw-plaintext" {
		t.Fatalf("got %v", got)
	}
	// Key order is part of the format.
	if i := strings.Index(out, `"file"`); i < 0 || !(i < strings.Index(out, `"line"`) && strings.Index(out, `"line"`) < strings.Index(out, `"severity"`) && strings.Index(out, `"severity"`) < strings.Index(out, `"rule"`) && strings.Index(out, `"rule"`) < strings.Index(out, `"message"`)) {
		t.Errorf("key order: %s", out)
	}
	_, out, _ = runLint(lintRun{Output: "json"}, clean)
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("no findings should be [], got %q", out)
	}
}

func TestLintRunURLs(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ks/main.ks", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Replace(lintGood, "selinux --enforcing", "%include parts.ks", 1)))
	})
	mux.HandleFunc("/ks/parts.ks", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("selinux --enforcing --bogus\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	r := lintRun{Mode: kickstart.ModeBake, Fetch: kickstart.HTTPFetcher(5*time.Second, 1<<20)}
	code, out, errs := runLint(r, srv.URL+"/ks/main.ks")
	if code != lintErrors || !strings.HasPrefix(out, srv.URL+"/ks/parts.ks:1: error: bad-option:") {
		t.Errorf("include over http: %d %q %q", code, out, errs)
	}
	code, _, errs = runLint(r, srv.URL+"/ks/none.ks")
	if code != lintUsage || !strings.Contains(errs, "kscloud lint: fetch "+srv.URL+"/ks/none.ks") || !strings.Contains(errs, "404") {
		t.Errorf("404: %d %q", code, errs)
	}
	small := lintRun{Fetch: kickstart.HTTPFetcher(5*time.Second, 10), MaxBytes: 10}
	if code, _, errs := runLint(small, srv.URL+"/ks/main.ks"); code != lintUsage || !strings.Contains(errs, "larger than 10 bytes") {
		t.Errorf("limit: %d %q", code, errs)
	}
}

// Package packages checks what the packages ship beyond the binaries; the
// install test itself is scripts/test-packages.sh (make test-packages).
package packages

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// envRead finds the environment variables Go code reads: os.Getenv("X"),
// os.LookupEnv("X"), and Env… = "X" constants (the hook's getenv).
var envRead = regexp.MustCompile(`(?:Getenv|LookupEnv)\("([A-Z][A-Z0-9_]*)"\)|\bEnv[A-Za-z]*\s*=\s*"([A-Z][A-Z0-9_]*)"`)

// TestManEnvironment: every variable the code of a binary reads is in the
// ENVIRONMENT section of its man page.
func TestManEnvironment(t *testing.T) {
	for _, tc := range []struct {
		man  string
		dirs []string
	}{
		{"../../packaging/man/kscloud.1", []string{"../../cmd/kscloud", "../../internal/install", "../../internal/cloud"}},
		{"../../packaging/man/nchookd.8", []string{"../../cmd/nchookd", "../../hooks", "../../internal/hook", "../../internal/hookproto", "../../internal/hookd", "../../internal/preboot", "../../internal/config"}},
	} {
		b, err := os.ReadFile(tc.man)
		if err != nil {
			t.Fatal(err)
		}
		man := string(b)
		i := strings.Index(man, ".SH ENVIRONMENT")
		if i < 0 {
			t.Fatalf("%s: no ENVIRONMENT section", tc.man)
		}
		sec := man[i+len(".SH ENVIRONMENT"):]
		if j := strings.Index(sec, "\n.SH "); j >= 0 {
			sec = sec[:j]
		}
		found := 0
		for _, d := range tc.dirs {
			filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") ||
					strings.Contains(p, "cloudtest") {
					return err
				}
				src, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				for _, m := range envRead.FindAllStringSubmatch(string(src), -1) {
					name := m[1] + m[2]
					found++
					if !strings.Contains(sec, name) {
						t.Errorf("%s reads $%s; %s's ENVIRONMENT does not list it", p, name, filepath.Base(tc.man))
					}
				}
				return nil
			})
		}
		if found == 0 {
			t.Fatalf("%s: found no variable read in %v", tc.man, tc.dirs)
		}
	}
}

// TestMakeHelp: make help lists every target of the Makefile.
func TestMakeHelp(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := regexp.MustCompile(`(?m)^([a-zA-Z0-9_-]+):`).FindAllStringSubmatch(string(b), -1)
	if len(targets) < 5 {
		t.Fatalf("found %d targets in the Makefile", len(targets))
	}
	out, err := exec.Command("make", "--no-print-directory", "-s", "-C", "../..", "help").Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	for _, m := range targets {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(m[1]) + ` +\S`).Match(out) {
			t.Errorf("make help does not list target %s (give it a '## description'):\n%s", m[1], out)
		}
	}
}

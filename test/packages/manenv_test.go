// Package packages checks what the packages ship beyond the binaries; the
// install test itself is scripts/test-packages.sh (make test-packages).
package packages

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// envRead finds the environment variables Go code reads: os.Getenv("X"),
// os.LookupEnv("X"), and Env… = "X" constants (the hook's getenv, the AWS
// SDK's names).
var envRead = regexp.MustCompile(`(?:Getenv|LookupEnv)\("([A-Z][A-Z0-9_]*)"\)|\bEnv[A-Za-z]*\s*=\s*"([A-Z][A-Z0-9_]*)"`)

// stdRead maps a call to the variables the standard library reads for it.
var stdRead = []struct {
	call  *regexp.Regexp
	names []string
}{
	{regexp.MustCompile(`\bos\.UserHomeDir\(`), []string{"HOME"}},
	{regexp.MustCompile(`\bos\.(?:MkdirTemp|CreateTemp)\(""|\bos\.TempDir\(`), []string{"TMPDIR"}},
	// The default transport (and a client without its own) takes a proxy
	// from the environment.
	{regexp.MustCompile(`\bhttp\.ProxyFromEnvironment\b|\bhttp\.Default(?:Client|Transport)\b|\bhttp\.Client\{(?:[^}T]|T[^r])*\}`),
		[]string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}},
	{regexp.MustCompile(`\bexec\.Command(?:Context)?\((?:ctx, )?"[^"/]+"`), []string{"PATH"}},
}

// comment matches a line of comment (a doc's example is no read).
var comment = regexp.MustCompile(`(?m)^\s*//.*$`)

// cRead and shRead find what the hooks' C and shell sources read:
// getenv("X"), and ${X:-default}.
var (
	cRead  = regexp.MustCompile(`\bgetenv\("([A-Z][A-Z0-9_]*)"\)`)
	shRead = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*):?-`)
)

// manSection returns the section of a man page headed .SH name.
func manSection(t *testing.T, man, name string) string {
	t.Helper()
	b, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), ".SH "+name)
	if i < 0 {
		t.Fatalf("%s: no %s section", man, name)
	}
	sec := string(b)[i+len(".SH "+name):]
	if j := strings.Index(sec, "\n.SH "); j >= 0 {
		sec = sec[:j]
	}
	return sec
}

// listed reports whether an ENVIRONMENT section names a variable, as
// itself or under a PREFIX_* of the section (AWS_*).
func listed(sec, name string) bool {
	if regexp.MustCompile(`\b` + name + `\b`).MatchString(sec) {
		return true
	}
	for _, m := range regexp.MustCompile(`\b([A-Z][A-Z0-9]*_)\*`).FindAllStringSubmatch(sec, -1) {
		if strings.HasPrefix(name, m[1]) {
			return true
		}
	}
	return false
}

// goSources lists the Go files built into the packages' programs that are
// not the standard library's: the project's and every module they link.
func goSources(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f",
		"{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}\n{{end}}{{range .CgoFiles}}{{$d}}/{{.}}\n{{end}}{{end}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// TestManEnvironment: every variable a program of the packages reads is in
// the ENVIRONMENT section of its man page: what its own code and every
// module it links read (go list -deps), what the standard library reads for
// the calls it makes, what the hooks' C and shell sources read.
func TestManEnvironment(t *testing.T) {
	for _, tc := range []struct {
		man   string
		pkgs  []string
		other string // C and shell sources under this directory
	}{
		{"../../packaging/man/kscloud.1", []string{"./cmd/kscloud"}, ""},
		{"../../packaging/man/nchookd.8", []string{"./cmd/nchookd", "./hooks/..."}, "../../hooks"},
	} {
		sec := manSection(t, tc.man, "ENVIRONMENT")
		reads := map[string][]string{} // variable → the files reading it
		for _, p := range goSources(t, tc.pkgs...) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			src = comment.ReplaceAll(src, nil)
			for _, m := range envRead.FindAllStringSubmatch(string(src), -1) {
				reads[m[1]+m[2]] = append(reads[m[1]+m[2]], p)
			}
			for _, s := range stdRead {
				if s.call.Match(src) {
					for _, n := range s.names {
						reads[n] = append(reads[n], p)
					}
				}
			}
		}
		if tc.other != "" {
			filepath.WalkDir(tc.other, func(p string, e os.DirEntry, err error) error {
				if err != nil || e.IsDir() || strings.HasSuffix(p, ".go") {
					return err
				}
				src, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				re := cRead
				switch {
				case strings.HasSuffix(p, ".c"):
				case strings.HasPrefix(string(src), "#!/bin/sh"):
					re = shRead
				default:
					return nil
				}
				for _, m := range re.FindAllStringSubmatch(string(src), -1) {
					reads[m[1]] = append(reads[m[1]], p)
				}
				return nil
			})
		}
		if len(reads) < 5 {
			t.Fatalf("%s: found only %d variables read by %v", tc.man, len(reads), tc.pkgs)
		}
		var names []string
		for n := range reads {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !listed(sec, n) {
				t.Errorf("%s reads $%s; %s's ENVIRONMENT does not list it", reads[n][0], n, filepath.Base(tc.man))
			}
		}
	}
}

// TestManFiles: kscloud(1)'s FILES names the state directory and what
// kscloud keeps there, the credentials it reads, and every completion
// script the package installs.
func TestManFiles(t *testing.T) {
	files := manSection(t, "../../packaging/man/kscloud.1", "FILES")
	want := []string{"/var/lib/kscloud/", "~/.local/state/kscloud/", "builds/", "summary.jsonl", "~/.one/one_auth", "~/.one/one_endpoint", "~/.aws/credentials"}
	pkg, err := os.ReadFile("../../packaging/nfpm/kscloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*dst: (/usr/share/\S*/(?:kscloud|_kscloud|kscloud\.fish))$`).FindAllStringSubmatch(string(pkg), -1) {
		want = append(want, m[1])
	}
	if len(want) < 11 {
		t.Fatalf("found %d completion scripts in kscloud.yaml, want 4", len(want)-7)
	}
	for _, w := range want {
		if !strings.Contains(files, w) {
			t.Errorf("kscloud.1's FILES does not name %s", w)
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

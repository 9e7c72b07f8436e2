package kickstart

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzResolver serves every include from memory: a short fixed text, or the
// including text's own name for "self" (a cycle).
type fuzzResolver struct{ text string }

func (r fuzzResolver) Resolve(from, target string) (Source, error) {
	if strings.Contains(target, "missing") {
		return Source{}, os.ErrNotExist
	}
	name := "inc/" + target
	if target == "self" {
		name = from
	}
	return Source{Name: name, Data: []byte(r.text)}, nil
}

// lineBound is the largest line number a position in this source may have.
func lineBound(data []byte) int {
	n := bytes.Count(data, []byte("\n")) + 1
	if utf8.Valid(data) {
		n = max(n, len(pySplitLinesKeepEnds(string(data))))
	}
	return n
}

func checkPositions(t *testing.T, name string, data []byte, f *File, diags []Diagnostic, findings []Finding, includes map[string][]byte) {
	t.Helper()
	check := func(what string, p Pos) {
		src, ok := includes[p.File]
		if p.File == name {
			src, ok = data, true
		}
		if !ok {
			t.Fatalf("%s at %v: unknown file", what, p)
		}
		if p.Line < 1 || p.Line > lineBound(src) {
			t.Fatalf("%s at %v: outside the %d lines of %s", what, p, lineBound(src), p.File)
		}
	}
	for _, d := range diags {
		check("diagnostic "+d.Message, d.Pos)
	}
	for _, fd := range findings {
		check("finding "+fd.Rule, fd.Pos)
	}
	for _, c := range f.Commands {
		check("command "+c.Name, c.Pos)
	}
	for _, s := range f.Sections {
		check("section "+s.Kind, s.Pos)
		if s.EndPos.Line != 0 {
			check("end of "+s.Kind, s.EndPos)
		}
		for _, l := range s.Body {
			check("body line", l.Pos)
		}
	}
	_ = f.PowerAction()
	_ = f.InstallSources()
}

func FuzzParse(f *testing.F) {
	for _, c := range fuzzSeeds(f) {
		f.Add(c, "F45")
	}
	f.Add("%include self\n%post\n%include x\n%end\n", "RHEL9")
	f.Add("%ksappend a\n%ksappend missing\n", "RHEL7")
	f.Add("%post\n%include x\n", "F7")
	// Found by fuzzing: includes that include each other under new names
	// grew exponentially before the include budget (TestIncludeCountBound).
	f.Add("%include a\n%include b\n%include c\n%include d\n%include e\n%include f\n", "RHEL9")
	f.Fuzz(func(t *testing.T, text, version string) {
		if _, err := LookupVersion(version); err != nil {
			version = "RHEL9"
		}
		data := []byte(text)
		file, diags := Parse(Source{Name: "ks.cfg", Data: data}, Options{Version: version})
		checkPositions(t, "ks.cfg", data, file, diags, nil, nil)

		// With includes followed: every include serves a slice of the input.
		inc := text
		if len(inc) > 200 {
			inc = inc[:200]
		}
		res := fuzzResolver{text: inc}
		includes := map[string][]byte{}
		for _, target := range []string{"x", "a", "self"} {
			includes["inc/"+target] = []byte(inc)
		}
		file, findings := Lint(Source{Name: "ks.cfg", Data: data}, LintOptions{Version: version, Resolver: res, Mode: ModeBake})
		for _, i := range file.Includes {
			if i.Followed && i.Source != "ks.cfg" {
				includes[i.Source] = []byte(inc)
			}
		}
		checkPositions(t, "ks.cfg", data, file, nil, findings, includes)
	})
}

// fuzzSeeds are the conformance inputs: every command case and every corpus
// file, when ../shared is there (the fuzz target also runs as a plain test
// in CI, where it always is).
func fuzzSeeds(f *testing.F) []string {
	dir := conformanceDir(f)
	var seeds []string
	seen := map[string]bool{}
	for _, c := range loadCommandCases(f) {
		if !seen[c.Input] {
			seen[c.Input] = true
			seeds = append(seeds, c.Input+"\n")
		}
	}
	err := filepath.Walk(filepath.Join(dir, "corpus"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			seeds = append(seeds, string(data))
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	return seeds
}

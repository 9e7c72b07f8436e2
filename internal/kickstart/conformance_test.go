package kickstart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The conformance data (third-party kickstart corpus, pykickstart cases)
// lives in ../shared/conformance/kickstart beside the repository (see its
// README), not in it. CI always has it there; a clone with nothing beside
// it skips the suites that need it, saying so in one line.
func conformanceDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (go.mod) above the test directory")
		}
		dir = parent
	}
	cd := filepath.Join(filepath.Dir(dir), "shared", "conformance", "kickstart")
	if _, err := os.Stat(filepath.Join(cd, "pykickstart-command-cases.json")); err != nil {
		t.Skipf("kickstart conformance: did not run: no %s beside the repository (it runs where ../shared is, as in CI)", cd)
	}
	return cd
}

type commandCase struct {
	Version    string `json:"version"`
	Input      string `json:"input"`
	Expect     string `json:"expect"`
	Normalized string `json:"normalized"`
}

func loadCommandCases(t testing.TB) []commandCase {
	b, err := os.ReadFile(filepath.Join(conformanceDir(t), "pykickstart-command-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []commandCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

// Recorded verdicts that pykickstart itself does not produce: its test
// wraps these two lines in assertRaises(ValueError) ("No closing
// quotation"), but the recording kept the inner assert_parse as "ok".
// docs/kickstart-conformance.md lists them.
func knownCaseDisagreement(c commandCase) bool {
	return c.Expect == "ok" && strings.HasPrefix(c.Input, "harddrive --biospart=bios --dir=/the") &&
		(strings.HasSuffix(c.Input, `/the'/thingy.iso`) || strings.HasSuffix(c.Input, `/the"/thingy.iso`))
}

// Thresholds: the agreement reached when this test was written. A change
// that loses agreement fails here.
const (
	minCaseAgreement   = 6872 // of 6890 command cases
	minCorpusAgreement = 376  // of 376 corpus files
)

type tally struct{ agree, total int }

func (t tally) String() string {
	return fmt.Sprintf("%5d/%-5d %6.2f%%", t.agree, t.total, 100*float64(t.agree)/float64(max(t.total, 1)))
}

func logTable(t *testing.T, title string, per map[string]*tally) tally {
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		vi, _ := LookupVersion(names[i])
		vj, _ := LookupVersion(names[j])
		return vi.Num < vj.Num
	})
	var all tally
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", title)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-7s %s\n", n, per[n])
		all.agree += per[n].agree
		all.total += per[n].total
	}
	fmt.Fprintf(&b, "  %-7s %s", "overall", all)
	t.Log(b.String())
	return all
}

// TestConformanceCommandCases runs every command case of pykickstart's test
// suite through the parser and compares the verdict (accepted or error).
func TestConformanceCommandCases(t *testing.T) {
	cases := loadCommandCases(t)
	if len(cases) != 6890 {
		t.Fatalf("expected 6890 command cases, found %d", len(cases))
	}
	per := map[string]*tally{}
	for _, c := range cases {
		if per[c.Version] == nil {
			per[c.Version] = &tally{}
		}
		per[c.Version].total++
		msg, ok := checkCommandCase(c.Version, c.Input)
		if !ok {
			t.Errorf("%s %q: %s", c.Version, c.Input, msg)
			continue
		}
		got := "ok"
		if msg != "" {
			got = "error"
		}
		if got == c.Expect {
			per[c.Version].agree++
			continue
		}
		if !knownCaseDisagreement(c) {
			t.Errorf("%s %q: pykickstart says %s, we say %s (%s)", c.Version, c.Input, c.Expect, got, msg)
		}
	}
	all := logTable(t, "pykickstart command cases: agreement per version", per)
	if all.agree < minCaseAgreement {
		t.Errorf("command-case agreement %d is below the recorded %d", all.agree, minCaseAgreement)
	}
}

type corpusVerdict struct {
	Path     string `json:"path"`
	Version  string `json:"version"`
	Exit     int    `json:"ksvalidator_exit"`
	Problems []struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"problems"`
}

func loadCorpusVerdicts(t testing.TB) []corpusVerdict {
	fh, err := os.Open(filepath.Join(conformanceDir(t), "corpus-verdicts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []corpusVerdict
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v corpusVerdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// validatorCount is the number ksvalidator exits with for these
// diagnostics: one per problem line, but only 1 when parsing stopped at a
// fatal problem (ksvalidator then loses the count of the earlier ones).
func validatorCount(diags []Diagnostic) (int, map[int]bool) {
	lines := map[int]bool{}
	fatal := false
	for _, d := range diags {
		lines[d.Pos.Line] = true
		fatal = fatal || d.Fatal
	}
	if fatal {
		return 1, lines
	}
	return len(lines), lines
}

// TestConformanceCorpus parses every corpus file with the version it was
// validated against and compares with ksvalidator: the number of problems
// (its exit code) and the line of every problem it printed with one.
func TestConformanceCorpus(t *testing.T) {
	dir := conformanceDir(t)
	verdicts := loadCorpusVerdicts(t)
	if len(verdicts) != 376 {
		t.Fatalf("expected 376 corpus verdicts, found %d", len(verdicts))
	}
	per := map[string]*tally{}
	for _, v := range verdicts {
		if per[v.Version] == nil {
			per[v.Version] = &tally{}
		}
		per[v.Version].total++
		data, err := os.ReadFile(filepath.Join(dir, "corpus", v.Path))
		if err != nil {
			t.Fatal(err)
		}
		_, diags := Parse(Source{Name: v.Path, Data: data}, Options{Version: v.Version})
		n, lines := validatorCount(diags)
		ok := n == v.Exit
		for _, p := range v.Problems {
			ok = ok && lines[p.Line]
		}
		if ok {
			per[v.Version].agree++
			continue
		}
		var b bytes.Buffer
		for _, d := range diags {
			fmt.Fprintf(&b, "\n\t%s", d)
		}
		t.Errorf("%s (%s): ksvalidator reports %d problems %v, we report %d:%s", v.Path, v.Version, v.Exit, v.Problems, n, b.String())
	}
	all := logTable(t, "corpus files: agreement with ksvalidator per version", per)
	if all.agree < minCorpusAgreement {
		t.Errorf("corpus agreement %d is below the recorded %d", all.agree, minCorpusAgreement)
	}
}

// TestSpecMatchesCmdtable checks the embedded syntax tables against the
// conformance data's command table.
func TestSpecMatchesCmdtable(t *testing.T) {
	var table map[string]map[string]string
	if err := json.Unmarshal(cmdtableJSON, &table); err != nil {
		t.Fatal(err)
	}
	if len(table) < 9 {
		t.Fatalf("cmdtable.json has %d versions", len(table))
	}
	for version, cmds := range table {
		v, err := LookupVersion(version)
		if err != nil {
			t.Errorf("cmdtable version %s: %v", version, err)
			continue
		}
		for name, status := range cmds {
			if got := v.CommandStatus(name); got != status {
				t.Errorf("%s %s: spec says %q, cmdtable says %q", version, name, got, status)
			}
		}
		if got, want := len(v.Commands()), len(cmds); got != want {
			t.Errorf("%s: spec has %d commands, cmdtable %d", version, got, want)
		}
	}
}

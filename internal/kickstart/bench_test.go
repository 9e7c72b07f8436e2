package kickstart

import (
	"os"
	"path/filepath"
	"testing"
)

// The largest file of the conformance corpus among those with a verdict
// (12 KB, F45).
const benchFile = "kickstart-tests/fedora-live-image-build.ks"

func benchData(b *testing.B) []byte {
	data, err := os.ReadFile(filepath.Join(conformanceDir(b), "corpus", benchFile))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkParseLargestCorpusFile(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if f, _ := Parse(Source{Name: benchFile, Data: data}, Options{Version: "F45"}); len(f.Commands) == 0 {
			b.Fatal("no commands parsed")
		}
	}
}

func BenchmarkLintLargestCorpusFile(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, fs := Lint(Source{Name: benchFile, Data: data}, LintOptions{Version: "F45"}); len(fs) == 0 {
			b.Fatal("no findings")
		}
	}
}

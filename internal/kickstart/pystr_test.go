package kickstart

import (
	"reflect"
	"testing"
)

// pyWhitespace lists every code point below U+10000 for which Python 3.11's
// str.isspace() is true.
var pyWhitespace = []rune{
	0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0,
	0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
	0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
}

func TestPyIsSpace(t *testing.T) {
	want := map[rune]bool{}
	for _, r := range pyWhitespace {
		want[r] = true
	}
	for r := rune(0); r < 0x10000; r++ {
		if pyIsSpace(r) != want[r] {
			t.Errorf("pyIsSpace(%U) = %v, Python says %v", r, pyIsSpace(r), want[r])
		}
	}
}

func TestPySplitLines(t *testing.T) {
	// Python: "a\nb\r\nc\rd\x0be\x0cf\x1cg\x85h\u2028i".splitlines(True)
	got := pySplitLinesKeepEnds("a\nb\r\nc\rd\x0be\x0cf\x1cg\u0085h\u2028i")
	want := []string{"a\n", "b\r\n", "c\r", "d\x0b", "e\x0c", "f\x1c", "g\u0085", "h\u2028", "i"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := pySplitLinesKeepEnds(""); len(got) != 0 {
		t.Fatalf("empty string split to %q", got)
	}
}

func TestPyNormPath(t *testing.T) {
	// Values from Python's posixpath.normpath.
	cases := map[string]string{
		"":            ".",
		"/":           "/",
		"//":          "//",
		"///":         "/",
		"//a/b":       "//a/b",
		"/a/./b/../c": "/a/c",
		"/..":         "/",
		"a/../..":     "..",
		"../a":        "../a",
		"/boot/":      "/boot",
		"a//b/":       "a/b",
	}
	for in, want := range cases {
		if got := pyNormPath(in); got != want {
			t.Errorf("pyNormPath(%q) = %q, want %q", in, got, want)
		}
	}
}

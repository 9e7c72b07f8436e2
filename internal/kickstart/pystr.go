package kickstart

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The kickstart grammar is defined by pykickstart, which works on Python str
// values. These helpers reproduce the few Python string operations whose
// notion of whitespace or line ending differs from Go's.

// pyIsSpace reports whether Python's str.isspace() holds for r. Python
// counts the information separators U+001C..U+001F as whitespace; Go's
// unicode.IsSpace does not.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyStrIsSpace is str.isspace(): true for a non-empty string of whitespace.
func pyStrIsSpace(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !pyIsSpace(r) {
			return false
		}
	}
	return true
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyLStrip(s string) string { return strings.TrimLeftFunc(s, pyIsSpace) }
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// pySplitWS is str.split() with no argument: runs of whitespace separate
// fields and leading/trailing whitespace is dropped.
func pySplitWS(s string) []string { return strings.FieldsFunc(s, pyIsSpace) }

// isLineBreak reports whether r ends a line for str.splitlines().
func isLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// pySplitLinesKeepEnds is str.splitlines(True): every line keeps its
// terminator ("\r\n" counts as one).
func pySplitLinesKeepEnds(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isLineBreak(r) {
			i += size
			continue
		}
		end := i + size
		if r == '\r' && end < len(s) && s[end] == '\n' {
			end++
		}
		out = append(out, s[start:end])
		start, i = end, end
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// pyNormPath is posixpath.normpath.
func pyNormPath(p string) string {
	if p == "" {
		return "."
	}
	initial := 0
	if strings.HasPrefix(p, "/") {
		initial = 1
		if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
			initial = 2
		}
	}
	var out []string
	for _, comp := range strings.Split(p, "/") {
		if comp == "" || comp == "." {
			continue
		}
		if comp != ".." || (initial == 0 && len(out) == 0) || (len(out) > 0 && out[len(out)-1] == "..") {
			out = append(out, comp)
		} else if len(out) > 0 {
			out = out[:len(out)-1]
		}
	}
	res := strings.Repeat("/", initial) + strings.Join(out, "/")
	if res == "" {
		return "."
	}
	return res
}

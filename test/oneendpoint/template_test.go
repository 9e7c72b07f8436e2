package oneendpoint

import (
	"strings"
	"testing"
)

// TestTemplateParser: oned's template syntax and its quirks
// (template_parser.l, template_syntax.y).
func TestTemplateParser(t *testing.T) {
	tm, err := ParseTemplate("# comment\nname = \"a \\\"b\\\" c\"\ncpu=0.5 # trailing\nEMPTY =\nDISK=[ IMAGE_ID = 3, TARGET = vda, target = vdz ]\nDISK = [TYPE=fs,\n  SIZE=\"10\"]\nV=[ ]\nQ=\"two\nlines\"\nPATH=/a\\b\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := tm.Get("NAME"); got != `a "b" c` {
		t.Errorf("NAME %q: names are uppercased, only \\\" is unescaped", got)
	}
	if got := tm.Get("CPU"); got != "0.5" {
		t.Errorf("CPU %q: an unquoted value stops at a blank or #", got)
	}
	if !tm.Has("EMPTY") || tm.Get("EMPTY") != "" {
		t.Errorf("EMPTY =<newline> is an empty value")
	}
	disks := tm.Vectors("DISK")
	if len(disks) != 2 || disks[0].Sub("TARGET") != "vda" || disks[1].Sub("SIZE") != "10" {
		t.Errorf("DISK vectors %+v: repeated names are several; the first duplicate sub-attribute wins", disks)
	}
	if v := tm.Vector("V"); v == nil || len(v.Vec) != 0 {
		t.Errorf("V=[ ] is an empty vector")
	}
	if tm.Get("Q") != "two\nlines" {
		t.Errorf("quoted values span lines: %q", tm.Get("Q"))
	}
	if tm.Get("PATH") != `/a\b` {
		t.Errorf("a backslash stays: %q", tm.Get("PATH"))
	}
	for in, want := range map[string]string{
		"A=]]>":              "Parse error.",
		"A=[B=x]]>]":         "Parse error.", // the CCDATA rule takes the whole line from "["
		"A=[\nB=x]]>]":       "Parse error: syntax error, unexpected CCDATA, expecting STRING at line 2, columns 7:12",
		"A=":                 "Parse error: syntax error, unexpected $end, expecting OBRACKET or CCDATA or STRING at line 1, columns 2:3",
		"A=[B=\n]":           "Parse error: syntax error, unexpected EQUAL_EMPTY, expecting EQUAL at line 2, columns 5:7",
		", A=1":              "Parse error: syntax error, unexpected COMMA, expecting $end at line 1, columns 1:3",
		"A=1\nB=2\nC D":      "Parse error: syntax error, unexpected VARIABLE, expecting EQUAL or EQUAL_EMPTY at line 3, columns 11:12",
		"A B":                "unexpected VARIABLE, expecting EQUAL or EQUAL_EMPTY at line 1",
		"A=[B=1":             "Parse error: syntax error, unexpected $end, expecting COMMA or CBRACKET",
		"<TEMPLATE><A>1</B>": "Parse error: XML Template malformed.",
		"<TEMPLATE><A>1</A>": "Parse error: XML Template malformed.",
	} {
		if _, err := ParseTemplate(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	x, err := ParseTemplate("<TEMPLATE><NAME>x</NAME><OS><KERNEL_CMD><![CDATA[a=b <c>]]></KERNEL_CMD><ROOT>vda1</ROOT><ROOT>sda</ROOT></OS></TEMPLATE>")
	if err != nil || x.Get("NAME") != "x" || x.Vector("OS").Sub("KERNEL_CMD") != "a=b <c>" || x.Vector("OS").Sub("ROOT") != "sda" {
		t.Errorf("XML template: %+v, %v: a vector's last duplicate wins (VectorAttribute::replace)", x, err)
	}
	// Template::single_xml_att takes an element with exactly one text or
	// CDATA child; vector_xml_att takes a sub-attribute's first child;
	// anything else is dropped without an error. Any root element.
	// libxml2 joins adjacent CDATA sections, not text and CDATA.
	y, err := ParseTemplate("<VM><A><![CDATA[x]]]]><![CDATA[>y]]></A><B/><C>1<!-- c --></C><d>&lt;&amp;\n</d><E>x<![CDATA[y]]></E>" +
		"<OS><KERNEL_CMD>k<![CDATA[]]]]><![CDATA[>]]></KERNEL_CMD><root>vda</root><BOOT/><KERNEL><![CDATA[]]></KERNEL></OS></VM>")
	if err != nil || y.Get("A") != "x]]>y" || y.Has("B") || y.Has("C") || y.Get("D") != "<&\n" || y.Has("E") ||
		y.Vector("OS").Sub("KERNEL_CMD") != "k" || y.Vector("OS").Sub("root") != "vda" || !y.Vector("OS").Has("KERNEL") ||
		len(y.Vector("OS").Vec) != 3 {
		t.Errorf("XML template as libxml2 and Template::rebuild_attributes see it: %+v, %v", y, err)
	}
	// flex: a character no rule matches is skipped (default ECHO); an
	// unterminated quote is an unquoted STRING; CR is no blank.
	for in, want := range map[string]map[string]string{
		"A@=1":                  {"A": "1"},
		"Q=\"unterminated\nR=1": {"Q": `"unterminated`, "R": "1"},
		"R=x\r\nS=y":            {"R": "x\r", "S": "y"},
		"S=\"a\\\"":             {"S": `a\`},
		"T=\"x\"y":              {"T": `"x"y`},
	} {
		z, err := ParseTemplate(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		for k, v := range want {
			if z.Get(k) != v {
				t.Errorf("%q: %s = %q, want %q", in, k, z.Get(k), v)
			}
		}
	}
	// Round trip through the text form.
	back, err := ParseTemplate(tm.String())
	if err != nil || back.String() != tm.String() {
		t.Errorf("round trip:\n%s\n%s\n%v", tm.String(), back.String(), err)
	}
}

// TestMerge: a merge replaces every attribute of a name it carries.
func TestMerge(t *testing.T) {
	a, _ := ParseTemplate("A=1\nT=[K=x]\nT=[K=y]\nB=2")
	b, _ := ParseTemplate("T=[K=z]\nB=3")
	a.Merge(b)
	if len(a.Vectors("T")) != 1 || a.Vector("T").Sub("K") != "z" || a.Get("B") != "3" || a.Get("A") != "1" {
		t.Errorf("merged: %s", a.String())
	}
}

package oneendpoint

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Templates, parsed as oned parses them (one@7.0.0:src/parsers/
// template_parser.l, template_syntax.y): names [[:alnum:]_]+ uppercased;
// "#" comments; quoted values span lines and unescape only \"; unquoted
// values stop at a blank, = # , [ ] or a newline; "A =" then a newline is
// an empty value; a vector's duplicate sub-attribute keeps the first
// (a map insert); top-level names repeat (DISK, NIC); "]]>" aborts; input
// starting with "<" is an XML template (see parseXMLTemplate).

// Attr is one template attribute: single (Value) or vector (Vec).
type Attr struct {
	Name  string
	Value string
	IsVec bool
	Vec   []Pair
}

// Pair is a vector's sub-attribute.
type Pair struct{ Name, Value string }

// Template is an ordered multimap of attributes.
type Template struct{ Attrs []*Attr }

// Get returns the first single attribute name's value.
func (t *Template) Get(name string) string {
	for _, a := range t.Attrs {
		if a.Name == name && !a.IsVec {
			return a.Value
		}
	}
	return ""
}

// Has says whether name is present (single or vector).
func (t *Template) Has(name string) bool {
	for _, a := range t.Attrs {
		if a.Name == name {
			return true
		}
	}
	return false
}

// Vectors returns the vectors called name.
func (t *Template) Vectors(name string) []*Attr {
	var out []*Attr
	for _, a := range t.Attrs {
		if a.Name == name && a.IsVec {
			out = append(out, a)
		}
	}
	return out
}

// Vector returns the first vector called name (nil if none).
func (t *Template) Vector(name string) *Attr {
	if v := t.Vectors(name); len(v) > 0 {
		return v[0]
	}
	return nil
}

// Set replaces every attribute called name with one single attribute.
func (t *Template) Set(name, value string) {
	t.Erase(name)
	t.Attrs = append(t.Attrs, &Attr{Name: name, Value: value})
}

// Erase removes every attribute called name.
func (t *Template) Erase(name string) {
	out := t.Attrs[:0]
	for _, a := range t.Attrs {
		if a.Name != name {
			out = append(out, a)
		}
	}
	t.Attrs = out
}

// Merge is oned's Template::merge: each name in o replaces all of that
// name here.
func (t *Template) Merge(o *Template) {
	for _, a := range o.Attrs {
		t.Erase(a.Name)
	}
	for _, a := range o.Attrs {
		t.Attrs = append(t.Attrs, a.clone())
	}
}

// Clone copies t.
func (t *Template) Clone() *Template {
	c := &Template{}
	for _, a := range t.Attrs {
		c.Attrs = append(c.Attrs, a.clone())
	}
	return c
}

func (a *Attr) clone() *Attr {
	c := *a
	c.Vec = append([]Pair(nil), a.Vec...)
	return &c
}

// Sub returns a vector's sub-attribute.
func (a *Attr) Sub(name string) string {
	for _, p := range a.Vec {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// SetSub sets (or adds) a vector's sub-attribute.
func (a *Attr) SetSub(name, value string) {
	for i := range a.Vec {
		if a.Vec[i].Name == name {
			a.Vec[i].Value = value
			return
		}
	}
	a.Vec = append(a.Vec, Pair{name, value})
}

// DelSub removes a vector's sub-attribute.
func (a *Attr) DelSub(name string) {
	out := a.Vec[:0]
	for _, p := range a.Vec {
		if p.Name != name {
			out = append(out, p)
		}
	}
	a.Vec = out
}

// XML renders t as oned does (values in CDATA).
func (t *Template) XML(root string) string {
	var b strings.Builder
	if len(t.Attrs) == 0 {
		return "<" + root + "/>"
	}
	b.WriteString("<" + root + ">")
	for _, a := range t.Attrs {
		if a.IsVec {
			b.WriteString("<" + a.Name + ">")
			for _, p := range a.Vec {
				b.WriteString("<" + p.Name + ">" + cdata(p.Value) + "</" + p.Name + ">")
			}
			b.WriteString("</" + a.Name + ">")
		} else {
			b.WriteString("<" + a.Name + ">" + cdata(a.Value) + "</" + a.Name + ">")
		}
	}
	b.WriteString("</" + root + ">")
	return b.String()
}

func cdata(s string) string {
	return "<![CDATA[" + strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>") + "]]>"
}

// ParseTemplate parses a template in either syntax; errors carry oned's
// texts.
func ParseTemplate(s string) (*Template, error) {
	if strings.HasPrefix(s, "<") { // Template::parse_str_or_xml: parse_str[0] == '<'
		return parseXMLTemplate(s)
	}
	return parseText(s)
}

// xnode is a libxml2 node as Template::from_xml sees it: an element, a
// text or CDATA node (adjacent text and entity references make one node,
// a CDATA section is a node of its own), or another node (comment, PI).
type xnode struct {
	name   string // element name; "" for other nodes
	isText bool
	text   string
	kids   []*xnode
}

// parseXMLTemplate builds attributes as oned does
// (one@7.0.0:src/template/Template.cc from_xml, rebuild_attributes,
// single_xml_att, vector_xml_att): any root element; a child with exactly
// one text or CDATA child is a single attribute; else one with element
// children is a vector whose sub-attributes take their first child's text
// (VectorAttribute::replace: the last duplicate wins, names kept as sent);
// anything else (empty, several text pieces, deeper nesting) is dropped.
// Attribute names are uppercased (the Attribute constructor).
func parseXMLTemplate(s string) (*Template, error) {
	bad := fmt.Errorf("Parse error: XML Template malformed.")
	d := xml.NewDecoder(strings.NewReader(s))
	top := &xnode{}
	stack := []*xnode{top}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bad
		}
		cur := stack[len(stack)-1]
		switch e := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: e.Name.Local}
			if e.Name.Space != "" {
				n.name = e.Name.Space + ":" + e.Name.Local
			}
			cur.kids = append(cur.kids, n)
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 1 {
				cur.kids = append(cur.kids, &xnode{isText: true, text: string(e)})
			}
		case xml.Comment, xml.ProcInst:
			if len(stack) > 1 {
				cur.kids = append(cur.kids, &xnode{})
			}
		}
	}
	var root *xnode
	for _, k := range top.kids {
		if k.name != "" {
			root = k
		}
	}
	if root == nil {
		return nil, bad
	}
	t := &Template{}
	for _, c := range root.kids {
		if c.name == "" {
			continue
		}
		name := strings.ToUpper(c.name)
		if len(c.kids) == 1 && c.kids[0].isText {
			t.Attrs = append(t.Attrs, &Attr{Name: name, Value: c.kids[0].text})
			continue
		}
		var a *Attr
		for _, k := range c.kids {
			if k.name == "" {
				continue
			}
			if a == nil {
				a = &Attr{Name: name, IsVec: true}
			}
			if len(k.kids) > 0 && k.kids[0].isText {
				a.DelSub(k.name)
				a.Vec = append(a.Vec, Pair{k.name, k.kids[0].text})
			}
		}
		if a != nil {
			t.Attrs = append(t.Attrs, a)
		}
	}
	return t, nil
}

// Text template lexer.

type tokKind int

const (
	tEOF tokKind = iota
	tVariable
	tString
	tEqual
	tEqualEmpty
	tComma
	tOBracket
	tCBracket
)

var tokName = map[tokKind]string{
	tEOF: "$end", tVariable: "VARIABLE", tString: "STRING", tEqual: "EQUAL", tEqualEmpty: "EQUAL_EMPTY",
	tComma: "COMMA", tOBracket: "OBRACKET", tCBracket: "CBRACKET",
}

type token struct {
	kind       tokKind
	text       string
	line, col1 int
	col2       int
}

type lexer struct {
	s         string
	pos       int
	line, col int
	afterEq   bool // a value may follow
}

func isNameChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (l *lexer) adv(n int) {
	for i := 0; i < n; i++ {
		if l.s[l.pos] == '\n' {
			l.line++
			l.col = 0
		} else {
			l.col++
		}
		l.pos++
	}
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			l.adv(1)
			continue
		}
		if c == '#' {
			for l.pos < len(l.s) && l.s[l.pos] != '\n' {
				l.adv(1)
			}
			continue
		}
		break
	}
	start := token{line: l.line + 1, col1: l.col + 1}
	mk := func(k tokKind, text string, n int) (token, error) {
		l.adv(n)
		start.kind, start.text, start.col2 = k, text, l.col
		return start, nil
	}
	if l.pos >= len(l.s) {
		start.col2 = l.col
		return start, nil
	}
	if strings.HasPrefix(l.s[l.pos:], "]]>") {
		return token{}, fmt.Errorf("Parse error: syntax error, unexpected CCDATA at line %d, columns %d:%d", start.line, start.col1, start.col1+3)
	}
	c := l.s[l.pos]
	switch c {
	case '=':
		// "=" followed by blanks and a newline: an empty value.
		j := l.pos + 1
		for j < len(l.s) && (l.s[j] == ' ' || l.s[j] == '\t') {
			j++
		}
		if j < len(l.s) && (l.s[j] == '\n' || l.s[j] == '\r') || j == len(l.s) {
			l.afterEq = false
			return mk(tEqualEmpty, "", j-l.pos)
		}
		l.afterEq = true
		return mk(tEqual, "=", 1)
	case ',':
		return mk(tComma, ",", 1)
	case '[':
		l.afterEq = false
		return mk(tOBracket, "[", 1)
	case ']':
		return mk(tCBracket, "]", 1)
	case '"':
		l.afterEq = false
		var b strings.Builder
		j := l.pos + 1
		for {
			if j >= len(l.s) {
				return token{}, fmt.Errorf("Parse error: syntax error, unexpected $end at line %d, columns %d:%d", start.line, start.col1, start.col1+1)
			}
			if l.s[j] == '\\' && j+1 < len(l.s) && l.s[j+1] == '"' {
				b.WriteByte('"')
				j += 2
				continue
			}
			if l.s[j] == '"' {
				break
			}
			b.WriteByte(l.s[j])
			j++
		}
		return mk(tString, b.String(), j+1-l.pos)
	}
	if l.afterEq {
		l.afterEq = false
		j := l.pos
		for j < len(l.s) && !strings.ContainsRune(" \t\r\n=#,[]\"", rune(l.s[j])) {
			j++
		}
		return mk(tString, l.s[l.pos:j], j-l.pos)
	}
	if isNameChar(c) {
		j := l.pos
		for j < len(l.s) && isNameChar(l.s[j]) {
			j++
		}
		return mk(tVariable, strings.ToUpper(l.s[l.pos:j]), j-l.pos)
	}
	return token{}, fmt.Errorf("Parse error: syntax error, unexpected character '%c' at line %d, columns %d:%d", c, start.line, start.col1, start.col1+1)
}

func unexpected(t token, expecting ...string) error {
	msg := "Parse error: syntax error, unexpected " + tokName[t.kind]
	if len(expecting) > 0 {
		msg += ", expecting " + strings.Join(expecting, " or ")
	}
	return fmt.Errorf("%s at line %d, columns %d:%d", msg, t.line, t.col1, t.col2)
}

func parseText(s string) (*Template, error) {
	l := &lexer{s: s}
	t := &Template{}
	for {
		name, err := l.next()
		if err != nil {
			return nil, err
		}
		if name.kind == tEOF {
			return t, nil
		}
		if name.kind != tVariable {
			return nil, unexpected(name, "$end", "VARIABLE")
		}
		eq, err := l.next()
		if err != nil {
			return nil, err
		}
		switch eq.kind {
		case tEqualEmpty:
			t.Attrs = append(t.Attrs, &Attr{Name: name.text})
			continue
		case tEqual:
		default:
			return nil, unexpected(eq, "EQUAL", "EQUAL_EMPTY")
		}
		val, err := l.next()
		if err != nil {
			return nil, err
		}
		switch val.kind {
		case tString:
			t.Attrs = append(t.Attrs, &Attr{Name: name.text, Value: val.text})
		case tOBracket:
			a := &Attr{Name: name.text, IsVec: true}
			if err := parseVector(l, a); err != nil {
				return nil, err
			}
			t.Attrs = append(t.Attrs, a)
		default:
			return nil, unexpected(val, "STRING", "OBRACKET")
		}
	}
}

func parseVector(l *lexer, a *Attr) error {
	first := true
	for {
		tk, err := l.next()
		if err != nil {
			return err
		}
		if tk.kind == tCBracket && first {
			return nil // V=[ ]
		}
		if tk.kind != tVariable {
			return unexpected(tk, "VARIABLE")
		}
		eq, err := l.next()
		if err != nil {
			return err
		}
		value := ""
		switch eq.kind {
		case tEqual:
			v, err := l.next()
			if err != nil {
				return err
			}
			if v.kind != tString {
				return unexpected(v, "STRING")
			}
			value = v.text
		case tEqualEmpty:
		default:
			return unexpected(eq, "EQUAL", "EQUAL_EMPTY")
		}
		dup := false
		for _, p := range a.Vec {
			if p.Name == tk.text {
				dup = true
			}
		}
		if !dup {
			a.Vec = append(a.Vec, Pair{tk.text, value})
		}
		first = false
		sep, err := l.next()
		if err != nil {
			return err
		}
		switch sep.kind {
		case tComma:
		case tCBracket:
			return nil
		default:
			return unexpected(sep, "COMMA", "CBRACKET")
		}
	}
}

// String renders t in the text syntax (values quoted, " escaped).
func (t *Template) String() string {
	var b strings.Builder
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	for _, a := range t.Attrs {
		if a.IsVec {
			var parts []string
			for _, p := range a.Vec {
				parts = append(parts, p.Name+"="+q(p.Value))
			}
			b.WriteString(a.Name + "=[" + strings.Join(parts, ",") + "]\n")
		} else {
			b.WriteString(a.Name + "=" + q(a.Value) + "\n")
		}
	}
	return b.String()
}

package oneendpoint

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
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
// text or CDATA node, or another node (comment, PI). libxml2 (2.9.14,
// checked with xmllint --debug) makes one text node of text and entity
// references, and one CDATA node of adjacent CDATA sections, but keeps
// text and CDATA next to each other as two nodes.
type xnode struct {
	name   string // element name; "" for other nodes
	isText bool
	cdata  bool
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
		off := d.InputOffset()
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
				cdata := strings.HasPrefix(s[off:], "<![CDATA[")
				if n := len(cur.kids); n > 0 && cur.kids[n-1].isText && cur.kids[n-1].cdata == cdata {
					cur.kids[n-1].text += string(e)
				} else {
					cur.kids = append(cur.kids, &xnode{isText: true, cdata: cdata, text: string(e)})
				}
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
	tCCData
	tQuoted // a lexer-internal kind: a quoted STRING
)

var tokName = map[tokKind]string{
	tEOF: "$end", tVariable: "VARIABLE", tString: "STRING", tEqual: "EQUAL", tEqualEmpty: "EQUAL_EMPTY",
	tComma: "COMMA", tOBracket: "OBRACKET", tCBracket: "CBRACKET", tCCData: "CCDATA",
}

type token struct {
	kind       tokKind
	text       string
	line, col1 int
	col2       int
}

// lexer plays template_parser.l as flex runs it: in each start condition
// the rule with the longest match wins, the first listed on a tie; a
// character no rule matches is echoed by flex's default rule and skipped
// (no %option nodefault); VALUE is exclusive (%x). Locations follow
// YY_USER_ACTION: the line is yylineno after the match, the columns run
// on over the whole input from 1 (never reset at a newline), and every
// match moves them, skipped ones too; at the end of input the location
// stays that of the last match.
type lexer struct {
	s          string
	pos        int
	value      bool // start condition VALUE
	line       int
	col1, col2 int
}

type lexRule struct {
	re   *regexp.Regexp
	kind tokKind // tSkip: no token
	to   int     // start condition after: -1 same, 0 INITIAL, 1 VALUE
}

const tSkip tokKind = -1

func rule(re string, kind tokKind, to int) lexRule {
	r := regexp.MustCompile(`^(?:` + re + `)`)
	r.Longest()
	return lexRule{r, kind, to}
}

var (
	initialRules = []lexRule{
		rule(`[ \t]*#.*\n`, tSkip, -1),
		rule(`[ \t\n]+`, tSkip, -1),
		rule(`[[:alnum:]_]+`, tVariable, -1),
		rule(`[ \t]*=[ \t]*`, tEqual, 1),
		rule(`[ \t]*=[ \t]*\n`, tEqualEmpty, -1),
		rule(`[ \t\n]*,[ \t\n]*`, tComma, -1),
		rule(`[ \t\n]*\][ \t\n]*`, tCBracket, -1),
	}
	valueRules = []lexRule{
		rule(`[ \t]*\[[ \t\n]*`, tOBracket, 0),
		rule(`.*\]\]>.*`, tCCData, 0),
		rule(`"(?:[^"]|\\")*"`, tQuoted, 0),
		rule(`[^=# \t\n,\[\]]+`, tString, 0),
	}
)

func (l *lexer) next() (token, error) {
	if l.line == 0 {
		l.line, l.col1, l.col2 = 1, 1, 1 // bison's initial yylloc
	}
	for l.pos < len(l.s) {
		rules := initialRules
		if l.value {
			rules = valueRules
		}
		best, n := -1, 0
		for i, r := range rules {
			if m := r.re.FindString(l.s[l.pos:]); len(m) > n {
				best, n = i, len(m)
			}
		}
		kind, to := tSkip, -1
		if best >= 0 {
			kind, to = rules[best].kind, rules[best].to
		} else {
			n = 1 // flex's default rule: ECHO
		}
		text := l.s[l.pos : l.pos+n]
		l.pos += n
		l.line += strings.Count(text, "\n")
		l.col1, l.col2 = l.col2, l.col2+n
		if to >= 0 {
			l.value = to == 1
		}
		if kind == tSkip {
			continue
		}
		t := token{kind: kind, text: text, line: l.line, col1: l.col1, col2: l.col2}
		switch kind {
		case tVariable:
			t.text = strings.ToUpper(text)
		case tQuoted:
			t.kind, t.text = tString, strings.ReplaceAll(text[1:len(text)-1], `\"`, `"`) // unescape()
		}
		return t, nil
	}
	return token{kind: tEOF, line: l.line, col1: l.col1, col2: l.col2}, nil
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
			// template_file's default reduction comes first: only $end
			// is left to expect.
			return nil, unexpected(name, "$end")
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
		case tCCData:
			// VARIABLE EQUAL CCDATA { YYABORT; }: no message, so
			// Template::parse_str_or_xml says only "Parse error.".
			return nil, errors.New("Parse error.")
		case tString:
			t.Attrs = append(t.Attrs, &Attr{Name: name.text, Value: val.text})
		case tOBracket:
			a := &Attr{Name: name.text, IsVec: true}
			if err := parseVector(l, a); err != nil {
				return nil, err
			}
			t.Attrs = append(t.Attrs, a)
		default:
			// bison lists the expected tokens in token-number order.
			return nil, unexpected(val, "OBRACKET", "CCDATA", "STRING")
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
			if first {
				return unexpected(tk, "CBRACKET", "VARIABLE")
			}
			return unexpected(tk, "VARIABLE")
		}
		eq, err := l.next()
		if err != nil {
			return err
		}
		// array_val: VARIABLE EQUAL STRING only (no EQUAL_EMPTY).
		if eq.kind != tEqual {
			return unexpected(eq, "EQUAL")
		}
		v, err := l.next()
		if err != nil {
			return err
		}
		if v.kind != tString {
			return unexpected(v, "STRING")
		}
		value := v.text
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

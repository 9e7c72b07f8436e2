package libvirtxml

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// domain is a parsed domain XML document that passed the input checks.
type domain struct {
	doc  *etree.Document
	root *etree.Element // <domain>
	os   *etree.Element // the one <os>
	unit string         // one level of indentation, "" when the document is not indented

	singleQuote bool // the input quotes its first attribute with '
	attrCtl     bool // some attribute value holds a tab, newline or carriage return
	textCR      bool // some character data holds a carriage return
}

// invalid returns an error wrapping ErrInvalidDomain.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidDomain, fmt.Sprintf(format, args...))
}

// parseDomain parses b and applies the input checks every entry point shares.
func parseDomain(b []byte) (*domain, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, invalid("empty document")
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{
		PreserveCData:          true, // keep CDATA sections as they were
		PreserveDuplicateAttrs: true, // so that they can be rejected below
	}
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, invalid("not well-formed: %v", err)
	}
	d := &domain{doc: doc, singleQuote: firstQuote(b) == '\''}

	var roots int
	for i, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Element:
			roots++
			d.root = t
		case *etree.CharData:
			data := t.Data
			if i == 0 && !t.IsCData() {
				data = strings.TrimPrefix(data, "\ufeff") // a byte order mark, kept
			}
			if strings.Trim(data, " \t\r\n") != "" || t.IsCData() {
				return nil, invalid("text outside the root element")
			}
		case *etree.Directive:
			return nil, invalid("document has a DOCTYPE or other <!...> declaration")
		}
	}
	switch {
	case roots == 0:
		return nil, invalid("no root element")
	case roots > 1:
		return nil, invalid("more than one root element")
	case d.root.Space != "" || d.root.Tag != "domain":
		return nil, invalid("root element is <%s>, not <domain>", d.root.FullTag())
	}
	if err := d.scan(d.root); err != nil {
		return nil, err
	}
	oss := children(d.root, "os")
	switch len(oss) {
	case 0:
		return nil, invalid("no <os> element")
	case 1:
		d.os = oss[0]
	default:
		return nil, invalid("%d <os> elements", len(oss))
	}
	d.unit = strings.TrimPrefix(childIndent(d.root), "\n")
	return d, nil
}

// scan rejects what no domain XML has and notes what the writer must escape.
func (d *domain) scan(e *etree.Element) error {
	type name struct{ space, key string }
	var seen map[name]bool // only for elements with many attributes
	for i, a := range e.Attr {
		key := name{a.Space, a.Key}
		dup := false
		if len(e.Attr) > 8 {
			if seen == nil {
				seen = make(map[name]bool, len(e.Attr))
			}
			dup, seen[key] = seen[key], true
		} else {
			for _, b := range e.Attr[:i] {
				dup = dup || a.Space == b.Space && a.Key == b.Key
			}
		}
		if dup {
			return invalid("element <%s> has attribute %q twice", e.FullTag(), a.FullKey())
		}
		if strings.ContainsAny(a.Value, "\t\n\r") {
			d.attrCtl = true
		}
	}
	for _, t := range e.Child {
		switch t := t.(type) {
		case *etree.Element:
			if err := d.scan(t); err != nil {
				return err
			}
		case *etree.CharData:
			if strings.IndexByte(t.Data, '\r') >= 0 {
				d.textCR = true
			}
		case *etree.Directive:
			return invalid("element <%s> contains a <!...> declaration", e.FullTag())
		}
	}
	return nil
}

// bytes serialises the document in the style of the writer that produced it.
// A document quoting attributes with ' (libvirt's own) keeps libvirt's
// escaping: &apos; and &quot; in text and attributes. Any other (libxml2, as
// the Eucalyptus XSLT writes it) gets double quotes and escapes only what XML
// requires. An attribute value holding a tab, newline or carriage return must
// be written as a character reference, which etree does only in its canonical
// double-quoted mode: such a document is written in the second style. Text
// holding a carriage return needs canonical text mode too (a literal CR reads
// back as LF). The style depends only on what the output itself shows, so
// rewriting the output again writes it the same way.
func (d *domain) bytes() ([]byte, error) {
	single := d.singleQuote && !d.attrCtl
	d.doc.WriteSettings = etree.WriteSettings{
		AttrSingleQuote:  single,
		CanonicalAttrVal: !single,
		CanonicalText:    !single || d.textCR,
	}
	return d.doc.WriteToBytes()
}

// firstQuote returns the quote character of the first attribute in the raw
// document, '"' when there is none. Comments, processing instructions, CDATA
// sections, declarations and end tags are skipped; in a start tag the first
// '=' ends the first attribute's name.
func firstQuote(b []byte) byte {
	skip := func(b []byte, end string) []byte {
		if i := bytes.Index(b, []byte(end)); i >= 0 {
			return b[i+len(end):]
		}
		return nil
	}
	for {
		i := bytes.IndexByte(b, '<')
		if i < 0 {
			return '"'
		}
		b = b[i:]
		switch {
		case bytes.HasPrefix(b, []byte("<!--")):
			b = skip(b[4:], "-->")
		case bytes.HasPrefix(b, []byte("<![CDATA[")):
			b = skip(b[9:], "]]>")
		case bytes.HasPrefix(b, []byte("<?")):
			b = skip(b[2:], "?>")
		case bytes.HasPrefix(b, []byte("<!")), bytes.HasPrefix(b, []byte("</")):
			b = skip(b[2:], ">")
		default:
			j := bytes.IndexAny(b, "=>")
			if j < 0 {
				return '"'
			}
			if b[j] == '>' {
				b = b[j+1:]
				continue
			}
			rest := bytes.TrimLeft(b[j+1:], " \t\r\n")
			if len(rest) > 0 && rest[0] == '\'' {
				return '\''
			}
			return '"'
		}
	}
}

// isBlank reports whether t is character data made of spaces, tabs and
// newlines only (indentation), not a CDATA section.
func isBlank(t etree.Token) bool {
	cd, ok := t.(*etree.CharData)
	if !ok || cd.IsCData() {
		return false
	}
	for i := 0; i < len(cd.Data); i++ {
		switch cd.Data[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// children returns the child elements of e named tag in no namespace.
func children(e *etree.Element, tag string) []*etree.Element {
	var out []*etree.Element
	for _, t := range e.Child {
		if c, ok := t.(*etree.Element); ok && c.Space == "" && c.Tag == tag {
			out = append(out, c)
		}
	}
	return out
}

// single returns the child element of e named tag, nil when there is none, and
// an error when there are several: the rewrite owns the element and will not
// guess which one libvirt reads.
func single(e *etree.Element, tag string) (*etree.Element, error) {
	cs := children(e, tag)
	switch len(cs) {
	case 0:
		return nil, nil
	case 1:
		return cs[0], nil
	default:
		return nil, invalid("%d <%s> elements in <%s>", len(cs), tag, e.FullTag())
	}
}

// text returns the string value of e (all character data inside it, as
// libvirt's XPath string() reads it) with surrounding whitespace removed.
func text(e *etree.Element) string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, t := range e.Child {
			switch t := t.(type) {
			case *etree.CharData:
				b.WriteString(t.Data)
			case *etree.Element:
				walk(t)
			}
		}
	}
	walk(e)
	return strings.TrimSpace(b.String())
}

// setText replaces everything inside e with the character data s.
func setText(e *etree.Element, s string) {
	for len(e.Child) > 0 {
		e.RemoveChildAt(len(e.Child) - 1)
	}
	if s != "" {
		e.CreateText(s)
	}
}

// leadingIndent returns the indentation before e: the part of the blank
// character data just before it from its last newline on, or "" when e does
// not start a line.
func leadingIndent(e *etree.Element) string {
	p, i := e.Parent(), e.Index()
	if p == nil || i <= 0 || !isBlank(p.Child[i-1]) {
		return ""
	}
	ws := p.Child[i-1].(*etree.CharData).Data
	if j := strings.LastIndexByte(ws, '\n'); j >= 0 {
		return ws[j:]
	}
	return ""
}

// childIndent returns the indentation of e's child elements: that of the first
// child element starting a line, or "" when none does.
func childIndent(e *etree.Element) string {
	for _, t := range e.Child {
		if c, ok := t.(*etree.Element); ok {
			if ind := leadingIndent(c); ind != "" {
				return ind
			}
		}
	}
	return ""
}

// indentFor returns the indentation for a new child of e: that of its
// siblings, else e's own plus one level, else "" (a document that is not
// indented, or an e that does not start a line).
func (d *domain) indentFor(e *etree.Element) string {
	if ind := childIndent(e); ind != "" {
		return ind
	}
	if d.unit == "" {
		return ""
	}
	own := "\n"
	if e != d.root {
		own = leadingIndent(e)
		if own == "" {
			return ""
		}
	}
	return own + d.unit
}

// ownIndent returns the indentation before e's end tag when its children are
// indented: e's own indentation ("\n" for the root).
func (d *domain) ownIndent(e *etree.Element) string {
	if e == d.root {
		return "\n"
	}
	return leadingIndent(e)
}

// insertAt inserts c into p at token index pos, preceded by the indentation
// of p's children. A p without children also gets the indentation of its end
// tag. After text (mixed content) no indentation is inserted: it would merge
// with that text when the document is read again.
func (d *domain) insertAt(p *etree.Element, pos int, c *etree.Element) {
	ind := d.indentFor(p)
	if pos > 0 && pos <= len(p.Child) {
		if cd, ok := p.Child[pos-1].(*etree.CharData); ok && !cd.IsCData() && !isBlank(cd) {
			ind = ""
		}
	}
	empty := len(p.Child) == 0
	p.InsertChildAt(pos, c)
	if ind == "" {
		return
	}
	p.InsertChildAt(pos, etree.NewText(ind))
	if empty {
		if own := d.ownIndent(p); own != "" {
			p.AddChild(etree.NewText(own))
		}
	}
}

// appendChild adds c as the last child element of p, before the indentation
// of p's end tag.
func (d *domain) appendChild(p *etree.Element, c *etree.Element) {
	pos := len(p.Child)
	for pos > 0 && isBlank(p.Child[pos-1]) {
		pos--
	}
	d.insertAt(p, pos, c)
}

// insertOrdered inserts c into p where libvirt would write it: after the
// existing sibling that comes last before c in order, else before the one
// that comes first after it, else at the end. Siblings not named in order are
// ignored.
func (d *domain) insertOrdered(p *etree.Element, c *etree.Element, order []string) {
	rank := func(e *etree.Element) int {
		if e.Space != "" {
			return -1
		}
		for i, name := range order {
			if name == e.Tag {
				return i
			}
		}
		return -1
	}
	want := rank(c)
	var before, after *etree.Element
	bestBefore, bestAfter := -1, len(order)
	for _, t := range p.Child {
		e, ok := t.(*etree.Element)
		if !ok {
			continue
		}
		r := rank(e)
		switch {
		case r < 0:
		case r <= want && r >= bestBefore:
			before, bestBefore = e, r
		case r > want && r < bestAfter:
			after, bestAfter = e, r
		}
	}
	switch {
	case before != nil:
		d.insertAt(p, before.Index()+1, c)
	case after != nil:
		pos := after.Index()
		if pos > 0 && isBlank(p.Child[pos-1]) {
			pos--
		}
		d.insertAt(p, pos, c)
	default:
		d.appendChild(p, c)
	}
}

// remove removes e and the indentation before it from its parent. A parent
// left with indentation only is emptied.
func remove(e *etree.Element) {
	if p := e.Parent(); p != nil {
		removeAll(p, func(c *etree.Element) bool { return c == e })
	}
}

// removeChildren removes p's child elements named tag in no namespace.
func removeChildren(p *etree.Element, tag string) {
	removeAll(p, func(c *etree.Element) bool { return c.Space == "" && c.Tag == tag })
}

// removeAll removes, in one pass, the child elements of p for which drop
// returns true, each with the indentation before it. A parent left with
// indentation only is emptied.
func removeAll(p *etree.Element, drop func(*etree.Element) bool) {
	kept := make([]etree.Token, 0, len(p.Child))
	removed, content := false, false
	for _, t := range p.Child {
		if e, ok := t.(*etree.Element); ok && drop(e) {
			if n := len(kept); n > 0 && isBlank(kept[n-1]) {
				kept = kept[:n-1]
			}
			removed = true
			continue
		}
		kept = append(kept, t)
	}
	if !removed {
		return
	}
	for _, t := range kept {
		content = content || !isBlank(t)
	}
	if !content {
		kept = kept[:0]
	}
	p.Child = kept
	p.ReindexChildren()
}

// ensure returns p's only child element named tag, creating it at libvirt's
// position when it is missing.
func (d *domain) ensure(p *etree.Element, tag string, order []string) (*etree.Element, error) {
	e, err := single(p, tag)
	if err != nil || e != nil {
		return e, err
	}
	e = etree.NewElement(tag)
	d.insertOrdered(p, e, order)
	return e, nil
}

// Element order as libvirt formats a domain (virDomainDefFormatInternal); the
// schema interleaves them, so any order is valid, but new elements go where
// libvirt would put them.
var (
	domainOrder = []string{
		"name", "uuid", "genid", "title", "description", "metadata",
		"maxMemory", "memory", "currentMemory", "blkiotune", "memtune",
		"memoryBacking", "vcpu", "vcpus", "iothreads", "iothreadids",
		"defaultiothread", "cputune", "numatune", "resource", "sysinfo",
		"bootloader", "bootloader_args", "os", "idmap", "features", "cpu",
		"clock", "on_poweroff", "on_reboot", "on_crash", "on_lockfailure",
		"pm", "perf", "devices", "seclabel", "keywrap", "launchSecurity",
	}
	osOrder = []string{
		"type", "firmware", "loader", "nvram", "kernel", "initrd", "cmdline",
		"dtb", "root", "init", "initarg", "initenv", "initdir", "inituser",
		"initgroup", "boot", "bootmenu", "smbios", "bios", "acpi",
	}
	devicesOrder = []string{
		"emulator", "disk", "controller", "lease", "filesystem", "interface",
		"smartcard", "serial", "parallel", "console", "channel", "input",
		"tpm", "graphics", "sound", "audio", "video", "hostdev", "redirdev",
		"redirfilter", "hub", "watchdog", "memballoon", "rng", "panic",
		"shmem", "memory", "iommu", "vsock", "crypto",
	}
)

// attr returns the value of e's attribute key in no namespace.
func attr(e *etree.Element, key string) (string, bool) {
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// attrValue returns the value of e's attribute key in no namespace, or "".
func attrValue(e *etree.Element, key string) string {
	v, _ := attr(e, key)
	return v
}

package libvirtxml

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// mustParse parses b with etree, independently of the package's checks.
func mustParse(t testing.TB, b []byte) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, b)
	}
	if doc.Root() == nil {
		t.Fatalf("output has no root element:\n%s", b)
	}
	return doc
}

// strictFind returns the elements at an absolute path of element names in no
// namespace. (etree's own paths match any prefix: <x:os> for "os".)
func strictFind(doc *etree.Document, path string) []*etree.Element {
	tags := strings.Split(strings.TrimPrefix(path, "/"), "/")
	root := doc.Root()
	if root == nil || root.Space != "" || root.Tag != tags[0] {
		return nil
	}
	cur := []*etree.Element{root}
	for _, tag := range tags[1:] {
		var next []*etree.Element
		for _, e := range cur {
			next = append(next, children(e, tag)...)
		}
		cur = next
	}
	return cur
}

// cmdlineOf returns the text of <os>/<cmdline> as a parser reads it.
func cmdlineOf(t testing.TB, b []byte) (string, bool) {
	t.Helper()
	cs := strictFind(mustParse(t, b), "/domain/os/cmdline")
	switch len(cs) {
	case 0:
		return "", false
	case 1:
		return cs[0].Text(), true
	default:
		t.Fatalf("%d <cmdline> elements", len(cs))
		return "", false
	}
}

// osText returns the text of <os>/<tag>, "" when absent.
func osText(t testing.TB, b []byte, tag string) string {
	t.Helper()
	es := strictFind(mustParse(t, b), "/domain/os/"+tag)
	if len(es) == 0 {
		return ""
	}
	return es[0].Text()
}

// canonical renders an element with its attributes (sorted), non-blank
// character data, comments and child elements, independently of formatting.
func canonical(e *etree.Element) string {
	var b strings.Builder
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		b.WriteString("<" + e.FullTag())
		attrs := make([]string, 0, len(e.Attr))
		for _, a := range e.Attr {
			attrs = append(attrs, a.FullKey()+"="+strconvQuote(a.Value))
		}
		slices.Sort(attrs)
		for _, a := range attrs {
			b.WriteString(" " + a)
		}
		b.WriteString(">")
		for _, t := range e.Child {
			switch t := t.(type) {
			case *etree.Element:
				walk(t)
			case *etree.CharData:
				if strings.TrimSpace(t.Data) != "" {
					b.WriteString("text(" + strconvQuote(t.Data) + ")")
				}
			case *etree.Comment:
				b.WriteString("comment(" + strconvQuote(t.Data) + ")")
			default:
				b.WriteString("other")
			}
		}
		b.WriteString("</" + e.FullTag() + ">")
	}
	walk(e)
	return b.String()
}

func strconvQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// deviceSet returns the canonical forms of all elements under <devices>,
// sorted (a multiset).
func deviceSet(t testing.TB, b []byte) []string {
	t.Helper()
	return devicesWithout(t, b, false, false)
}

// devicesWithout is deviceSet without VNC graphics (vnc) and serial devices
// (serial): the devices nchookd may add or remove.
func devicesWithout(t testing.TB, b []byte, vnc, serial bool) []string {
	t.Helper()
	doc := mustParse(t, b)
	var out []string
	for _, devs := range strictFind(doc, "/domain/devices") {
		dropSerialAppend(devs)
		for _, dev := range devs.ChildElements() {
			if dev.Space == "" && (vnc && dev.Tag == "graphics" && attrValue(dev, "type") == "vnc" || serial && dev.Tag == "serial") {
				continue
			}
			out = append(out, canonical(dev))
		}
	}
	slices.Sort(out)
	return out
}

// assertOnlyOwnedChanged checks that out (a RewriteInstall or FinalDomain
// result for in) differs from in only in the parts the rewrites own: both are
// parsed, the owned parts are removed from both with the package's own
// whitespace handling, and the serialisations must be byte-identical.
func assertOnlyOwnedChanged(t testing.TB, in, out []byte) {
	t.Helper()
	m, ok, err := ReadMeta(out)
	if err != nil || !ok {
		t.Fatalf("output has no kscloud metadata: %v, %v", ok, err)
	}
	// Devices nchookd added on an earlier pass may be gone.
	if prev, ok, err := ReadMeta(in); err == nil && ok {
		m.VNCAdded = m.VNCAdded || prev.VNCAdded
		m.SerialAdded = m.SerialAdded || prev.SerialAdded
	}
	din, err := parseDomain(in)
	if err != nil {
		t.Fatal(err)
	}
	dout, err := parseDomain(out)
	if err != nil {
		t.Fatal(err)
	}
	inHadBoot := len(children(din.os, "boot")) > 0
	a, b := maskOwned(t, din, m, inHadBoot), maskOwned(t, dout, m, inHadBoot)
	if !bytes.Equal(a, b) {
		t.Errorf("parts the rewrite does not own changed:\n%s", diff(a, b))
	}
}

// maskOwned removes what RewriteInstall and FinalDomain own from d.
func maskOwned(t testing.TB, d *domain, m Meta, keepBoot bool) []byte {
	t.Helper()
	owned := []string{"kernel", "initrd", "cmdline", "root", "dtb"}
	if !keepBoot {
		owned = append(owned, "boot")
	}
	for _, tag := range owned {
		removeChildren(d.os, tag)
	}
	removeChildren(d.root, "on_reboot")
	removeChildren(d.root, "on_poweroff")
	for _, md := range children(d.root, "metadata") {
		removeAll(md, func(e *etree.Element) bool { return e.Tag == MetaElement && e.NamespaceURI() == MetaNamespace })
		if onlyBlank(md) { // possibly created for the kscloud element
			remove(md)
		}
	}
	for _, devs := range children(d.root, "devices") {
		dropSerialAppend(devs)
		if m.VNCAdded {
			removeAll(devs, isVNC)
		}
		if m.SerialAdded {
			removeChildren(devs, "serial")
		}
		if onlyBlank(devs) { // possibly created for what was added
			remove(devs)
		}
	}
	b, err := d.bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dropSerialAppend removes the append attribute of serial logs: a rewrite
// with a VNC console owns it (appendConsoleLog).
func dropSerialAppend(devs *etree.Element) {
	for _, s := range children(devs, "serial") {
		for _, src := range children(s, "source") {
			src.RemoveAttr("append")
		}
	}
}

// onlyBlank reports whether e has nothing but indentation inside.
func onlyBlank(e *etree.Element) bool {
	for _, t := range e.Child {
		if !isBlank(t) {
			return false
		}
	}
	return true
}

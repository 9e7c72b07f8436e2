package libvirtxml

import (
	"github.com/beevik/etree"
)

// Attributes of the kscloud metadata element, in the order they are written.
const (
	attrMode           = "mode"
	attrInstaller      = "installer"
	attrPhase          = "phase"
	attrOrigOnPoweroff = "orig-on-poweroff"
	attrOrigOnReboot   = "orig-on-reboot"
	attrVNCAdded       = "vnc-added"
	attrSerialAdded    = "serial-added"
)

var metaAttrs = []string{
	attrMode, attrInstaller, attrPhase, attrOrigOnPoweroff, attrOrigOnReboot,
	attrVNCAdded, attrSerialAdded,
}

// ReadMeta returns the kscloud [Meta] recorded in a domain's <metadata>;
// ok is false when the domain has none.
func ReadMeta(domainXML []byte) (m Meta, ok bool, err error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return Meta{}, false, err
	}
	return d.readMeta()
}

// metaElement returns the kscloud element under <metadata>, or nil.
func (d *domain) metaElement() (*etree.Element, error) {
	md, err := single(d.root, "metadata")
	if err != nil || md == nil {
		return nil, err
	}
	var found *etree.Element
	for _, t := range md.Child {
		e, ok := t.(*etree.Element)
		if !ok || e.Tag != MetaElement || e.NamespaceURI() != MetaNamespace {
			continue
		}
		if found != nil {
			return nil, invalid("more than one kscloud metadata element")
		}
		found = e
	}
	return found, nil
}

// readMeta reads and checks the kscloud metadata element.
func (d *domain) readMeta() (Meta, bool, error) {
	e, err := d.metaElement()
	if err != nil || e == nil {
		return Meta{}, false, err
	}
	get := func(key string) (string, bool) { return attr(e, key) }
	var m Meta
	m.Mode, _ = get(attrMode)
	if m.Mode != ModeBake && m.Mode != ModeInPlace {
		return Meta{}, false, invalid("kscloud metadata: mode %q is not %q or %q", m.Mode, ModeBake, ModeInPlace)
	}
	m.Installer, _ = get(attrInstaller)
	m.Phase, _ = get(attrPhase)
	if m.Phase != PhaseInstall && m.Phase != PhaseFinal {
		return Meta{}, false, invalid("kscloud metadata: phase %q is not %q or %q", m.Phase, PhaseInstall, PhaseFinal)
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{attrOrigOnPoweroff, &m.OrigOnPoweroff}, {attrOrigOnReboot, &m.OrigOnReboot}} {
		v, present := get(f.key)
		if present && !isLifecycleAction(v) {
			return Meta{}, false, invalid("kscloud metadata: %s %q is not a lifecycle action", f.key, v)
		}
		*f.dst = v
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{{attrVNCAdded, &m.VNCAdded}, {attrSerialAdded, &m.SerialAdded}} {
		switch v, _ := get(f.key); v {
		case "yes":
			*f.dst = true
		case "no":
		default:
			return Meta{}, false, invalid("kscloud metadata: %s %q is not \"yes\" or \"no\"", f.key, v)
		}
	}
	return m, true, nil
}

// writeMeta records m in <metadata>, creating <metadata> and the kscloud
// element when missing. An existing element keeps its prefix, namespace
// declarations and foreign attributes; the kscloud attributes are rewritten in
// a fixed order.
func (d *domain) writeMeta(m Meta) error {
	e, err := d.metaElement()
	if err != nil {
		return err
	}
	if e == nil {
		md, err := d.ensure(d.root, "metadata", domainOrder)
		if err != nil {
			return err
		}
		e = etree.NewElement(MetaPrefix + ":" + MetaElement)
		e.CreateAttr("xmlns:"+MetaPrefix, MetaNamespace)
		d.appendChild(md, e)
	}
	kept := e.Attr[:0]
	for _, a := range e.Attr {
		if a.Space == "" && isMetaAttr(a.Key) {
			continue
		}
		kept = append(kept, a)
	}
	e.Attr = kept
	e.CreateAttr(attrMode, m.Mode)
	if m.Installer != "" {
		e.CreateAttr(attrInstaller, m.Installer)
	}
	e.CreateAttr(attrPhase, m.Phase)
	if m.OrigOnPoweroff != "" {
		e.CreateAttr(attrOrigOnPoweroff, m.OrigOnPoweroff)
	}
	if m.OrigOnReboot != "" {
		e.CreateAttr(attrOrigOnReboot, m.OrigOnReboot)
	}
	e.CreateAttr(attrVNCAdded, yesNo(m.VNCAdded))
	e.CreateAttr(attrSerialAdded, yesNo(m.SerialAdded))
	return nil
}

func isMetaAttr(key string) bool {
	for _, k := range metaAttrs {
		if k == key {
			return true
		}
	}
	return false
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// isLifecycleAction reports whether v is a value libvirt accepts in
// <on_reboot> and <on_poweroff>.
func isLifecycleAction(v string) bool {
	switch v {
	case "destroy", "restart", "preserve", "rename-restart":
		return true
	}
	return false
}

package libvirtxml

// MergeDevices moves the child elements of every later top-level <devices>
// into the first one, in document order, and removes the later ones.
// OpenNebula's KVM driver writes the machine's devices in one <devices>
// and, after <features>, further ones: the Q35 PCIe controllers and the
// guest agent channel (FEATURES GUEST_AGENT = "yes" is its default from
// 6.0), and RAW data may add more; libvirt reads them all as one list, in
// that order. The rewrites here own <devices> and want exactly one. A
// document with at most one <devices> is returned as given. A later
// <devices> with attributes (a namespace declaration its children might
// use) is refused with ErrInvalidDomain; comments in a later one are
// dropped.
func MergeDevices(domainXML []byte) ([]byte, error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return nil, err
	}
	devs := children(d.root, "devices")
	if len(devs) <= 1 {
		return domainXML, nil
	}
	first := devs[0]
	for _, later := range devs[1:] {
		if len(later.Attr) > 0 {
			return nil, invalid("a later <devices> element has attributes")
		}
		for _, c := range later.ChildElements() {
			later.RemoveChild(c)
			d.appendChild(first, c)
		}
		remove(later)
	}
	return d.bytes()
}

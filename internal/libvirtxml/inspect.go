package libvirtxml

import (
	"strconv"
	"strings"
)

// DomainName returns the text of the domain's <name>.
func DomainName(domainXML []byte) (string, error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return "", err
	}
	name := text(first(d.root, "name"))
	if name == "" {
		return "", invalid("no <name> element")
	}
	return name, nil
}

// VNCGraphics returns the first VNC console of a domain, typically the live
// XML libvirt reports for a running domain: the listen address (the listen
// attribute, else the first <listen type="address">), the port libvirt
// assigned (-1 when it has not assigned one yet) and the password (absent from
// XML dumped without the secure flag, then ""). ok is false when the domain
// has no VNC graphics.
func VNCGraphics(domainXML []byte) (listen string, port int, passwd string, ok bool, err error) {
	d, err := parseDomain(domainXML)
	if err != nil {
		return "", 0, "", false, err
	}
	devices := first(d.root, "devices")
	if devices == nil {
		return "", 0, "", false, nil
	}
	gs := vncGraphics(devices)
	if len(gs) == 0 {
		return "", 0, "", false, nil
	}
	g := gs[0]
	listen = attrValue(g, "listen")
	if listen == "" {
		for _, l := range children(g, "listen") {
			if attrValue(l, "type") == "address" {
				listen = attrValue(l, "address")
				break
			}
		}
	}
	port = -1
	if v, ok := attr(g, "port"); ok {
		p, perr := strconv.Atoi(strings.TrimSpace(v))
		if perr != nil || p < -1 {
			return "", 0, "", false, invalid("vnc graphics port %q is not a port number", v)
		}
		port = p
	}
	return listen, port, attrValue(g, "passwd"), true, nil
}

package libvirt

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestKickstartAddr(t *testing.T) {
	nets := map[string]struct {
		xml    string
		active bool
	}{
		"default": {`<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/><ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip><ip family='ipv6' address='fd00::1' prefix='64'/></network>`, true},
		"v6first": {`<network><name>v6first</name><ip family='ipv6' address='fd00::1' prefix='64'/><ip address='10.9.0.1' prefix='24'/></network>`, true},
		"down":    {`<network><name>down</name><ip address='10.1.0.1'/></network>`, false},
		"hostbr":  {`<network><name>hostbr</name><forward mode='bridge'/><bridge name='nosuchbr0'/></network>`, true},
	}
	netXML := func(_ context.Context, name string) (string, bool, error) {
		n, ok := nets[name]
		if !ok {
			return "", false, errors.New("network \"" + name + "\": no such network")
		}
		return n.xml, n.active, nil
	}
	for _, c := range []struct{ network, bind, guest, err string }{
		{"user", "127.0.0.1", "10.0.2.2", ""},
		{"", "127.0.0.1", "10.0.2.2", ""},
		{"default", "192.168.122.1", "192.168.122.1", ""},
		{"v6first", "10.9.0.1", "10.9.0.1", ""},
		{"down", "", "", "not active"},
		{"missing", "", "", "no such network"},
		{"hostbr", "", "", "the host has no IPv4 address on it"},
		{"bridge=lo", "", "", "no IPv4 address on this host"},
		{"bridge=nosuchbr0", "", "", `bridge "nosuchbr0"`},
	} {
		a, err := kickstartAddr(context.Background(), c.network, netXML, net.InterfaceByName)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.network, err, c.err)
			}
			continue
		}
		if err != nil || a.Bind != c.bind || a.Guest != c.guest {
			t.Errorf("%s: %+v %v", c.network, a, err)
		}
	}
}

// TestImportRefusesBackingFile: a qcow2 whose backing file names a host
// file would make the image read it; import refuses before registering.
func TestImportRefusesBackingFile(t *testing.T) {
	dir := t.TempDir()
	p := &Provider{opt: Options{ImageDir: dir}, reg: &registry{dir: filepath.Join(dir, "reg")}}
	os.MkdirAll(p.reg.dir, 0o755)
	base := filepath.Join(dir, "base.raw")
	os.WriteFile(base, make([]byte, 1<<20), 0o644)
	evil := filepath.Join(dir, "evil.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", "-b", base, "-F", "raw", evil).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, err := p.ImportImage(context.Background(), evil, "evil", []byte(`{}`), nil)
	if err == nil || !strings.Contains(err.Error(), "has a backing file") {
		t.Fatalf("err %v", err)
	}
	if _, err := p.ImportImage(context.Background(), base, "x", []byte(`not json`), nil); err == nil || !strings.Contains(err.Error(), "provenance: not a JSON object") {
		t.Fatalf("bad provenance: %v", err)
	}
	if recs, _ := p.reg.list(""); len(recs) != 0 {
		t.Fatalf("registered %d records", len(recs))
	}
}

// TestGuestNeighbour: the guest check reads the host's neighbour table: a
// complete entry for the address on the network's bridge, whose MAC is
// one of the domain's interfaces.
func TestGuestNeighbour(t *testing.T) {
	arp := `IP address       HW type     Flags       HW address            Mask     Device
192.168.77.10    0x1         0x2         52:54:00:AB:cd:01     *        virbr7
192.168.77.11    0x1         0x0         00:00:00:00:00:00     *        virbr7
10.0.0.5         0x1         0x2         52:54:00:ab:cd:02     *        eth0
`
	macs, err := domainMACs(`<domain><devices><interface type='network'><mac address='52:54:00:ab:CD:01'/></interface><interface type='user'><mac address='52:54:00:00:00:09'/></interface></devices></domain>`)
	if err != nil || !macs["52:54:00:ab:cd:01"] || !macs["52:54:00:00:00:09"] || len(macs) != 2 {
		t.Fatalf("domainMACs = %v, %v", macs, err)
	}
	for _, c := range []struct {
		ip, dev, mac string
		ok           bool
	}{
		{"192.168.77.10", "virbr7", "52:54:00:ab:cd:01", true},
		{"192.168.77.10", "virbr8", "", false}, // another network
		{"192.168.77.11", "virbr7", "", false}, // incomplete
		{"10.0.0.5", "virbr7", "", false},
		{"192.168.77.12", "virbr7", "", false},
	} {
		mac, ok := neighbourMAC(arp, netip.MustParseAddr(c.ip), c.dev)
		if mac != c.mac || ok != c.ok {
			t.Errorf("neighbourMAC(%s on %s) = %q %v", c.ip, c.dev, mac, ok)
		}
	}
	if _, err := domainMACs("<domain"); err == nil {
		t.Error("broken domain XML accepted")
	}
}

package libvirtxml

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// OpenNebula writes further <devices> after <features> (guest agent, Q35
// controllers): MergeDevices makes one list in document order, which
// libvirt's schema accepts; one <devices> comes back as given.
func TestMergeDevices(t *testing.T) {
	in := []byte("<domain type='kvm'>\n\t<name>one-1</name>\n\t<os>\n\t\t<type>hvm</type>\n\t</os>\n\t<devices>\n\t\t<disk type='file' device='disk'><source file='/d'/><target dev='vda'/></disk>\n\t</devices>\n\t<features>\n\t\t<acpi/>\n\t</features>\n\t<devices>\n\t\t<controller type='pci' index='0' model='pcie-root'/>\n\t\t<!-- dropped -->\n\t</devices>\n\t<devices>\n\t\t<channel type='unix'>\n\t\t\t<source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/>\n\t\t</channel>\n\t</devices>\n</domain>\n")
	out, err := MergeDevices(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "<domain type='kvm'>\n\t<name>one-1</name>\n\t<os>\n\t\t<type>hvm</type>\n\t</os>\n\t<devices>\n\t\t<disk type='file' device='disk'><source file='/d'/><target dev='vda'/></disk>\n\t\t<controller type='pci' index='0' model='pcie-root'/>\n\t\t<channel type='unix'>\n\t\t\t<source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/>\n\t\t</channel>\n\t</devices>\n\t<features>\n\t\t<acpi/>\n\t</features>\n</domain>\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	validateBytes(t, out)
	again, err := MergeDevices(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("one <devices> changed: %v\n%s", err, again)
	}
	bad := strings.Replace(string(in), "\t<devices>\n\t\t<channel", "\t<devices xmlns:x='urn:x'>\n\t\t<channel", 1)
	if _, err := MergeDevices([]byte(bad)); !errors.Is(err, ErrInvalidDomain) {
		t.Fatalf("later <devices> with attributes: %v", err)
	}
}

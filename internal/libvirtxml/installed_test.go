package libvirtxml

import (
	"bytes"
	"strings"
	"testing"
)

// oneDeploy is a deployment file as OpenNebula's KVM driver writes it for
// a VM whose template still has OS/KERNEL_DS (the installer's kernel) and
// OS/BOOT=disk0 (research §2: LibVirtDriverKVM.cc).
const oneDeploy = `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
	<name>one-7</name>
	<vcpu>1</vcpu>
	<memory>524288</memory>
	<os>
		<type arch='x86_64'>hvm</type>
		<kernel>/var/lib/one//datastores/0/7/kernel</kernel>
		<initrd>/var/lib/one//datastores/0/7/initrd</initrd>
		<cmdline>root=/dev/vda inst.ks=http://10.0.0.1/ks.cfg</cmdline>
	</os>
	<devices>
		<disk type='file' device='disk'><source file='/var/lib/one//datastores/0/7/disk.0'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>
	</devices>
	<metadata><one:vm xmlns:one="http://opennebula.org/xmlns/libvirt/1.0"><one:system_datastore>/var/lib/one//datastores/0/7</one:system_datastore></one:vm></metadata>
</domain>
`

func TestInstalledDomainFromCloudXML(t *testing.T) {
	out, err := InstalledDomain([]byte(oneDeploy), ModeInPlace)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"kernel", "initrd", "cmdline"} {
		if osText(t, out, tag) != "" {
			t.Errorf("<%s> still in the installed domain:\n%s", tag, out)
		}
	}
	if bytes.Contains(out, []byte(`<boot dev='hd'/>`)) {
		t.Errorf("boot dev added beside a <boot order>:\n%s", out)
	}
	m, ok, err := ReadMeta(out)
	if err != nil || !ok || m.Phase != PhaseFinal || m.Mode != ModeInPlace || m.OrigOnReboot != "" {
		t.Fatalf("meta %+v ok=%v err=%v", m, ok, err)
	}
	if !strings.Contains(string(out), "one:system_datastore") || !strings.Contains(string(out), "disk.0") {
		t.Errorf("the cloud's own parts were lost:\n%s", out)
	}
	again, err := InstalledDomain(out, ModeInPlace)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("not idempotent (err %v):\n%s\nthen\n%s", err, out, again)
	}
	validateBytes(t, out)
}

func TestInstalledDomainNoBootOrder(t *testing.T) {
	in := strings.Replace(oneDeploy, "<boot order='1'/>", "", 1)
	out, err := InstalledDomain([]byte(in), ModeBake)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`<boot dev='hd'/>`)) {
		t.Errorf("no <boot dev=hd> added:\n%s", out)
	}
	validateBytes(t, out)
}

func TestInstalledDomainOfInstaller(t *testing.T) {
	in := strings.Replace(strings.Replace(oneDeploy, "<boot order='1'/>", "", 1), "<devices>", "<on_reboot>restart</on_reboot><devices>", 1)
	inst, err := RewriteInstall([]byte(in), Install{Cmdline: "inst.ks=x", Mode: ModeInPlace, SerialLog: "/var/lib/one/datastores/0/7/console.log"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := InstalledDomain(inst, ModeInPlace)
	if err != nil {
		t.Fatal(err)
	}
	final, _ := FinalDomain(inst)
	if !bytes.Equal(out, final) {
		t.Errorf("installer domain: InstalledDomain differs from FinalDomain:\n%s\n%s", out, final)
	}
	if osText(t, out, "kernel") != "" || !bytes.Contains(out, []byte("<on_reboot>restart</on_reboot>")) {
		t.Errorf("installer parts left:\n%s", out)
	}
}

func TestInstalledDomainRefuses(t *testing.T) {
	for _, c := range []struct{ xml, mode string }{
		{oneDeploy, "fry"},
		{"<domain><name>x</name>", ModeBake},
		{"<domain><name>x</name><os/><os/><devices/></domain>", ModeBake},
	} {
		if out, err := InstalledDomain([]byte(c.xml), c.mode); err == nil || out != nil {
			t.Errorf("%q/%s: want an error and no output, got %v", c.xml, c.mode, err)
		}
	}
}

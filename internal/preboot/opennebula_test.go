package preboot

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/testenv"
)

var updateOne = flag.Bool("update", false, "rewrite testdata/opennebula/golden")

const oneVMDir = "/var/lib/one/datastores/0/42"

// The deployment files are what OpenNebula's KVM driver writes
// (one@release-{5.12.0,6.10.0,7.0.0}:src/vmm/LibVirtDriverKVM.cc) for a
// VM with OS/KERNEL_DS+INITRD_DS+KERNEL_CMD+ROOT, a qcow2 disk, a CONTEXT
// CD-ROM, a bridged NIC and GRAPHICS VNC; 6.10 and 7.0 with their default
// FEATURES GUEST_AGENT=yes (a second <devices> after <features>) and a
// q35 machine (a third, the PCIe controllers), as the driver writes them.
var oneVersions = []string{"5.12", "6.10", "7.0"}

func oneConfig() *config.Config {
	c := config.Default()
	c.Hook.InstancesRoot = []string{"/var/lib/one//datastores/"}
	c.Installer["fedora-40"] = config.Installer{
		Kernel:  "/var/lib/nchookd/installers/fedora-40/vmlinuz",
		Initrd:  "/var/lib/nchookd/installers/fedora-40/initrd.img",
		Cmdline: "inst.stage2=http://10.0.0.1/fedora/40/os",
	}
	return c
}

func readOne(t *testing.T, name string) []byte {
	t.Helper()
	b, err := readOneFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readOneFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", "opennebula", name))
}

func validateOne(t *testing.T, b []byte) {
	t.Helper()
	if os.Getenv("KSCLOUD_NO_VALIDATE") == "1" {
		t.Log("KSCLOUD_NO_VALIDATE=1: not validated against libvirt's schema")
		return
	}
	tool, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatalf("virt-xml-validate not found: install libvirt-clients and libxml2-utils (or set KSCLOUD_NO_VALIDATE=1)")
	}
	path := filepath.Join(t.TempDir(), "domain.xml")
	os.WriteFile(path, b, 0o644)
	if out, err := exec.Command(tool, path, "domain").CombinedOutput(); err != nil {
		t.Errorf("virt-xml-validate: %v\n%s", err, out)
	}
}

// Golden rewrites of the deployment files of three OpenNebula versions,
// with the directives from CONTEXT/USER_DATA (base64, a catalog installer,
// in place, VNC asked for) and from USER_TEMPLATE/KSCLOUD_MODE alone (the
// VM's own kernel and KERNEL_CMD kept). Each result validates against
// libvirt's schema (the 6.10/7.0 inputs, with several <devices>, do not),
// has one <devices>, and a second pass gives the same bytes.
func TestDecideOneGolden(t *testing.T) {
	cfg := oneConfig()
	for _, ver := range oneVersions {
		for _, vmCase := range []string{"userdata", "attrs"} {
			t.Run(ver+"-"+vmCase, func(t *testing.T) {
				dom := readOne(t, "deployment-"+ver+".xml")
				vm := readOne(t, "vm-"+vmCase+".xml")
				p, err := DecideOne(cfg, vm, dom, oneVMDir)
				if err != nil {
					t.Fatal(err)
				}
				if !p.Changed || p.DomainXML == nil {
					t.Fatalf("not rewritten: %+v", p.Outcome)
				}
				golden := filepath.Join("testdata", "opennebula", "golden", ver+"-"+vmCase+".xml")
				if *updateOne {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					os.WriteFile(golden, p.DomainXML, 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(want, p.DomainXML) {
					t.Fatalf("rewrite differs from %s:\n%s", golden, p.DomainXML)
				}
				validateOne(t, p.DomainXML)
				got := string(p.DomainXML)
				if n := strings.Count(got, "<devices>"); n != 1 {
					t.Errorf("%d <devices> in the result, want 1", n)
				}
				musts := []string{
					"<on_reboot>destroy</on_reboot>", "<on_poweroff>destroy</on_poweroff>",
					"<source path='" + oneVMDir + "/console.log' append='on'/>",
					"<graphics type='vnc' listen='0.0.0.0' port='5942'/>", // OpenNebula's own VNC kept
				}
				if ver != "5.12" {
					musts = append(musts, "org.qemu.guest_agent.0", "pcie-root-port") // merged, not lost
				}
				for _, must := range musts {
					if !strings.Contains(got, must) {
						t.Errorf("result lacks %s", must)
					}
				}
				switch vmCase {
				case "userdata":
					if !strings.Contains(got, "<kernel>/var/lib/nchookd/installers/fedora-40/vmlinuz</kernel>") ||
						!strings.Contains(got, "<cmdline>inst.stage2=http://10.0.0.1/fedora/40/os inst.ks=http://10.0.0.1/ks.cfg inst.text ip=dhcp console=ttyS0</cmdline>") {
						t.Errorf("catalog installer or command line missing:\n%s", got)
					}
					if p.Mode != "in-place" || p.Installer != "fedora-40" {
						t.Errorf("outcome %+v", p.Outcome)
					}
				case "attrs":
					// OpenNebula's own kernel and KERNEL_CMD ("root=/dev/ROOT …"), plus the console.
					if !strings.Contains(got, "<kernel>/var/lib/one//datastores/0/42/kernel</kernel>") ||
						!strings.Contains(got, "<cmdline>root=/dev/vda1 inst.ks=hd:LABEL=CONTEXT:/ks-42.cfg inst.text console=ttyS0</cmdline>") {
						t.Errorf("own kernel or KERNEL_CMD not kept:\n%s", got)
					}
				}
				again, err := DecideOne(cfg, vm, p.DomainXML, oneVMDir)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again.DomainXML, p.DomainXML) {
					t.Errorf("second pass differs:\n%s", again.DomainXML)
				}
				if m, ok, err := libvirtxml.ReadMeta(p.DomainXML); err != nil || !ok || m.Phase != libvirtxml.PhaseInstall {
					t.Errorf("kscloud metadata: %+v %v %v", m, ok, err)
				}
			})
		}
	}
}

// No directives: nothing changes, and the note says where nchookd looked.
func TestDecideOneNoDirectives(t *testing.T) {
	for _, ver := range oneVersions {
		p, err := DecideOne(oneConfig(), readOne(t, "vm-none.xml"), readOne(t, "deployment-"+ver+".xml"), oneVMDir)
		if err != nil {
			t.Fatal(err)
		}
		if p.Changed || p.DomainXML != nil || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "no kscloud directives") {
			t.Fatalf("%s: %+v", ver, p)
		}
	}
}

// OpenNebula 5.12 writes no vm.xml.
func TestDecideOneNoVMXML(t *testing.T) {
	_, err := DecideOne(oneConfig(), nil, readOne(t, "deployment-5.12.xml"), oneVMDir)
	if !errors.Is(err, ErrNoVMXML) || !strings.Contains(err.Error(), "one-42") {
		t.Fatalf("err = %v", err)
	}
}

// vmWith returns vm.xml with the CONTEXT and USER_TEMPLATE additions.
func vmWith(ctx, user string) []byte {
	return []byte(`<VM><ID>42</ID><NAME>x</NAME><TEMPLATE><CONTEXT><DISK_ID>1</DISK_ID>` + ctx +
		`</CONTEXT></TEMPLATE><USER_TEMPLATE>` + user + `</USER_TEMPLATE></VM>`)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Everything in vm.xml is the tenant's (or a stale file's): each of these
// is one error naming the VM and the cause, and no domain.
func TestDecideOneHostile(t *testing.T) {
	dom := readOne(t, "deployment-7.0.xml")
	big := strings.Repeat("a", 70<<10)
	for _, tc := range []struct {
		name string
		vm   []byte
		want string
	}{
		{"stale vm.xml", bytes.Replace(readOne(t, "vm-userdata.xml"), []byte("<ID>42</ID>"), []byte("<ID>41</ID>"), 1), "stale vm.xml"},
		{"two IDs", []byte(`<VM><ID>42</ID><ID>42</ID></VM>`), "2 <ID>"},
		{"not XML", []byte(`<VM><ID>42</ID>`), "vm.xml"},
		{"other root", []byte(`<IMAGE><ID>42</ID></IMAGE>`), "want <VM>"},
		{"entity bomb", []byte(`<!DOCTYPE VM [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><VM><ID>42</ID><TEMPLATE><CONTEXT><USER_DATA>&b;</USER_DATA></CONTEXT></TEMPLATE></VM>`), "DOCTYPE"},
		{"undeclared entity", vmWith(`<USER_DATA>&xxe;</USER_DATA>`, ""), "vm.xml"},
		{"user data twice", vmWith(`<USER_DATA>bootparams=a</USER_DATA><USER_DATA>bootparams=b</USER_DATA>`, ""), "USER_DATA given 2 times"},
		{"unknown encoding", vmWith(`<USER_DATA>x</USER_DATA><USER_DATA_ENCODING>gzip</USER_DATA_ENCODING>`, ""), `"gzip" is not "base64"`},
		{"bad base64", vmWith(`<USER_DATA>!!!!</USER_DATA><USER_DATA_ENCODING>base64</USER_DATA_ENCODING>`, ""), "CONTEXT/USER_DATA"},
		{"user data too large", vmWith(`<USER_DATA>`+big+`</USER_DATA>`, ""), "limit"},
		{"newline in attribute", vmWith("", "<KSCLOUD_BOOTPARAMS>ks=x\nkscloud.installer=evil</KSCLOUD_BOOTPARAMS>"), "line break"},
		{"both sources", vmWith(`<USER_DATA>bootparams=a</USER_DATA>`, `<KSCLOUD_MODE>bake</KSCLOUD_MODE>`), "both"},
		{"unknown installer", vmWith(`<USER_DATA>bootparams=a
kscloud.installer=nope</USER_DATA>`, ""), `installer "nope" is not in the operator's catalog`},
		{"unknown directive", vmWith(`<USER_DATA>bootparams=a
kscloud.evil=1</USER_DATA>`, ""), "CONTEXT/USER_DATA"},
		{"control character", vmWith("<USER_DATA>bootparams=a\x1bb</USER_DATA>", ""), "vm.xml"},
		{"inline kickstart", vmWith(`<USER_DATA>`+b64("Content-Type: multipart/mixed; boundary=XX\r\nMIME-Version: 1.0\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nbootparams=inst.text\r\n--XX\r\nContent-Type: text/x-kickstart\r\n\r\ntext\r\n--XX--\r\n")+`</USER_DATA><USER_DATA_ENCODING>base64</USER_DATA_ENCODING>`, ""), "inline kickstart"},
		{"oversize vm.xml", append([]byte("<VM><ID>42</ID><!--"), append(bytes.Repeat([]byte("x"), MaxOneVMXML), "--></VM>"...)...), "over the"},
		{"deep nesting", []byte("<VM><ID>42</ID>" + strings.Repeat("<A>", 100) + strings.Repeat("</A>", 100) + "</VM>"), "64 elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecideOne(oneConfig(), tc.vm, dom, oneVMDir)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "VM one-42: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line naming VM one-42 and %q", msg, tc.want)
			}
		})
	}
}

// A bootparams value cannot add anything to the domain but the command
// line: markup is text.
func TestDecideOneMarkupStaysText(t *testing.T) {
	vm := vmWith("", `<KSCLOUD_BOOTPARAMS>a&lt;/cmdline&gt;&lt;/os&gt;&lt;devices&gt;&lt;disk type='file'&gt;&lt;source file='/etc/shadow'/&gt;</KSCLOUD_BOOTPARAMS>`)
	p, err := DecideOne(oneConfig(), vm, readOne(t, "deployment-7.0.xml"), oneVMDir)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.DomainXML, []byte("<source file='/etc/shadow'")) || !bytes.Contains(p.DomainXML, []byte("&lt;/cmdline&gt;")) {
		t.Fatalf("markup escaped the command line:\n%s", p.DomainXML)
	}
	validateOne(t, p.DomainXML)
}

// Policy: a mode the operator does not allow, the VM's own kernel when
// allow_instance_kernel is off, and a VM booting from disk with no
// installer named.
func TestDecideOnePolicy(t *testing.T) {
	dom := readOne(t, "deployment-7.0.xml")
	cfg := oneConfig()
	cfg.Policy.Modes = []string{"bake"}
	if _, err := DecideOne(cfg, readOne(t, "vm-attrs.xml"), dom, oneVMDir); !errors.Is(err, ErrPolicy) {
		t.Errorf("in-place with modes=[bake]: %v", err)
	}
	// nchookd acts only below hook.instances_root; a VM without
	// directives elsewhere is none of its business.
	if _, err := DecideOne(oneConfig(), readOne(t, "vm-attrs.xml"), dom, "/srv/other/42"); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("VM directory outside the root: %v", err)
	}
	if p, err := DecideOne(oneConfig(), readOne(t, "vm-none.xml"), dom, "/srv/other/42"); err != nil || p.Changed {
		t.Errorf("no directives outside the root: %v", err)
	}
	cfg = oneConfig()
	cfg.Policy.AllowEKI = false
	if _, err := DecideOne(cfg, readOne(t, "vm-attrs.xml"), dom, oneVMDir); !errors.Is(err, ErrPolicy) {
		t.Errorf("own kernel with allow_instance_kernel=false: %v", err)
	}
	// A VM booting from its disk (no OS/KERNEL): the directives need bootparams and an installer.
	var noKernel []byte
	for _, l := range strings.SplitAfter(string(dom), "\n") {
		if !strings.Contains(l, "<kernel>") && !strings.Contains(l, "<initrd>") && !strings.Contains(l, "<cmdline>") {
			noKernel = append(noKernel, l...)
		}
	}
	if _, err := DecideOne(oneConfig(), readOne(t, "vm-attrs.xml"), noKernel, oneVMDir); err == nil || !strings.Contains(err.Error(), "no bootparams=") {
		t.Errorf("mode only, disk boot: %v", err)
	}
	vm := vmWith(`<USER_DATA>bootparams=inst.text</USER_DATA>`, "")
	if _, err := DecideOne(oneConfig(), vm, noKernel, oneVMDir); err == nil || !strings.Contains(err.Error(), "boots no kernel") {
		t.Errorf("bootparams, disk boot, no installer: %v", err)
	}
	vm = vmWith(`<USER_DATA>bootparams=inst.text
kscloud.installer=fedora-40</USER_DATA>`, "")
	p, err := DecideOne(oneConfig(), vm, noKernel, oneVMDir)
	if err != nil || !bytes.Contains(p.DomainXML, []byte("<kernel>/var/lib/nchookd/installers/fedora-40/vmlinuz</kernel>")) {
		t.Fatalf("catalog installer on a disk-booting VM: %v", err)
	}
	validateOne(t, p.DomainXML)
}

// VNC per policy: kscloud.vnc=yes on a VM without graphics adds a
// loopback console with a password; with policy.vnc = "off" none.
func TestDecideOneVNCPolicy(t *testing.T) {
	var noVNC []byte
	for _, l := range strings.SplitAfter(string(readOne(t, "deployment-7.0.xml")), "\n") {
		if !strings.Contains(l, "<graphics") {
			noVNC = append(noVNC, l...)
		}
	}
	vm := vmWith("", "<KSCLOUD_MODE>bake</KSCLOUD_MODE><KSCLOUD_VNC>yes</KSCLOUD_VNC>")
	p, err := DecideOne(oneConfig(), vm, noVNC, oneVMDir)
	if err != nil {
		t.Fatal(err)
	}
	if p.VNC == nil || p.VNC.Listen != "127.0.0.1" || len(p.VNC.Password) != 8 || !bytes.Contains(p.DomainXML, []byte(`passwd='`+p.VNC.Password+`'`)) {
		t.Fatalf("no loopback VNC: %+v\n%s", p.VNC, p.DomainXML)
	}
	validateOne(t, p.DomainXML)
	cfg := oneConfig()
	cfg.Policy.VNC = config.VNCOff
	p, err = DecideOne(cfg, vm, noVNC, oneVMDir)
	if err != nil || p.VNC != nil || bytes.Contains(p.DomainXML, []byte("<graphics")) || !strings.Contains(strings.Join(p.Notes, ";"), "allows no VNC") {
		t.Fatalf("vnc=off: %v %+v", err, p)
	}
}

// libvirt itself (not only its schema) takes the rewrites of the three
// versions' deployment files: defined and undefined at once under a name
// of this test's own, never started. What a test node lacks is swapped
// for what it has: TCG for KVM, its QEMU for OpenNebula's emulator, user
// networking for the bridge.
func TestDecideOneGoldenDefinesOnLibvirt(t *testing.T) {
	uri := testenv.Libvirt(t)
	for _, ver := range oneVersions {
		p, err := DecideOne(oneConfig(), readOne(t, "vm-userdata.xml"), readOne(t, "deployment-"+ver+".xml"), oneVMDir)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("kscloud-test-one-%d-%s", os.Getpid(), strings.ReplaceAll(ver, ".", ""))
		x := string(p.DomainXML)
		for _, r := range [][2]string{
			{"<domain type='kvm'", "<domain type='qemu'"}, {"<name>one-42</name>", "<name>" + name + "</name>"},
			{"/usr/bin/qemu-kvm-one", "/usr/bin/qemu-system-x86_64"}, {"<emulator>/usr/bin/kvm<", "<emulator>/usr/bin/qemu-system-x86_64<"},
			{"<interface type='bridge'>", "<interface type='user'>"}, {"<source bridge='br0'/>", ""},
			{"<virtualport type='openvswitch'/>", ""}, {"<target dev='one-42-0'/>", ""},
		} {
			x = strings.ReplaceAll(x, r[0], r[1])
		}
		x = regexp.MustCompile(`<uuid>[^<]*</uuid>`).ReplaceAllString(x, "")
		path := filepath.Join(t.TempDir(), "domain.xml")
		os.WriteFile(path, []byte(x), 0o644)
		out, err := exec.Command("virsh", "-c", uri, "define", path).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: virsh define: %v\n%s", ver, err, out)
		}
		live, err := exec.Command("virsh", "-c", uri, "dumpxml", name).CombinedOutput()
		exec.Command("virsh", "-c", uri, "undefine", name).Run()
		if err != nil {
			t.Fatalf("%s: dumpxml: %v\n%s", ver, err, live)
		}
		for _, must := range []string{"<on_reboot>destroy</on_reboot>", "<serial type='file'>", oneVMDir + "/console.log", "console=ttyS0</cmdline>"} {
			if !strings.Contains(string(live), must) {
				t.Errorf("%s: libvirt's definition lacks %s", ver, must)
			}
		}
	}
}

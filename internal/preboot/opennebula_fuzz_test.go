package preboot

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecideOne: any vm.xml (the tenant's USER_DATA and USER_TEMPLATE,
// or a damaged file) gives either one error line naming the VM, or a
// domain with one <devices> and the installer's lifecycle that a second
// pass leaves byte-identical. Never a panic.
func FuzzDecideOne(f *testing.F) {
	for _, name := range []string{"vm-userdata.xml", "vm-attrs.xml", "vm-none.xml"} {
		b, err := readOneFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(vmWith("<USER_DATA>bootparams=a &amp;lt;b</USER_DATA>", ""))
	f.Add(vmWith("", "<KSCLOUD_BOOTPARAMS>console=ttyS3 x</KSCLOUD_BOOTPARAMS><KSCLOUD_VNC>yes</KSCLOUD_VNC>"))
	f.Add([]byte("<VM><ID>42</ID><TEMPLATE><CONTEXT><USER_DATA><![CDATA[H4sI]]></USER_DATA><USER_DATA_ENCODING>base64</USER_DATA_ENCODING></CONTEXT></TEMPLATE></VM>"))
	dom, err := readOneFile("deployment-7.0.xml")
	if err != nil {
		f.Fatal(err)
	}
	cfg := oneConfig()
	f.Fuzz(func(t *testing.T, vm []byte) {
		p, err := DecideOne(cfg, vm, dom, oneVMDir)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "VM one-42: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q", msg)
			}
			return
		}
		if !p.Changed {
			if p.DomainXML != nil {
				t.Fatal("unchanged with a domain")
			}
			return
		}
		if n := bytes.Count(p.DomainXML, []byte("<devices>")); n != 1 || !bytes.Contains(p.DomainXML, []byte("<on_reboot>destroy</on_reboot>")) {
			t.Fatalf("%d <devices>:\n%s", n, p.DomainXML)
		}
		again, err := DecideOne(cfg, vm, p.DomainXML, oneVMDir)
		if err != nil {
			t.Fatalf("second pass: %v", err)
		}
		if p.VNC == nil && !bytes.Equal(again.DomainXML, p.DomainXML) {
			t.Fatalf("second pass differs:\n%s\n---\n%s", p.DomainXML, again.DomainXML)
		}
	})
}

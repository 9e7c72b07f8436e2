package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/userdata"
	"github.com/kscloud/kscloud/internal/virt"
	"github.com/kscloud/kscloud/test/ncsim"
)

// serveKS serves body at /ks.cfg on the host's loopback; the guest (QEMU
// user networking) reaches it at 10.0.2.2.
func serveKS(t *testing.T, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ks.cfg", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://10.0.2.2:" + port + "/ks.cfg"
}

// ncInstall launches an NC-style instance that boots the test installer.
func ncInstall(t *testing.T, n *node, c *virt.Conn, name, userData string) *ncsim.Instance {
	t.Helper()
	k, r := testInstaller(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "root.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	inst := &ncsim.Instance{Name: name, Dir: filepath.Join(n.root, "work", "AIDA", name), Disk: disk,
		Kernel: k, Ramdisk: r, UserData: []byte(userData), UserNetwork: true, MemoryKB: 786432}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ncsim.RunHooks(ctx, n.hooks, "euca-nc-pre-boot", "/", inst.Dir, n.env); err != nil {
		t.Fatal(err)
	}
	xml, err := ncsim.DomainXML(inst)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateXML(ctx, xml); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Destroy(context.Background(), name) })
	return inst
}

func waitConsole(t *testing.T, path, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("no %q on the console within %s:\n%s", want, timeout, tail(string(b), 2000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestE2EInstallInPlaceNC: (a) an NC-style launch with the test installer,
// kickstart over HTTP, in place: the installer reboots, nchookd re-creates
// the domain from its disk, the installed system boots through the BIOS
// and extlinux (SCSI disk, serial on port 1 = ttyS1) and prints its marker.
func TestE2EInstallInPlaceNC(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	n.serve(t)
	ks := baseKS + "reboot\n"
	url := serveKS(t, ks)
	name := fmt.Sprintf("i-in%05x", os.Getpid()&0xfffff)
	inst := ncInstall(t, n, c, name, "bootparams=inst.ks="+url+" ip=dhcp "+tcgArgs+"\nkscloud.mode=in-place\n")
	st := waitPhase(t, n, name, "final", 6*time.Minute)
	waitConsole(t, inst.ConsoleLog(), "kscloud-installed sha256="+sha(ks), 4*time.Minute)
	t.Logf("in place on real libvirt: stop → final gap %d ms", st.FinalGapMS)
}

// TestE2EBakeInlineKickstartNC: (b) bake with the kickstart inline in
// user-data (a MIME text/x-kickstart part): nchookd injects it into a
// per-instance copy of the installer initrd, the installer powers off,
// nchookd records the install finished, the disk holds the installed
// system (booted alone, it prints the marker of that kickstart), and
// euca-nc-pre-clean removes the initrd copy.
func TestE2EBakeInlineKickstartNC(t *testing.T) {
	c := openVirt(t)
	n := newNode(t)
	n.serve(t)
	ks := baseKS + "poweroff\n"
	ud, err := userdata.Render(userdata.RenderInput{BootParams: "inst.ks=file:/ks.cfg " + tcgArgs, Kickstart: []byte(ks)})
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("i-bi%05x", os.Getpid()&0xfffff)
	inst := ncInstall(t, n, c, name, string(ud))
	copyPath := filepath.Join(inst.Dir, "kscloud-initrd.img")
	if _, err := os.Stat(copyPath); err != nil {
		t.Fatalf("no per-instance initrd: %v", err)
	}
	waitPhase(t, n, name, "finished", 6*time.Minute)
	// Boot the disk alone: what a registered image would boot.
	ctx := context.Background()
	bootLog := filepath.Join(t.TempDir(), "boot.log")
	diskXML := fmt.Sprintf(`<domain type="qemu"><name>%s-disk</name><memory unit="MiB">512</memory><vcpu>1</vcpu>
<os><type>hvm</type><boot dev="hd"/></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
<devices><disk type="file" device="disk"><source file="%s"/><target dev="sda" bus="scsi"/></disk>
<serial type="file"><source path="%s"/><target port="1"/></serial></devices></domain>`, name, inst.Disk, bootLog)
	if err := c.CreateXML(ctx, diskXML); err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx, name+"-disk")
	waitConsole(t, bootLog, "kscloud-installed sha256="+sha(ks), 4*time.Minute)
	if _, err := ncsim.RunHooks(ctx, n.hooks, "euca-nc-pre-clean", "/", inst.Dir, n.env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(copyPath); !os.IsNotExist(err) {
		t.Fatalf("pre-clean left the initrd copy: %v", err)
	}
	if _, err := status(t, n, name); err == nil {
		t.Fatal("nchookd still lists the instance after pre-clean")
	}
}

package oneendpoint

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/virt"
)

// Node makes the endpoint deploy VMs on a real libvirtd as OpenNebula's
// KVM driver does (research §2, §4): a transient domain one-<ID> whose
// XML has <kernel>/<initrd>/<cmdline> ("root=/dev/"+ROOT+" "+KERNEL_CMD)
// when OS/KERNEL is set, <boot order> from OS/BOOT, VNC on the port in
// GRAPHICS/PORT, no serial console and no on_* elements (libvirt's
// defaults: a guest reboot restarts the same kernel and initrd), from 6.0
// the guest agent's channel in a second <devices> (FEATURES GUEST_AGENT's
// default), and the driver's <metadata><one:vm>. Per
// deploy it writes <vm_dir>/deployment.<seq> and (6.0+) <vm_dir>/vm.xml and runs
// the deploy script with the domain XML on stdin, as one_vmm_exec does.
// A guest power-off makes the domain vanish; the state probe (every
// Options.Monitor) misses it and after Options.Misses the VM is POWEROFF.
type Node struct {
	// LibvirtURI (default qemu:///system).
	LibvirtURI string
	// Hostname is the host name in HISTORY (default "node1").
	Hostname string
	// DeployScript, when set, replaces remotes/vmm/kvm/deploy: it runs as
	// "DeployScript <deployment file> <host>" with the domain XML on stdin
	// and prints the deploy id (the node hook of nchookd goes here). Empty:
	// the endpoint creates the domain itself (the stock script's virsh create).
	DeployScript string
	// Env is the deploy script's environment (default: this process's).
	Env []string
	// DomainType is "qemu" (TCG, the default here) or "kvm".
	DomainType string
	// ConsoleLog, when set, adds a serial console logged to
	// <vm_dir>/console.log — a debugging aid OpenNebula does not have
	// (its driver writes no serial); off by default.
	ConsoleLog bool

	conn *virt.Conn
	stop context.CancelFunc
}

// Start connects to libvirtd and starts the state probe; Close ends both.
func (n *Node) start(s *Server) error {
	if n.LibvirtURI == "" {
		n.LibvirtURI = "qemu:///system"
	}
	if n.DomainType == "" {
		n.DomainType = "qemu"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := virt.Open(ctx, n.LibvirtURI, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	n.conn = c
	pctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	go n.probe(pctx, s)
	return nil
}

func (n *Node) close(s *Server) {
	if n.conn == nil {
		return
	}
	n.stop()
	s.mu.Lock()
	var names []string
	for _, v := range s.vms {
		if v.domain {
			names = append(names, fmt.Sprintf("one-%d", v.id))
		}
	}
	s.mu.Unlock()
	for _, name := range names {
		n.conn.Destroy(context.Background(), name)
	}
	n.conn.Close()
}

// probe plays the KVM state probe: every Monitor, each VM oned thinks
// runs is looked up; a vanished domain starts the miss count
// (domainGone), a crashed one is UNKNOWN.
func (n *Node) probe(ctx context.Context, s *Server) {
	t := time.NewTicker(s.opts.Monitor)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A VM whose state changes while the list is taken (a deploy
		// finishing under the lock) is judged at the next probe, not by
		// a list taken before its domain existed.
		s.mu.Lock()
		gens := map[int]int{}
		for id, v := range s.vms {
			gens[id] = v.gen
		}
		s.mu.Unlock()
		doms, err := n.conn.List(ctx)
		if err != nil {
			continue
		}
		state := map[string]string{}
		for _, d := range doms {
			if d.Active {
				state[d.Name] = d.State
			}
		}
		s.mu.Lock()
		for _, v := range s.vms {
			if g, ok := gens[v.id]; !ok || g != v.gen || v.state != StActive || v.lcm != LcmRunning {
				continue
			}
			st, ok := state[fmt.Sprintf("one-%d", v.id)]
			if !v.domain {
				// Missed before: a domain of that name running again
				// (re-created on the node, e.g. by nchookd after the
				// installer's reboot) is the VM found again, and it
				// stays RUNNING; still missing counts on (domainGone).
				if ok && st == "running" {
					v.domain = true
				}
				continue
			}
			switch {
			case !ok || st == "shutoff":
				s.domainGone(v)
			case st == "crashed":
				v.set(StActive, LcmUnknown)
			}
		}
		s.mu.Unlock()
	}
}

func (n *Node) destroy(v *vm) {
	if n.conn != nil {
		n.conn.Destroy(context.Background(), fmt.Sprintf("one-%d", v.id))
	}
}

// domainXML renders the VM as LibVirtDriverKVM.cc does (the parts kscloud
// relies on).
func (n *Node) domainXML(s *Server, v *vm) (string, error) {
	esc := func(x string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(x))
		return b.String()
	}
	mem, _ := strconv.Atoi(v.tmpl.Get("MEMORY"))
	cpus, _ := strconv.Atoi(firstNonEmpty(v.tmpl.Get("VCPU"), "1"))
	var b strings.Builder
	fmt.Fprintf(&b, "<domain type='%s'>\n\t<name>one-%d</name>\n\t<vcpu>%d</vcpu>\n\t<memory unit='KiB'>%d</memory>\n", n.DomainType, v.id, max(cpus, 1), mem*1024)
	b.WriteString("\t<os>\n\t\t<type arch='x86_64'>hvm</type>\n")
	os := v.tmpl.Vector("OS")
	if os == nil {
		os = &Attr{}
	}
	if k := os.Sub("KERNEL"); k != "" {
		fmt.Fprintf(&b, "\t\t<kernel>%s</kernel>\n", esc(k))
		if i := os.Sub("INITRD"); i != "" {
			fmt.Fprintf(&b, "\t\t<initrd>%s</initrd>\n", esc(i))
		}
		cmd := os.Sub("KERNEL_CMD")
		if r := os.Sub("ROOT"); r != "" {
			cmd = "root=/dev/" + r + " " + cmd
		}
		if cmd != "" {
			fmt.Fprintf(&b, "\t\t<cmdline>%s</cmdline>\n", esc(cmd))
		}
	}
	b.WriteString("\t</os>\n\t<features><acpi/></features>\n\t<devices>\n")
	order := map[string]int{}
	for i, d := range strings.Split(os.Sub("BOOT"), ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			order[d] = i + 1
		}
	}
	dir := v.dir(s)
	for _, d := range v.tmpl.Vectors("DISK") {
		bus := "virtio"
		if strings.HasPrefix(d.Sub("TARGET"), "sd") {
			bus = "scsi"
		}
		fmt.Fprintf(&b, "\t\t<disk type='file' device='disk'><source file='%s'/><target dev='%s' bus='%s'/><driver name='qemu' type='raw' cache='none'/>",
			esc(filepath.Join(dir, "disk."+d.Sub("DISK_ID"))), esc(d.Sub("TARGET")), bus)
		if o := order["disk"+d.Sub("DISK_ID")]; o > 0 {
			fmt.Fprintf(&b, "<boot order='%d'/>", o)
		}
		b.WriteString("</disk>\n")
	}
	if c := v.tmpl.Vector("CONTEXT"); c != nil {
		fmt.Fprintf(&b, "\t\t<disk type='file' device='cdrom'><source file='%s'/><target dev='hda' bus='ide'/><readonly/><driver name='qemu' type='raw'/></disk>\n",
			esc(filepath.Join(dir, "disk."+c.Sub("DISK_ID"))))
	}
	for _, nic := range v.tmpl.Vectors("NIC") {
		// OpenNebula writes <interface type='bridge'> on the vnet's
		// bridge; this node has none: user networking stands in (same
		// MAC, virtio model), so the guest sees its eth0.
		fmt.Fprintf(&b, "\t\t<interface type='user'><mac address='%s'/><model type='virtio'/></interface>\n", esc(nic.Sub("MAC")))
	}
	if n.ConsoleLog {
		fmt.Fprintf(&b, "\t\t<serial type='file'><source path='%s'/><target port='0'/></serial>\n", esc(filepath.Join(dir, "console.log")))
	}
	if g := v.tmpl.Vector("GRAPHICS"); g != nil && strings.EqualFold(g.Sub("TYPE"), "VNC") {
		fmt.Fprintf(&b, "\t\t<graphics type='vnc' listen='%s' port='%s'", esc(firstNonEmpty(g.Sub("LISTEN"), "0.0.0.0")), esc(g.Sub("PORT")))
		if p := g.Sub("PASSWD"); p != "" {
			fmt.Fprintf(&b, " passwd='%s'", esc(p))
		}
		b.WriteString("/>\n")
	}
	b.WriteString("\t</devices>\n")
	if s.versionAtLeast(6, 0) {
		// FEATURES GUEST_AGENT = "yes", the driver's default from 6.0
		// (vmm_exec_kvm.conf): a second <devices> after the first, as
		// LibVirtDriverKVM.cc writes it.
		b.WriteString("\t<devices>\n\t\t<channel type='unix'>\n\t\t\t<source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/>\n\t\t</channel>\n\t</devices>\n")
	}
	fmt.Fprintf(&b, "\t<metadata>\n\t\t<one:vm xmlns:one=\"http://opennebula.org/xmlns/libvirt/1.0\">\n\t\t\t<one:system_datastore>%s</one:system_datastore>\n\t\t\t<one:name>%s</one:name>\n\t\t\t<one:opennebula_version>%s</one:opennebula_version>\n\t\t</one:vm>\n\t</metadata>\n",
		esc(dir), esc(v.name), esc(s.opts.Version))
	b.WriteString("</domain>\n")
	return b.String(), nil
}

// contextISO writes the CONTEXT CD-ROM: context.sh and the FILES_DS files
// under their image names, volume label CONTEXT.
func (n *Node) contextISO(s *Server, v *vm) error {
	c := v.tmpl.Vector("CONTEXT")
	if c == nil {
		return nil
	}
	tmp, err := os.MkdirTemp("", "one-context-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var sh strings.Builder
	sh.WriteString("# Context variables generated by OpenNebula\n")
	for _, p := range c.Vec {
		if p.Name == "FILES_DS" || p.Name == "DISK_ID" || p.Name == "TARGET" {
			continue
		}
		fmt.Fprintf(&sh, "%s='%s'\n", p.Name, strings.ReplaceAll(p.Value, "'", `'\''`))
	}
	if err := os.WriteFile(filepath.Join(tmp, "context.sh"), []byte(sh.String()), 0o644); err != nil {
		return err
	}
	for _, id := range v.ctxFiles {
		if im, ok := s.imgs[id]; ok {
			if err := copyFile(im.source, filepath.Join(tmp, im.name)); err != nil {
				return err
			}
		}
	}
	iso := filepath.Join(v.dir(s), "disk."+c.Sub("DISK_ID"))
	out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-V", "CONTEXT", "-J", "-R", "-o", iso, tmp).CombinedOutput()
	if err != nil {
		return fmt.Errorf("context ISO: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// deploy writes the deployment file and vm.xml and starts the domain (or
// runs DeployScript), returning the deploy id.
func (n *Node) deploy(s *Server, v *vm) (string, error) {
	if n.conn == nil {
		return "", errors.New("node mode is not started")
	}
	if err := n.contextISO(s, v); err != nil {
		return "", err
	}
	dom, err := n.domainXML(s, v)
	if err != nil {
		return "", err
	}
	dir := v.dir(s)
	dfile := filepath.Join(dir, fmt.Sprintf("deployment.%d", v.seq-1))
	if err := os.WriteFile(dfile, []byte(dom), 0o644); err != nil {
		return "", err
	}
	// one_vmm_exec writes vm.xml from 6.0 on (5.12 has no such step).
	if s.versionAtLeast(6, 0) {
		if err := os.WriteFile(filepath.Join(dir, "vm.xml"), []byte(s.vmXML(v, true)), 0o644); err != nil {
			return "", err
		}
	}
	name := fmt.Sprintf("one-%d", v.id)
	if n.DeployScript != "" {
		cmd := exec.Command(n.DeployScript, dfile, s.nodeName())
		cmd.Stdin = strings.NewReader(dom)
		cmd.Env = n.Env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("deploy script: %v: %s", err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.conn.CreateXML(ctx, dom); err != nil {
		return "", err
	}
	if !s.versionAtLeast(6, 0) {
		return name, nil
	}
	if info, err := n.conn.Info(ctx, name); err == nil {
		return info.UUID, nil
	}
	return name, nil
}

// diskXML is a DISK as the driver writes it.
func (n *Node) diskXML(s *Server, v *vm, d *Attr) string {
	esc := func(x string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(x))
		return b.String()
	}
	bus := "virtio"
	if strings.HasPrefix(d.Sub("TARGET"), "sd") {
		bus = "scsi"
	}
	return fmt.Sprintf("<disk type='file' device='disk'><source file='%s'/><target dev='%s' bus='%s'/><driver name='qemu' type='raw' cache='none'/></disk>",
		esc(filepath.Join(v.dir(s), "disk."+d.Sub("DISK_ID"))), esc(d.Sub("TARGET")), bus)
}

// hotplug attaches (or detaches) a disk of a running VM's domain, as the
// driver's attach_disk/detach_disk do; a powered-off VM has no domain:
// the next deployment carries the change.
func (n *Node) hotplug(s *Server, v *vm, d *Attr, attach bool) error {
	if n.conn == nil || !v.domain {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("one-%d", v.id)
	if attach {
		return n.conn.AttachDevice(ctx, name, n.diskXML(s, v, d))
	}
	return n.conn.DetachDevice(ctx, name, n.diskXML(s, v, d))
}

// DomainXML returns the live XML of a VM's domain (tests).
func (s *Server) DomainXML(id int) (string, error) {
	if s.opts.Node == nil || s.opts.Node.conn == nil {
		return "", errors.New("not in node mode")
	}
	return s.opts.Node.conn.XML(context.Background(), fmt.Sprintf("one-%d", id), false)
}

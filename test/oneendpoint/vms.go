package oneendpoint

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// VM states and LCM states (include/VirtualMachine.h, same numbers 5.12 → 7.0).
const (
	StInit      = 0
	StPending   = 1
	StHold      = 2
	StActive    = 3
	StStopped   = 4
	StSuspended = 5
	StDone      = 6
	StPoweroff  = 8
	StUndeployd = 9

	LcmInit              = 0
	LcmProlog            = 1
	LcmBoot              = 2
	LcmRunning           = 3
	LcmEpilog            = 11
	LcmShutdown          = 12
	LcmUnknown           = 16
	LcmHotplug           = 17
	LcmShutdownPoweroff  = 18
	LcmBootUnknown       = 19
	LcmBootPoweroff      = 20
	LcmBootUndeploy      = 22
	LcmHotplugSaveas     = 26
	LcmHotplugSaveasPoff = 27
	LcmHotplugPrologPoff = 33
	LcmHotplugEpilogPoff = 34
	LcmBootFailure       = 36
	LcmPrologFailure     = 39
	LcmEpilogFailure     = 40
)

var stateNames = map[int]string{0: "INIT", 1: "PENDING", 2: "HOLD", 3: "ACTIVE", 4: "STOPPED", 5: "SUSPENDED", 6: "DONE", 8: "POWEROFF", 9: "UNDEPLOYED", 10: "CLONING", 11: "CLONING_FAILURE"}

var lcmNames = map[int]string{0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING", 11: "EPILOG", 12: "SHUTDOWN", 16: "UNKNOWN",
	17: "HOTPLUG", 18: "SHUTDOWN_POWEROFF", 19: "BOOT_UNKNOWN", 20: "BOOT_POWEROFF", 22: "BOOT_UNDEPLOY",
	26: "HOTPLUG_SAVEAS", 27: "HOTPLUG_SAVEAS_POWEROFF", 33: "HOTPLUG_PROLOG_POWEROFF", 34: "HOTPLUG_EPILOG_POWEROFF",
	36: "BOOT_FAILURE", 39: "PROLOG_FAILURE", 40: "EPILOG_FAILURE"}

type vm struct {
	id              int
	name            string
	state, lcm      int
	prevSt, prevLcm int
	stime, etime    int64
	deployID        string
	seq             int // history sequence (deployment.<seq>)
	hstime          int64
	tmpl, user      *Template
	domain          bool              // the guest runs (plain mode) / the libvirt domain exists (node mode)
	gen             int               // bumps on every state change; stale timers check it
	gone            int               // bumps each time the state probe starts missing the domain
	booted          int               // boots of this VM (installer loops are visible in tests)
	ctxFiles        []int             // CONTEXT FILES_DS images (the ISO carries them)
	monitoring      map[string]string // merged VM monitor probe attributes (vmmonitor.go)
	monTime         int64
}

func (v *vm) stateName() string {
	if v.state == StActive {
		return lcmNames[v.lcm]
	}
	return stateNames[v.state]
}

func (v *vm) set(st, lcm int) {
	v.prevSt, v.prevLcm = v.state, v.lcm
	v.state, v.lcm = st, lcm
	v.gen++
}

func (v *vm) dir(s *Server) string { return fmt.Sprintf("%s/datastores/0/%d", s.opts.Dir, v.id) }

type vnet struct {
	next   int
	leases map[string]int // ip → vm
}

func newVnet() *vnet { return &vnet{next: 10, leases: map[string]int{}} }

const (
	netID      = 0
	netName    = "kscloud-net"
	netPrefix  = "192.168.150."
	netGateway = "192.168.150.1"
	netMask    = "255.255.255.0"
	netDNS     = "192.168.150.1"
	netBridge  = "br0"
	nodeName   = "node1"
)

func (n *vnet) lease(vmid int) (string, error) {
	for i := 0; i < 240; i++ {
		ip := netPrefix + strconv.Itoa(10+(n.next-10+i)%240)
		if _, used := n.leases[ip]; !used {
			n.leases[ip] = vmid
			n.next = 10 + (n.next-10+i+1)%240
			return ip, nil
		}
	}
	return "", fmt.Errorf("Cannot get IP/MAC lease from virtual network %d.", netID)
}

func (s *Server) vnXML() string {
	var leases strings.Builder
	ips := make([]string, 0, len(s.vnet.leases))
	for ip := range s.vnet.leases {
		ips = append(ips, ip)
	}
	slices.Sort(ips)
	for _, ip := range ips {
		fmt.Fprintf(&leases, "<LEASE><IP>%s</IP><VM>%d</VM></LEASE>", ip, s.vnet.leases[ip])
	}
	return fmt.Sprintf("<VNET><ID>%d</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME><NAME>%s</NAME>"+
		"<BRIDGE>%s</BRIDGE><VN_MAD>bridge</VN_MAD><USED_LEASES>%d</USED_LEASES>"+
		"<TEMPLATE><GATEWAY>%s</GATEWAY><NETWORK_MASK>%s</NETWORK_MASK><DNS>%s</DNS></TEMPLATE>"+
		"<AR_POOL><AR><AR_ID>0</AR_ID><TYPE>IP4</TYPE><IP>%s10</IP><SIZE>240</SIZE><LEASES>%s</LEASES></AR></AR_POOL></VNET>",
		netID, cdata(netName), cdata(netBridge), len(s.vnet.leases), cdata(netGateway), cdata(netMask), cdata(netDNS), netPrefix, leases.String())
}

func (s *Server) vnInfo(p params) (any, error) {
	id, err := p.int(1)
	if err != nil {
		return nil, err
	}
	if id != netID {
		return nil, noExists("virtual network", id)
	}
	return s.vnXML(), nil
}

func (s *Server) vnPool(p params) (any, error) {
	return "<VNET_POOL>" + s.vnXML() + "</VNET_POOL>", nil
}

// sysAttrs are the attributes oned moves from the user's template into
// the VM's TEMPLATE; the rest stay in USER_TEMPLATE.
var sysAttrs = []string{"CPU", "VCPU", "MEMORY", "DISK", "NIC", "OS", "GRAPHICS", "CONTEXT", "FEATURES", "INPUT", "RAW", "CPU_MODEL", "VIDEO"}

var fileRE = regexp.MustCompile(`^\$FILE\[\s*IMAGE_ID\s*=\s*"?(\d+)"?\s*\]$`)

func (s *Server) vmAllocate(p params) (any, error) {
	str, err := p.str(1)
	if err != nil {
		return nil, err
	}
	hold := false
	if p.n() > 2 {
		if hold, err = p.boolean(2); err != nil {
			return nil, err
		}
	}
	t, err := ParseTemplate(str)
	if err != nil {
		return nil, &rpcError{code: ErrInternal, msg: err.Error()}
	}
	fail := func(msg string) error { return allocateError("virtual machine", msg) }
	if t.Has("RAW") {
		return nil, s.authzError("VM Template includes a restricted attribute RAW/DATA.")
	}
	if c := t.Get("CPU"); c == "" || !positiveFloat(c) {
		return nil, fail("CPU attribute must be a positive float or integer value.")
	}
	if m, err := strconv.Atoi(t.Get("MEMORY")); err != nil || m <= 0 {
		return nil, fail("MEMORY attribute must be a positive integer value.")
	}
	v := &vm{id: s.nextVM, stime: now(), tmpl: &Template{}, user: &Template{}}
	v.name = t.Get("NAME")
	if v.name == "" {
		v.name = fmt.Sprintf("one-%d", v.id)
	} else if err := validName(v.name); err != nil {
		return nil, fail(err.Error())
	}
	t.Erase("NAME")
	for _, a := range t.Attrs {
		if slices.Contains(sysAttrs, a.Name) {
			v.tmpl.Attrs = append(v.tmpl.Attrs, a)
		} else {
			v.user.Attrs = append(v.user.Attrs, a)
		}
	}
	if os := v.tmpl.Vector("OS"); os != nil {
		if err := checkBoot(os.Sub("BOOT")); err != nil {
			return nil, fail(err.Error())
		}
		for _, k := range []struct{ ds, typ string }{{"KERNEL_DS", "KERNEL"}, {"INITRD_DS", "RAMDISK"}} {
			ref := os.Sub(k.ds)
			if ref == "" {
				continue
			}
			m := fileRE.FindStringSubmatch(ref)
			if m == nil {
				return nil, fail(fmt.Sprintf("Error parsing: %s. syntax error, unexpected RSTRING, expecting VARIABLE", strings.TrimLeft(ref, " \t\n\v\f\r")))
			}
			id, _ := strconv.Atoi(m[1])
			im, ok := s.imgs[id]
			if !ok {
				return nil, fail(fmt.Sprintf("Error getting image [%d].", id))
			}
			name := strings.TrimSuffix(k.ds, "_DS")
			// VirtualMachine::set_os_file (VirtualMachineParser.cc): named
			// by the base name (KERNEL, INITRD), the READY text by the
			// image's type, its misplaced quote included.
			if imageTypes[im.typ] != k.typ {
				return nil, fail(fmt.Sprintf("%s needs an image of type %s and not %s", name, k.typ, imageTypes[im.typ]))
			}
			if im.state != ImgReady {
				return nil, fail(fmt.Sprintf("%s Image '%d 'not in READY state.", imageTypes[im.typ], id))
			}
			os.SetSub(k.ds+"_ID", strconv.Itoa(id))
			os.SetSub(k.ds+"_SOURCE", im.source)
			os.SetSub(k.ds+"_DSID", strconv.Itoa(im.ds.id))
		}
	}
	// Disks: acquire images in order, undo on failure.
	var acquired []*image
	release := func() {
		for _, im := range acquired {
			s.releaseImage(im, v.id)
		}
	}
	used := map[string]bool{}
	for _, d := range v.tmpl.Vectors("DISK") {
		if t := d.Sub("TARGET"); t != "" {
			used[t] = true
		}
	}
	for i, d := range v.tmpl.Vectors("DISK") {
		d.SetSub("DISK_ID", strconv.Itoa(i))
		im, err := s.diskImage(d, v.id)
		if err != nil {
			release()
			return nil, fail(err.Error())
		}
		if im != nil {
			acquired = append(acquired, im)
		}
		assignTarget(d, used)
	}
	for i, n := range v.tmpl.Vectors("NIC") {
		if id := n.Sub("NETWORK_ID"); id != "" && id != strconv.Itoa(netID) || n.Sub("NETWORK") != "" && n.Sub("NETWORK") != netName {
			release()
			return nil, fail(fmt.Sprintf("Error getting virtual network [%s].", firstNonEmpty(n.Sub("NETWORK_ID"), n.Sub("NETWORK"))))
		}
		ip, err := s.vnet.lease(v.id)
		if err != nil {
			release()
			return nil, fail(err.Error())
		}
		last, _ := strconv.Atoi(ip[strings.LastIndex(ip, ".")+1:])
		n.SetSub("NIC_ID", strconv.Itoa(i))
		n.SetSub("NETWORK", netName)
		n.SetSub("NETWORK_ID", strconv.Itoa(netID))
		n.SetSub("IP", ip)
		n.SetSub("MAC", fmt.Sprintf("02:00:c0:a8:96:%02x", last))
		n.SetSub("BRIDGE", netBridge)
		n.SetSub("TARGET", fmt.Sprintf("one-%d-%d", v.id, i))
		n.SetSub("VN_MAD", "bridge")
	}
	if c := v.tmpl.Vector("CONTEXT"); c != nil {
		if strings.EqualFold(c.Sub("NETWORK"), "YES") {
			for i, n := range v.tmpl.Vectors("NIC") {
				e := fmt.Sprintf("ETH%d_", i)
				c.SetSub(e+"IP", n.Sub("IP"))
				c.SetSub(e+"MAC", n.Sub("MAC"))
				c.SetSub(e+"MASK", netMask)
				c.SetSub(e+"GATEWAY", netGateway)
				c.SetSub(e+"DNS", netDNS)
			}
		}
		if f := c.Sub("FILES_DS"); f != "" {
			ids, resolved, err := s.filesDS(f)
			if err != nil {
				release()
				return nil, fail(err.Error())
			}
			v.ctxFiles = ids
			c.SetSub("FILES_DS", resolved)
		}
		c.SetSub("DISK_ID", strconv.Itoa(len(v.tmpl.Vectors("DISK"))))
		c.SetSub("TARGET", "hda")
	}
	if g := v.tmpl.Vector("GRAPHICS"); g != nil && g.Sub("PORT") == "" {
		g.SetSub("PORT", strconv.Itoa(s.opts.VNCStart+v.id))
	}
	v.tmpl.Set("VMID", strconv.Itoa(v.id))
	v.tmpl.Set("AUTOMATIC_REQUIREMENTS", "!(PUBLIC_CLOUD = YES) & !(PIN_POLICY = PINNED)")
	s.nextVM++
	s.vms[v.id] = v
	if hold {
		v.set(StHold, LcmInit)
	} else {
		v.set(StPending, LcmInit)
		s.schedule(v)
	}
	return v.id, nil
}

func positiveFloat(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f > 0
}

var bootRE = regexp.MustCompile(`(?i)^(DISK|NIC)\d+$`)

func checkBoot(b string) error {
	if b == "" {
		return nil
	}
	for _, d := range strings.Split(b, ",") {
		if !bootRE.MatchString(strings.TrimSpace(d)) {
			return fmt.Errorf("Wrong OS/BOOT value: \"%s\"", b)
		}
	}
	return nil
}

func assignTarget(d *Attr, used map[string]bool) {
	if d.Sub("TARGET") != "" {
		return
	}
	prefix := firstNonEmpty(d.Sub("DEV_PREFIX"), "vd")
	for c := 'a'; c <= 'z'; c++ {
		t := prefix + string(c)
		if !used[t] {
			used[t] = true
			d.SetSub("TARGET", t)
			return
		}
	}
}

// diskImage resolves and acquires a DISK's image (nil for a volatile disk).
func (s *Server) diskImage(d *Attr, vmid int) (*image, error) {
	ref := d.Sub("IMAGE_ID")
	var im *image
	switch {
	case ref != "":
		id, err := strconv.Atoi(ref)
		if err != nil {
			return nil, fmt.Errorf("Wrong IMAGE_ID %q", ref)
		}
		if im = s.imgs[id]; im == nil {
			return nil, fmt.Errorf("Error getting image [%d].", id)
		}
	case d.Sub("IMAGE") != "":
		id, ok := s.imageNamed(d.Sub("IMAGE"))
		if !ok {
			return nil, fmt.Errorf("Error getting image named %s.", d.Sub("IMAGE"))
		}
		im = s.imgs[id]
	default:
		if d.Sub("TYPE") == "" || d.Sub("SIZE") == "" {
			return nil, fmt.Errorf("DISK has no IMAGE_ID, IMAGE or volatile TYPE and SIZE")
		}
		if n, err := strconv.Atoi(d.Sub("SIZE")); err != nil || n <= 0 {
			return nil, fmt.Errorf("Size attribute must be a positive integer value.")
		}
		return nil, nil
	}
	if err := s.acquireImage(im, vmid); err != nil {
		return nil, err
	}
	d.SetSub("IMAGE", im.name)
	d.SetSub("IMAGE_ID", strconv.Itoa(im.id))
	d.SetSub("IMAGE_STATE", strconv.Itoa(im.state))
	d.SetSub("SOURCE", im.source)
	d.SetSub("DATASTORE_ID", strconv.Itoa(im.ds.id))
	d.SetSub("TYPE", "FILE")
	d.SetSub("SIZE", strconv.Itoa(im.sizeMB))
	d.SetSub("DRIVER", im.format)
	if d.Sub("DEV_PREFIX") == "" {
		d.SetSub("DEV_PREFIX", firstNonEmpty(im.tmpl.Get("DEV_PREFIX"), "vd"))
	}
	if im.persistent {
		d.SetSub("PERSISTENT", "YES")
		d.SetSub("CLONE", "NO")
	} else {
		d.SetSub("CLONE", "YES")
	}
	return im, nil
}

func (s *Server) acquireImage(im *image, vmid int) error {
	switch im.typ {
	case 3, 4, 5:
		return fmt.Errorf("Image %d of type %s cannot be used as DISK.", im.id, imageTypes[im.typ])
	}
	switch im.state {
	case ImgReady:
	case ImgUsed:
		if im.persistent {
			return fmt.Errorf("Cannot acquire image %d, it is persistent and already in use", im.id)
		}
	case ImgUsedPers:
		return fmt.Errorf("Cannot acquire image %d, it is persistent and already in use", im.id)
	case ImgLocked, ImgLockedUse:
		return fmt.Errorf("Cannot acquire image %d, it is locked", im.id)
	case ImgError:
		return fmt.Errorf("Cannot acquire image %d, it is in an error state", im.id)
	default:
		return fmt.Errorf("Cannot acquire image %d, it is in state %s", im.id, imageStateNames[im.state])
	}
	im.vms = append(im.vms, vmid)
	if im.persistent {
		im.state = ImgUsedPers
	} else {
		im.state = ImgUsed
	}
	return nil
}

func (s *Server) releaseImage(im *image, vmid int) {
	if i := slices.Index(im.vms, vmid); i >= 0 {
		im.vms = slices.Delete(im.vms, i, i+1)
	}
	if len(im.vms) == 0 && (im.state == ImgUsed || im.state == ImgUsedPers) {
		im.state = ImgReady
	}
}

// schedule plays the scheduler then prolog and boot.
func (s *Server) schedule(v *vm) {
	gen := v.gen
	s.after(s.opts.Sched, func() {
		if v.gen != gen || v.state != StPending {
			return
		}
		v.set(StActive, LcmProlog)
		v.seq++
		v.hstime = now()
		s.prolog(v)
	})
}

func (s *Server) prolog(v *vm) {
	gen := v.gen
	s.after(s.opts.Prolog, func() {
		if v.gen != gen {
			return
		}
		if err := s.transfer(v); err != nil {
			v.set(StActive, LcmPrologFailure)
			s.setError(v, "Error executing image transfer script: "+err.Error())
			return
		}
		v.set(StActive, LcmBoot)
		s.boot(v, LcmBoot)
	})
}

// transfer plays the TM: disks into the VM directory, KERNEL/INITRD
// copied from KERNEL_DS/INITRD_DS and OS/KERNEL set to the copy (only at
// prolog).
func (s *Server) transfer(v *vm) error {
	dir := v.dir(s)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range v.tmpl.Vectors("DISK") {
		file := filepath.Join(dir, "disk."+d.Sub("DISK_ID"))
		os.Remove(file)
		switch {
		case d.Sub("IMAGE_ID") != "" && d.Sub("PERSISTENT") == "YES":
			if err := os.Symlink(d.Sub("SOURCE"), file); err != nil {
				return err
			}
		case d.Sub("IMAGE_ID") != "":
			if err := copyFile(d.Sub("SOURCE"), file); err != nil {
				return err
			}
		default:
			n, _ := strconv.Atoi(d.Sub("SIZE"))
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			f.Truncate(int64(n) << 20)
			f.Close()
		}
	}
	if os := v.tmpl.Vector("OS"); os != nil {
		for _, k := range []struct{ ds, dst, file string }{{"KERNEL_DS", "KERNEL", "kernel"}, {"INITRD_DS", "INITRD", "initrd"}} {
			src := os.Sub(k.ds + "_SOURCE")
			if src == "" {
				continue
			}
			dst := filepath.Join(dir, k.file)
			if err := copyFile(src, dst); err != nil {
				return err
			}
			os.SetSub(k.dst, dst)
		}
	}
	return nil
}

// boot plays the deploy: BOOT (or BOOT_POWEROFF) → RUNNING.
func (s *Server) boot(v *vm, via int) {
	gen := v.gen
	s.after(s.opts.Boot, func() {
		if v.gen != gen {
			return
		}
		if err := s.deploy(v); err != nil {
			v.set(StActive, LcmBootFailure)
			s.setError(v, "Error deploying virtual machine: "+err.Error())
			return
		}
		v.set(StActive, LcmRunning)
		v.booted++
		s.guest(v)
	})
}

func (s *Server) deploy(v *vm) error {
	if s.opts.DeployFail != "" {
		return fmt.Errorf("%s", s.opts.DeployFail)
	}
	if g := v.tmpl.Vector("GRAPHICS"); g != nil && strings.EqualFold(g.Sub("RANDOM_PASSWD"), "YES") && g.Sub("PASSWD") == "" {
		g.SetSub("PASSWD", randomPasswd())
	}
	if s.opts.Node != nil {
		id, err := s.opts.Node.deploy(s, v)
		if err != nil {
			return err
		}
		v.deployID = id
	} else if v.deployID == "" {
		if s.versionAtLeast(6, 0) {
			v.deployID = fmt.Sprintf("%08x-0000-4000-8000-%012x", v.id, v.stime)
		} else {
			v.deployID = fmt.Sprintf("one-%d", v.id)
		}
	}
	v.domain = true
	return nil
}

func randomPasswd() string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// guest plays the guest in plain mode: an installer (a kernel boot) with
// Options.Install set writes the mark on disk 0 and powers off.
func (s *Server) guest(v *vm) {
	if s.opts.Node != nil || s.opts.Install <= 0 {
		return
	}
	os := v.tmpl.Vector("OS")
	if os == nil || os.Sub("KERNEL") == "" {
		return
	}
	gen := v.gen
	s.after(s.opts.Install, func() {
		if v.gen != gen || !v.domain {
			return
		}
		if f, err := openDisk0(v.dir(s)); err == nil {
			f.WriteAt([]byte(InstalledMark), 0)
			f.Close()
		}
		s.domainGone(v)
	})
}

func openDisk0(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "disk.0"), os.O_WRONLY, 0)
}

// domainGone: the guest powered off (a transient domain vanishes). The
// state probe misses it Misses times, then SHUTDOWN_POWEROFF → POWEROFF.
func (s *Server) domainGone(v *vm) {
	v.domain = false
	v.gone++
	gen, gone := v.gen, v.gone
	s.after(s.opts.Monitor*time.Duration(s.opts.Misses), func() {
		// Misses count only while consecutive (probe_db: a VM seen again
		// starts from zero): a domain that came back, even if it went
		// again since, does not end in POWEROFF on the first count.
		if v.gen != gen || v.gone != gone || v.state != StActive || v.lcm != LcmRunning || v.domain {
			return
		}
		v.set(StActive, LcmShutdownPoweroff)
		g2 := v.gen
		s.after(s.opts.Epilog, func() {
			if v.gen == g2 {
				v.set(StPoweroff, LcmInit)
			}
		})
	})
}

// GuestPowerOff plays a guest halting (kickstart "poweroff").
func (s *Server) GuestPowerOff(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[id]
	if !ok || !v.domain {
		return fmt.Errorf("vm %d has no running domain", id)
	}
	if s.opts.Node != nil {
		s.opts.Node.destroy(v)
	}
	s.domainGone(v)
	return nil
}

// GuestReboot plays a guest reboot: invisible to oned (no on_reboot in the
// domain: the same kernel and initrd boot again).
func (s *Server) GuestReboot(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[id]
	if !ok || !v.domain {
		return fmt.Errorf("vm %d has no running domain", id)
	}
	v.booted++
	return nil
}

// GuestReport plays a OneGate PUT /vm: attributes merged into USER_TEMPLATE.
func (s *Server) GuestReport(id int, attrs map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[id]
	if !ok {
		return fmt.Errorf("vm %d does not exist", id)
	}
	for k, val := range attrs {
		v.user.Set(strings.ToUpper(k), val)
	}
	return nil
}

// Boots says how many times a VM's guest booted (reboots included).
func (s *Server) Boots(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vms[id]; ok {
		return v.booted
	}
	return 0
}

// VMDir is a VM's directory on the (played) node.
func (s *Server) VMDir(id int) string { return fmt.Sprintf("%s/datastores/0/%d", s.opts.Dir, id) }

func (s *Server) setError(v *vm, msg string) {
	v.user.Set("ERROR", time.Now().Format("Mon Jan 2 15:04:05 2006")+": "+msg)
}

func (s *Server) vmArg(p params, i int) (*vm, error) {
	id, err := p.int(i)
	if err != nil {
		return nil, err
	}
	v, ok := s.vms[id]
	if !ok {
		return nil, noExists("virtual machine", id)
	}
	return v, nil
}

func (s *Server) vmInfo(p params) (any, error) {
	v, err := s.vmArg(p, 1)
	if err != nil {
		return nil, err
	}
	if p.n() > 2 {
		if _, err := p.boolean(2); err != nil {
			return nil, err
		}
	}
	return s.vmXML(v, true), nil
}

// shortUser keeps what vmpool.info's short body keeps of USER_TEMPLATE.
func shortUser(t *Template) *Template {
	out := &Template{}
	for _, a := range t.Attrs {
		if a.Name == "LABELS" || a.Name == "ERROR" || strings.HasPrefix(a.Name, "SCHED_") {
			out.Attrs = append(out.Attrs, a)
		}
	}
	return out
}

func shortTemplate(t *Template) *Template {
	out := &Template{}
	for _, a := range t.Attrs {
		switch a.Name {
		case "CPU", "VCPU", "MEMORY", "DISK", "NIC", "GRAPHICS", "AUTOMATIC_REQUIREMENTS":
			out.Attrs = append(out.Attrs, a)
		}
	}
	return out
}

func (s *Server) vmXML(v *vm, extended bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<VM><ID>%d</ID><UID>%d</UID><GID>1</GID><UNAME>%s</UNAME><GNAME>users</GNAME><NAME>%s</NAME>",
		v.id, s.uid, s.opts.User, cdata(v.name))
	b.WriteString("<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A><GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>")
	fmt.Fprintf(&b, "<LAST_POLL>%d</LAST_POLL><STATE>%d</STATE><LCM_STATE>%d</LCM_STATE><PREV_STATE>%d</PREV_STATE><PREV_LCM_STATE>%d</PREV_LCM_STATE>",
		now(), v.state, v.lcm, v.prevSt, v.prevLcm)
	fmt.Fprintf(&b, "<RESCHED>0</RESCHED><STIME>%d</STIME><ETIME>%d</ETIME><DEPLOY_ID>%s</DEPLOY_ID>%s", v.stime, v.etime, cdata(v.deployID), v.monitoringXML())
	if extended {
		b.WriteString(v.tmpl.XML("TEMPLATE"))
		b.WriteString(v.user.XML("USER_TEMPLATE"))
	} else {
		b.WriteString(shortTemplate(v.tmpl).XML("TEMPLATE"))
		b.WriteString(shortUser(v.user).XML("USER_TEMPLATE"))
	}
	if v.seq > 0 {
		fmt.Fprintf(&b, "<HISTORY_RECORDS><HISTORY><OID>%d</OID><SEQ>%d</SEQ><HOSTNAME>%s</HOSTNAME><HID>0</HID><CID>0</CID><STIME>%d</STIME><ETIME>0</ETIME>"+
			"<VM_MAD>kvm</VM_MAD><TM_MAD>ssh</TM_MAD><DS_ID>0</DS_ID><ACTION>0</ACTION></HISTORY></HISTORY_RECORDS>",
			v.id, v.seq-1, cdata(s.nodeName()), v.hstime)
	} else {
		b.WriteString("<HISTORY_RECORDS/>")
	}
	b.WriteString("</VM>")
	return b.String()
}

func (s *Server) nodeName() string {
	if s.opts.Node != nil && s.opts.Node.Hostname != "" {
		return s.opts.Node.Hostname
	}
	return nodeName
}

func (s *Server) vmPool(p params, extended bool) (any, error) {
	for i := 1; i <= 4; i++ {
		if _, err := p.int(i); err != nil {
			return nil, err
		}
	}
	state, _ := p.int(4)
	if p.n() > 5 {
		kv, err := p.str(5)
		if err != nil {
			return nil, err
		}
		if kv != "" {
			if s.versionAtLeast(6, 10) {
				return nil, &rpcError{code: ErrInternal, msg: "JSON query search is not supported by the SQL backend"}
			}
			return nil, &rpcError{code: ErrInternal, msg: "Full text search is not supported by the SQL backend"}
		}
	}
	var b strings.Builder
	b.WriteString("<VM_POOL>")
	for _, id := range sortedIDs(s.vms) {
		v := s.vms[id]
		switch {
		case state == -2:
		case state == -1 && v.state == StDone:
			continue
		case state >= 0 && v.state != state:
			continue
		}
		b.WriteString(s.vmXML(v, extended))
	}
	b.WriteString("</VM_POOL>")
	return b.String(), nil
}

func actionError(action, msg string, id int) error {
	return &rpcError{code: ErrAction, msg: fmt.Sprintf("Error performing action \"%s\": %s", action, msg), id: id}
}

func (s *Server) vmAction(p params) (any, error) {
	action, err := p.str(1)
	if err != nil {
		return nil, err
	}
	v, err := s.vmArg(p, 2)
	if err != nil {
		return nil, err
	}
	notAvail := func() error {
		return actionError(action, "This action is not available for state "+v.stateName(), v.id)
	}
	switch action {
	case "poweroff", "poweroff-hard":
		ok := v.state == StActive && (v.lcm == LcmRunning || v.lcm == LcmUnknown) ||
			action == "poweroff-hard" && v.state == StActive && v.lcm == LcmShutdownPoweroff
		if !ok {
			return nil, notAvail()
		}
		v.set(StActive, LcmShutdownPoweroff)
		if s.opts.Node != nil {
			s.opts.Node.destroy(v)
		}
		v.domain = false
		gen := v.gen
		s.after(s.opts.Epilog, func() {
			if v.gen == gen {
				v.set(StPoweroff, LcmInit)
			}
		})
	case "resume":
		switch {
		case v.state == StPoweroff:
			v.set(StActive, LcmBootPoweroff)
			v.seq++
			v.hstime = now()
			s.boot(v, LcmBootPoweroff)
		case v.state == StActive && v.lcm == LcmUnknown:
			v.set(StActive, LcmBootUnknown)
			s.boot(v, LcmBootUnknown)
		case v.state == StUndeployd || v.state == StStopped:
			v.set(StPending, LcmInit)
			s.schedule(v)
		default:
			return nil, notAvail()
		}
	case "terminate", "terminate-hard":
		switch {
		case v.state == StDone:
		case v.state == StPending || v.state == StHold:
			s.done(v)
		case v.state == StActive && (v.lcm == LcmRunning || v.lcm == LcmUnknown):
			v.set(StActive, LcmShutdown)
			if s.opts.Node != nil {
				s.opts.Node.destroy(v)
			}
			v.domain = false
			s.epilog(v)
		case v.state == StPoweroff || v.state == StSuspended || v.state == StStopped || v.state == StUndeployd:
			s.epilogNow(v)
		case v.state == StActive && (v.lcm == LcmBootFailure || v.lcm == LcmPrologFailure || v.lcm == LcmEpilogFailure):
			s.done(v)
		default:
			return nil, actionError(action, fmt.Sprintf("Could not terminate VM %d, wrong state %s.", v.id, v.stateName()), v.id)
		}
	case "hold":
		if v.state != StPending {
			return nil, notAvail()
		}
		v.set(StHold, LcmInit)
	case "release":
		if v.state != StHold {
			return nil, notAvail()
		}
		v.set(StPending, LcmInit)
		s.schedule(v)
	case "reboot", "reboot-hard":
		if v.state != StActive || v.lcm != LcmRunning {
			return nil, notAvail()
		}
		v.booted++
	case "undeploy", "undeploy-hard":
		if !(v.state == StActive && (v.lcm == LcmRunning || v.lcm == LcmUnknown) || v.state == StPoweroff) {
			return nil, notAvail()
		}
		if s.opts.Node != nil {
			s.opts.Node.destroy(v)
		}
		v.domain = false
		v.set(StActive, LcmEpilog)
		gen := v.gen
		s.after(s.opts.Epilog, func() {
			if v.gen == gen {
				v.set(StUndeployd, LcmInit)
			}
		})
	case "stop", "suspend", "resched", "unresched":
		return nil, notAvail()
	default:
		// VirtualMachineAction::request_execute, rc -3.
		return nil, &rpcError{code: ErrAction, msg: fmt.Sprintf("Action \"%s\" is not supported", action), id: v.id}
	}
	return v.id, nil
}

func (s *Server) epilog(v *vm) {
	gen := v.gen
	s.after(s.opts.Epilog, func() {
		if v.gen == gen {
			s.epilogNow(v)
		}
	})
}

func (s *Server) epilogNow(v *vm) {
	v.set(StActive, LcmEpilog)
	gen := v.gen
	s.after(s.opts.Epilog, func() {
		if v.gen == gen {
			s.done(v)
		}
	})
}

// done ends a VM: images released, leases freed, files gone; the VM stays
// visible in DONE.
func (s *Server) done(v *vm) {
	for _, d := range v.tmpl.Vectors("DISK") {
		if id, err := strconv.Atoi(d.Sub("IMAGE_ID")); err == nil {
			if im, ok := s.imgs[id]; ok {
				s.releaseImage(im, v.id)
			}
		}
	}
	for ip, id := range s.vnet.leases {
		if id == v.id {
			delete(s.vnet.leases, ip)
		}
	}
	if s.opts.Node != nil {
		s.opts.Node.destroy(v)
	}
	v.domain = false
	os.RemoveAll(v.dir(s))
	v.etime = now()
	v.set(StDone, LcmInit)
}

// updateconf sections and the sub-attributes each may carry
// (UPDATECONF_ATTRS, one@7.0.0:src/vm/VirtualMachineTemplate.cc).
var updateconfAttrs = []struct {
	name string
	subs []string
}{
	{"OS", []string{"ARCH", "MACHINE", "KERNEL", "INITRD", "BOOTLOADER", "BOOT", "KERNEL_CMD", "ROOT", "SD_DISK_BUS", "UUID", "FIRMWARE"}},
	{"FEATURES", []string{"PAE", "ACPI", "APIC", "LOCALTIME", "HYPERV", "GUEST_AGENT", "VIRTIO_SCSI_QUEUES", "IOTHREADS"}},
	{"INPUT", []string{"TYPE", "BUS"}},
	{"GRAPHICS", []string{"TYPE", "LISTEN", "PASSWD", "KEYMAP", "COMMAND"}},
	{"RAW", []string{"TYPE", "DATA", "DATA_VMX", "VALIDATE"}},
	{"CPU_MODEL", []string{"MODEL", "FEATURES"}},
}

// updateconfLCM are the ACTIVE LCM states updateconf accepts: LCM_INIT,
// PROLOG, RUNNING, EPILOG, SHUTDOWN, CLEANUP_RESUBMIT, SHUTDOWN_POWEROFF,
// CLEANUP_DELETE, HOTPLUG_SAVEAS_POWEROFF, *_UNDEPLOY, HOTPLUG_*_POWEROFF,
// the *_FAILURE ones, PROLOG_MIGRATE_POWEROFF*, DISK_SNAPSHOT*_POWEROFF.
var updateconfLCM = map[int]bool{0: true, 1: true, 3: true, 11: true, 12: true, 15: true, 18: true, 23: true, 27: true,
	29: true, 30: true, 31: true, 33: true, 34: true, 36: true, 39: true, 40: true, 42: true, 43: true, 44: true,
	47: true, 50: true, 51: true, 52: true, 53: true}

func (s *Server) vmUpdateConf(p params) (any, error) {
	v, err := s.vmArg(p, 1)
	if err != nil {
		return nil, err
	}
	str, err := p.str(2)
	if err != nil {
		return nil, err
	}
	// The type argument exists from 6.2.0 (release-6.2.0
	// RequestManagerVirtualMachine.cc VirtualMachineUpdateConf; absent in
	// 6.0.x, where a fourth parameter goes unread).
	merge := false
	if p.n() > 3 && s.versionAtLeast(6, 2) {
		typ, err := p.int(3)
		if err != nil {
			return nil, err
		}
		if typ < 0 || typ > 1 {
			return nil, &rpcError{code: ErrXMLRPCAPI, msg: "Wrong update type"}
		}
		merge = typ == 1
	}
	// VirtualMachine::updateconf's state gate (same list 5.12 → 7.0); its
	// failures are INTERNAL (RequestManagerVirtualMachine.cc).
	if v.state == StInit || v.state == StDone || v.state == StSuspended || v.state == StStopped ||
		v.state == StActive && !updateconfLCM[v.lcm] {
		return nil, &rpcError{code: ErrInternal, msg: "configuration cannot be updated in state " + v.stateName(), id: v.id}
	}
	t, err := ParseTemplate(str)
	if err != nil {
		return nil, &rpcError{code: ErrInternal, msg: err.Error(), id: v.id}
	}
	if r := t.Vector("RAW"); r != nil {
		old := v.tmpl.Vector("RAW")
		if old == nil || old.Sub("DATA") != r.Sub("DATA") {
			return nil, s.authzError("VM Template includes a restricted attribute RAW/DATA.")
		}
	}
	if os := t.Vector("OS"); os != nil {
		if err := checkBoot(os.Sub("BOOT")); err != nil {
			return nil, &rpcError{code: ErrInternal, msg: err.Error(), id: v.id}
		}
	}
	for _, sec := range updateconfAttrs {
		nv := t.Vector(sec.name)
		if merge && nv == nil {
			continue
		}
		old := v.tmpl.Vector(sec.name)
		if old == nil {
			if nv == nil {
				continue
			}
			old = &Attr{Name: sec.name, IsVec: true}
			v.tmpl.Attrs = append(v.tmpl.Attrs, old)
		}
		for _, sub := range sec.subs {
			if merge {
				if nv.Has(sub) {
					old.SetSub(sub, nv.Sub(sub))
				}
				continue
			}
			old.DelSub(sub)
			if nv != nil && nv.Has(sub) {
				old.SetSub(sub, nv.Sub(sub))
			}
		}
		if len(old.Vec) == 0 {
			v.tmpl.Erase(sec.name)
		}
	}
	if nc := t.Vector("CONTEXT"); nc != nil {
		old := v.tmpl.Vector("CONTEXT")
		if old == nil {
			return nil, &rpcError{code: ErrInternal, msg: "Virtual machine does not have context, cannot add a new one.", id: v.id}
		}
		// FILES_DS as oned keeps it (VirtualMachine::updateconf): 5.12 and
		// 6.0 drop the one sent and keep the resolved one they have; 6.2+
		// (equal_values) keep a value sent unchanged and parse a changed
		// one again, which must then be $FILE[...] references.
		if nf := nc.Sub("FILES_DS"); nc.Has("FILES_DS") {
			of := old.Sub("FILES_DS")
			switch {
			case !s.versionAtLeast(6, 2):
				nc.DelSub("FILES_DS")
				if of != "" && nf != "" {
					nc.SetSub("FILES_DS", of)
				}
			case nf == of:
			case nf == "":
				nc.DelSub("FILES_DS")
				v.ctxFiles = nil
			default:
				ids, resolved, err := s.filesDS(nf)
				if err != nil {
					return nil, &rpcError{code: ErrInternal, msg: err.Error(), id: v.id}
				}
				v.ctxFiles = ids
				nc.SetSub("FILES_DS", resolved)
			}
		}
		keep := &Attr{Name: "CONTEXT", IsVec: true}
		for _, pr := range old.Vec {
			if strings.HasPrefix(pr.Name, "ETH") || pr.Name == "DISK_ID" || pr.Name == "TARGET" || merge {
				keep.Vec = append(keep.Vec, pr)
			}
		}
		for _, pr := range nc.Vec {
			if !strings.HasPrefix(pr.Name, "ETH") {
				keep.SetSub(pr.Name, pr.Value)
			}
		}
		*old = *keep
	}
	return v.id, nil
}

// Has says whether a vector carries sub.
func (a *Attr) Has(sub string) bool {
	for _, p := range a.Vec {
		if p.Name == sub {
			return true
		}
	}
	return false
}

func (s *Server) vmUpdate(p params) (any, error) {
	v, err := s.vmArg(p, 1)
	if err != nil {
		return nil, err
	}
	str, err := p.str(2)
	if err != nil {
		return nil, err
	}
	typ := 0
	if p.n() > 3 {
		if typ, err = p.int(3); err != nil {
			return nil, err
		}
	}
	t, err := ParseTemplate(str)
	if err != nil {
		return nil, &rpcError{code: ErrInternal, msg: err.Error(), id: v.id}
	}
	if typ == 1 {
		v.user.Merge(t)
	} else {
		v.user = t
	}
	return v.id, nil
}

func (s *Server) vmDiskSaveas(p params) (any, error) {
	v, err := s.vmArg(p, 1)
	if err != nil {
		return nil, err
	}
	diskID, err := p.int(2)
	if err != nil {
		return nil, err
	}
	name, err := p.str(3)
	if err != nil {
		return nil, err
	}
	typ, err := p.str(4)
	if err != nil {
		return nil, err
	}
	if _, err := p.int(5); err != nil {
		return nil, err
	}
	running := v.state == StActive && v.lcm == LcmRunning
	if !running && v.state != StPoweroff && v.state != StSuspended {
		return nil, &rpcError{code: ErrInternal, msg: "VM has to be RUNNING, POWEROFF or SUSPENDED to save disks.", id: v.id}
	}
	var disk *Attr
	for _, d := range v.tmpl.Vectors("DISK") {
		if d.Sub("DISK_ID") == strconv.Itoa(diskID) {
			disk = d
		}
	}
	if disk == nil {
		return nil, &rpcError{code: ErrInternal, msg: "VM disk does not exist.", id: v.id}
	}
	srcID, err := strconv.Atoi(disk.Sub("IMAGE_ID"))
	if err != nil {
		return nil, &rpcError{code: ErrInternal, msg: "Cannot use DISK. DISK does not have a valid IMAGE_ID.", id: v.id}
	}
	src, ok := s.imgs[srcID]
	if !ok {
		return nil, noExists("image", srcID)
	}
	ityp := src.typ
	if typ != "" {
		if ityp = imageTypeNum(typ); ityp < 0 {
			return nil, &rpcError{code: ErrInternal, msg: "Unknown image type " + typ, id: v.id}
		}
	}
	if ityp == 3 || ityp == 4 || ityp == 5 {
		return nil, &rpcError{code: ErrInternal, msg: "KERNEL, RAMDISK and CONTEXT files must be managed through Datastore files.", id: v.id}
	}
	if err := validName(name); err != nil {
		return nil, allocateError("image", err.Error())
	}
	if id, ok := s.imageNamed(name); ok {
		return nil, allocateError("image", fmt.Sprintf("NAME is already taken by IMAGE %d.", id))
	}
	n := &image{id: s.nextImg, name: name, typ: ityp, state: ImgLocked, regtime: now(), sizeMB: src.sizeMB, ds: src.ds,
		format: src.format, tmpl: &Template{}}
	n.tmpl.Set("SAVED_IMAGE_ID", strconv.Itoa(src.id))
	n.tmpl.Set("SAVED_DISK_ID", strconv.Itoa(diskID))
	n.tmpl.Set("SAVED_VM_ID", strconv.Itoa(v.id))
	n.tmpl.Set("DEV_PREFIX", firstNonEmpty(src.tmpl.Get("DEV_PREFIX"), "vd"))
	s.nextImg++
	n.source = fmt.Sprintf("%s/%x", n.ds.path, randomPasswd()+strconv.Itoa(n.id))
	s.imgs[n.id] = n
	back := StPoweroff
	if running {
		v.set(StActive, LcmHotplugSaveas)
		back = StActive
	} else if v.state == StSuspended {
		back = StSuspended
		v.gen++
	} else {
		v.set(StActive, LcmHotplugSaveasPoff)
	}
	from := filepath.Join(v.dir(s), "disk."+strconv.Itoa(diskID))
	if _, err := os.Stat(from); err != nil {
		from = src.source
	}
	gen := v.gen
	go func() {
		err := copyFile(from, n.source)
		time.Sleep(s.opts.Hotplug)
		s.mu.Lock()
		defer s.mu.Unlock()
		if v.gen == gen && v.state == StActive && (v.lcm == LcmHotplugSaveas || v.lcm == LcmHotplugSaveasPoff) {
			if back == StActive {
				v.set(StActive, LcmRunning)
			} else {
				v.set(back, LcmInit)
			}
		}
		if s.imgs[n.id] != n || n.state != ImgLocked { // deleted meanwhile
			return
		}
		if err != nil {
			n.state = ImgError
			n.tmpl.Set("ERROR", err.Error())
			return
		}
		n.state = ImgReady
	}()
	return n.id, nil
}

func (s *Server) vmAttach(p params) (any, error) {
	v, err := s.vmArg(p, 1)
	if err != nil {
		return nil, err
	}
	str, err := p.str(2)
	if err != nil {
		return nil, err
	}
	t, err := ParseTemplate(str)
	if err != nil {
		return nil, &rpcError{code: ErrInternal, msg: err.Error(), id: v.id}
	}
	// DispatchManager::attach: the state first, then
	// VirtualMachine::set_up_attach_disk; VirtualMachineAttach answers
	// every failure of it with ACTION (RequestManagerVirtualMachine.cc).
	running := v.state == StActive && v.lcm == LcmRunning
	if !running && v.state != StPoweroff {
		return nil, &rpcError{code: ErrAction, msg: fmt.Sprintf("Could not attach a new disk to VM %d, wrong state %s.", v.id, v.stateName()), id: v.id}
	}
	d := t.Vector("DISK")
	if d == nil {
		return nil, &rpcError{code: ErrAction, msg: "Internal error parsing DISK attribute", id: v.id}
	}
	used := map[string]bool{}
	maxID := -1
	for _, o := range v.tmpl.Vectors("DISK") {
		used[o.Sub("TARGET")] = true
		if n, _ := strconv.Atoi(o.Sub("DISK_ID")); n > maxID {
			maxID = n
		}
	}
	if c := v.tmpl.Vector("CONTEXT"); c != nil {
		if n, _ := strconv.Atoi(c.Sub("DISK_ID")); n > maxID {
			maxID = n
		}
	}
	if tg := d.Sub("TARGET"); tg != "" && used[tg] {
		return nil, &rpcError{code: ErrAction, msg: "Target " + tg + " is already in use.", id: v.id}
	}
	d.SetSub("DISK_ID", strconv.Itoa(maxID+1))
	if _, err := s.diskImage(d, v.id); err != nil {
		return nil, &rpcError{code: ErrAction, msg: err.Error(), id: v.id}
	}
	assignTarget(d, used)
	v.tmpl.Attrs = append(v.tmpl.Attrs, d)
	back, backLcm := StActive, LcmRunning
	if running {
		v.set(StActive, LcmHotplug)
	} else {
		back, backLcm = StPoweroff, LcmInit
		v.set(StActive, LcmHotplugPrologPoff)
	}
	gen := v.gen
	s.after(s.opts.Hotplug, func() {
		if v.gen == gen {
			file := filepath.Join(v.dir(s), "disk."+d.Sub("DISK_ID"))
			if d.Sub("PERSISTENT") == "YES" {
				os.Symlink(d.Sub("SOURCE"), file)
			} else {
				copyFile(d.Sub("SOURCE"), file)
			}
			if s.opts.Node != nil {
				if err := s.opts.Node.hotplug(s, v, d, true); err != nil {
					s.setError(v, "Error attaching new VM Disk: "+err.Error())
				}
			}
			v.set(back, backLcm)
		}
	})
	return v.id, nil
}

func (s *Server) vmDetach(p params) (any, error) {
	v, err := s.vmArg(p, 1)
	if err != nil {
		return nil, err
	}
	diskID, err := p.int(2)
	if err != nil {
		return nil, err
	}
	running := v.state == StActive && v.lcm == LcmRunning
	if !running && v.state != StPoweroff {
		return nil, &rpcError{code: ErrAction, msg: fmt.Sprintf("Could not detach disk from VM %d, wrong state %s.", v.id, v.stateName()), id: v.id}
	}
	var disk *Attr
	for _, d := range v.tmpl.Vectors("DISK") {
		if d.Sub("DISK_ID") == strconv.Itoa(diskID) {
			disk = d
		}
	}
	if disk == nil {
		return nil, &rpcError{code: ErrInternal, msg: fmt.Sprintf("Could not detach disk with DISK_ID %d, it does not exist.", diskID), id: v.id}
	}
	back, backLcm := StActive, LcmRunning
	if running {
		v.set(StActive, LcmHotplug)
	} else {
		back, backLcm = StPoweroff, LcmInit
		v.set(StActive, LcmHotplugEpilogPoff)
	}
	gen := v.gen
	s.after(s.opts.Hotplug, func() {
		if v.gen != gen {
			return
		}
		if s.opts.Node != nil {
			if err := s.opts.Node.hotplug(s, v, disk, false); err != nil {
				s.setError(v, "Error detaching VM Disk: "+err.Error())
			}
		}
		out := v.tmpl.Attrs[:0]
		for _, a := range v.tmpl.Attrs {
			if a != disk {
				out = append(out, a)
			}
		}
		v.tmpl.Attrs = out
		if id, err := strconv.Atoi(disk.Sub("IMAGE_ID")); err == nil {
			if im, ok := s.imgs[id]; ok {
				s.releaseImage(im, v.id)
			}
		}
		os.Remove(filepath.Join(v.dir(s), "disk."+strconv.Itoa(diskID)))
		v.set(back, backLcm)
	})
	return v.id, nil
}

// VMSection returns a VM's TEMPLATE vector as a map (tests).
func (s *Server) VMSection(id int, name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	if v, ok := s.vms[id]; ok {
		if a := v.tmpl.Vector(name); a != nil {
			for _, p := range a.Vec {
				out[p.Name] = p.Value
			}
		}
	}
	return out
}

// filesDS resolves a CONTEXT FILES_DS value as oned's parse_context does
// (VirtualMachineContext.cc): only $FILE[IMAGE_ID=n] references (any
// other text is a syntax error of the vm_file_var grammar), each a READY
// CONTEXT image; the stored value is "<source>:'<name>' " per image.
func (s *Server) filesDS(f string) ([]int, string, error) {
	var ids []int
	var b strings.Builder
	for _, ref := range strings.Fields(f) {
		m := fileRE.FindStringSubmatch(ref)
		if m == nil {
			return nil, "", fmt.Errorf("Error parsing: %s. syntax error, unexpected RSTRING, expecting VARIABLE", strings.TrimLeft(f, " \t\n\v\f\r"))
		}
		id, _ := strconv.Atoi(m[1])
		im, ok := s.imgs[id]
		if !ok {
			return nil, "", fmt.Errorf("Error getting image [%d].", id)
		}
		if im.typ != 5 {
			return nil, "", errors.New("Only images of type CONTEXT can be used in FILE_DS attribute.")
		}
		if im.state != ImgReady {
			return nil, "", fmt.Errorf("%s Image '%d' not in READY state.", imageTypes[im.typ], id)
		}
		ids = append(ids, id)
		fmt.Fprintf(&b, "%s:'%s' ", im.source, im.name)
	}
	return ids, b.String(), nil
}

package preboot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/userdata"
)

// OpenNebula: the KVM driver's deploy action (hooks/opennebula) hands the
// domain XML it is about to boot and the VM's vm.xml (written by oned's
// VMM driver beside the deployment file from 6.0 on) to DecideOne, which
// returns the domain to boot. Nothing is read from or written to disk
// here: the wrapper reads both files as the deploy script's user and
// hands the result to OpenNebula's own deploy script.
//
// Where the directives come from (docs/opennebula.md):
//   - TEMPLATE/CONTEXT/USER_DATA (else USERDATA), base64-decoded when
//     USER_DATA_ENCODING (else USERDATA_ENCODING) is "base64", exactly as
//     cloud-init's OpenNebula datasource reads it, then decoded as on
//     Eucalyptus (internal/userdata: bootparams=, kscloud.*, gzip, MIME,
//     comment lines);
//   - or the user-template attributes KSCLOUD_BOOTPARAMS, KSCLOUD_MODE,
//     KSCLOUD_INSTALLER and KSCLOUD_VNC, read as the directive lines
//     bootparams=, kscloud.mode=, kscloud.installer=, kscloud.vnc=. Other
//     KSCLOUD_* attributes (kscloud's tags) are not directives.
//
// Directives in both places are an error (one source of truth).
//
// OpenNebula 5.12 writes no vm.xml: the wrapper then reads context.sh from
// the VM's CONTEXT CD-ROM (ReadOneContext) and DecideOneContext decides
// from its CONTEXT/USER_DATA (onecontext.go).

// Limits on the OpenNebula inputs.
const (
	// MaxOneVMXML bounds vm.xml.
	MaxOneVMXML = 4 << 20
	// maxOneAttr bounds a KSCLOUD_* attribute.
	maxOneAttr = 4 << 10
)

// ErrNoVMXML means the VM directory has no vm.xml (OpenNebula before 6.0
// writes none): the domain boots as OpenNebula wrote it.
var ErrNoVMXML = errors.New("no vm.xml beside the deployment file (OpenNebula 5.12 writes none)")

// OneVM is what DecideOne reads from vm.xml.
type OneVM struct {
	ID   int
	Name string
	// UserData is CONTEXT/USER_DATA (or USERDATA) as written, and
	// Encoding its USER_DATA_ENCODING (or USERDATA_ENCODING).
	UserData, Encoding string
	HasUserData        bool
	// Attrs are the directive attributes of USER_TEMPLATE
	// (KSCLOUD_BOOTPARAMS …) that are set.
	Attrs map[string]string
}

// oneDirectiveAttrs maps USER_TEMPLATE attributes to directive keys.
var oneDirectiveAttrs = []struct{ attr, key string }{
	{"KSCLOUD_BOOTPARAMS", "bootparams"},
	{"KSCLOUD_MODE", "kscloud.mode"},
	{"KSCLOUD_INSTALLER", "kscloud.installer"},
	{"KSCLOUD_VNC", "kscloud.vnc"},
}

// ParseOneVM reads vm.xml (root <VM>). It is strict: not well-formed XML,
// a DOCTYPE, another root, a missing or non-numeric ID, or an attribute
// the decision reads given twice are errors.
func ParseOneVM(data []byte) (*OneVM, error) {
	if len(data) > MaxOneVMXML {
		return nil, fmt.Errorf("vm.xml is %d bytes, over the %d-byte limit", len(data), MaxOneVMXML)
	}
	// A token walk, not xml.Unmarshal: every attribute of the two
	// sections is collected so that one given twice is seen.
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	vm := &OneVM{Attrs: map[string]string{}}
	ctx := map[string][]string{}
	user := map[string][]string{}
	var path []string
	var text bytes.Buffer
	ids := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("vm.xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(path) == 0 && t.Name.Local != "VM" {
				return nil, fmt.Errorf("vm.xml: root element is <%s>, want <VM>", t.Name.Local)
			}
			if len(path) > 64 {
				return nil, fmt.Errorf("vm.xml: nested over 64 elements deep")
			}
			path = append(path, t.Name.Local)
			text.Reset()
		case xml.CharData:
			if text.Len()+len(t) > MaxOneVMXML {
				return nil, fmt.Errorf("vm.xml: text too long")
			}
			text.Write(t)
		case xml.EndElement:
			val := text.String()
			switch {
			case len(path) == 2 && path[1] == "ID":
				ids++
				vm.ID, err = strconv.Atoi(strings.TrimSpace(val))
				if err != nil || vm.ID < 0 {
					return nil, fmt.Errorf("vm.xml: VM ID %q is not a number", strings.TrimSpace(val))
				}
			case len(path) == 2 && path[1] == "NAME":
				vm.Name = val
			case len(path) == 4 && path[1] == "TEMPLATE" && path[2] == "CONTEXT":
				ctx[path[3]] = append(ctx[path[3]], val)
			case len(path) == 3 && path[1] == "USER_TEMPLATE":
				user[path[2]] = append(user[path[2]], val)
			}
			path = path[:len(path)-1]
			text.Reset()
		case xml.Directive:
			return nil, fmt.Errorf("vm.xml: has a DOCTYPE or other <! declaration")
		}
	}
	if ids != 1 {
		return nil, fmt.Errorf("vm.xml: %d <ID> elements under <VM>, want 1", ids)
	}
	one := func(m map[string][]string, section, name string) (string, bool, error) {
		vals, ok := m[name]
		if !ok {
			return "", false, nil
		}
		if len(vals) > 1 {
			return "", false, fmt.Errorf("vm.xml: %s/%s given %d times", section, name, len(vals))
		}
		return vals[0], true, nil
	}
	for _, k := range []string{"USER_DATA", "USERDATA"} {
		s, ok, err := one(ctx, "CONTEXT", k)
		if err != nil {
			return nil, err
		}
		if ok {
			vm.UserData, vm.HasUserData = s, true
			break
		}
	}
	for _, k := range []string{"USER_DATA_ENCODING", "USERDATA_ENCODING"} {
		s, ok, err := one(ctx, "CONTEXT", k)
		if err != nil {
			return nil, err
		}
		if ok {
			vm.Encoding = strings.TrimSpace(s)
			break
		}
	}
	for _, a := range oneDirectiveAttrs {
		s, ok, err := one(user, "USER_TEMPLATE", a.attr)
		if err != nil {
			return nil, err
		}
		if ok {
			vm.Attrs[a.attr] = s
		}
	}
	return vm, nil
}

// OneRequest returns the directives of a VM: from its CONTEXT user-data
// or its KSCLOUD_* user-template attributes (see the top of this file).
// where names the source for messages ("" when there are none).
func OneRequest(vm *OneVM) (req *userdata.Request, where string, err error) {
	var fromCtx, fromAttrs *userdata.Request
	if vm.HasUserData {
		raw := []byte(vm.UserData)
		switch vm.Encoding {
		case "":
		case "base64":
			if raw, err = userdata.DecodeBase64(vm.UserData); err != nil {
				return nil, "", fmt.Errorf("CONTEXT/USER_DATA: %w", err)
			}
		default:
			return nil, "", fmt.Errorf("CONTEXT/USER_DATA_ENCODING %q is not \"base64\" (what cloud-init reads)", vm.Encoding)
		}
		if fromCtx, err = userdata.Parse(raw, userdata.DefaultLimits()); err != nil {
			return nil, "", fmt.Errorf("CONTEXT/USER_DATA: %w", err)
		}
	}
	if len(vm.Attrs) > 0 {
		var b strings.Builder
		for _, a := range oneDirectiveAttrs {
			v, ok := vm.Attrs[a.attr]
			if !ok {
				continue
			}
			if len(v) > maxOneAttr {
				return nil, "", fmt.Errorf("USER_TEMPLATE/%s is %d bytes, over the %d-byte limit", a.attr, len(v), maxOneAttr)
			}
			if i := strings.IndexAny(v, "\r\n\x00"); i >= 0 {
				return nil, "", fmt.Errorf("USER_TEMPLATE/%s has a line break or NUL at byte %d", a.attr, i)
			}
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			fmt.Fprintf(&b, "%s=%s\n", a.key, v)
		}
		if fromAttrs, err = userdata.Parse([]byte(b.String()), userdata.DefaultLimits()); err != nil {
			return nil, "", fmt.Errorf("USER_TEMPLATE/KSCLOUD_*: %w", err)
		}
	}
	switch {
	case hasDirectives(fromCtx) && hasDirectives(fromAttrs):
		return nil, "", fmt.Errorf("kscloud directives both in CONTEXT/USER_DATA and in USER_TEMPLATE/KSCLOUD_*: give them in one place")
	case hasDirectives(fromCtx):
		return fromCtx, "CONTEXT/USER_DATA", nil
	case hasDirectives(fromAttrs):
		return fromAttrs, "USER_TEMPLATE/KSCLOUD_*", nil
	}
	return &userdata.Request{Mode: userdata.ModeBake}, "", nil
}

func hasDirectives(r *userdata.Request) bool {
	return r != nil && (r.HasBootParams || r.ModeSet || r.Installer != "" || r.VNC || r.Kickstart != nil)
}

// DecideOne computes the domain OpenNebula's deploy script boots for the
// VM described by vmXML (nil: the VM directory has none), given the
// domain XML the KVM driver generated and the VM directory (the
// deployment file's directory: the serial console log goes there). It
// reads nothing from disk and writes nothing. Plan.DomainXML is nil when
// the domain boots unchanged.
//
// The rewrite is the Eucalyptus one (libvirtxml.RewriteInstall): the
// installer's kernel and initrd (the operator's catalog entry, or the
// VM's own OS/KERNEL_DS when policy.allow_instance_kernel), the command
// line, <on_reboot>/<on_poweroff> destroy, a serial console logged to
// VMDIR/console.log, and VNC per policy. Without a bootparams= directive
// a VM that boots its own kernel keeps OpenNebula's command line
// ("root=/dev/ROOT KERNEL_CMD") and gets only what nchookd owns (the
// console, the lifecycle, VNC); one that boots from disk is an error.
// vmXML nil is ErrNoVMXML (5.12: see DecideOneContext).
func DecideOne(cfg *config.Config, vmXML, domainXML []byte, vmDir string) (*Plan, error) {
	return namingVM(domainXML, func(name string) (*Plan, error) {
		return decideOne(cfg, vmXML, domainXML, vmDir, name)
	})
}

// namingVM runs decide with the domain's name and prefixes its error with
// "VM NAME: ".
func namingVM(domainXML []byte, decide func(name string) (*Plan, error)) (*Plan, error) {
	name := domainName(domainXML)
	p, err := decide(name)
	if err != nil {
		if name == "" {
			name = "(unnamed domain)"
		}
		return nil, fmt.Errorf("VM %s: %w", name, err)
	}
	return p, nil
}

func decideOne(cfg *config.Config, vmXML, domainXML []byte, vmDir, name string) (*Plan, error) {
	if vmXML == nil {
		return nil, ErrNoVMXML
	}
	if !filepath.IsAbs(vmDir) || filepath.Clean(vmDir) != vmDir {
		return nil, fmt.Errorf("VM directory %q is not a clean absolute path", vmDir)
	}
	vm, err := ParseOneVM(vmXML)
	if err != nil {
		return nil, err
	}
	if want := fmt.Sprintf("one-%d", vm.ID); name != want {
		return nil, fmt.Errorf("vm.xml is VM %d but the domain is named %q, not %q (a stale vm.xml?)", vm.ID, name, want)
	}
	return decideOneVM(cfg, vm, domainXML, vmDir, name, "no kscloud directives in CONTEXT/USER_DATA or USER_TEMPLATE/KSCLOUD_*")
}

// DecideOneContext is DecideOne for OpenNebula before 6.0, which writes
// no vm.xml: the directives are read from contextSh, the context.sh of
// the VM's CONTEXT CD-ROM (ReadOneContext reads it; see onecontext.go),
// CONTEXT/USER_DATA only, and the VM ID is the domain name's (one-ID).
// The rewrite is DecideOne's.
func DecideOneContext(cfg *config.Config, contextSh, domainXML []byte, vmDir string) (*Plan, error) {
	return namingVM(domainXML, func(name string) (*Plan, error) {
		return decideOneContext(cfg, contextSh, domainXML, vmDir, name)
	})
}

func decideOneContext(cfg *config.Config, contextSh, domainXML []byte, vmDir, name string) (*Plan, error) {
	if !filepath.IsAbs(vmDir) || filepath.Clean(vmDir) != vmDir {
		return nil, fmt.Errorf("VM directory %q is not a clean absolute path", vmDir)
	}
	vm, err := oneVMFromContext(contextSh, name)
	if err != nil {
		return nil, fmt.Errorf("CONTEXT CD-ROM: %w", err)
	}
	return decideOneVM(cfg, vm, domainXML, vmDir, name, "no kscloud directives in CONTEXT/USER_DATA (context.sh of the CONTEXT CD-ROM)")
}

// decideOneVM is the decision once the VM's directives are read.
func decideOneVM(cfg *config.Config, vm *OneVM, domainXML []byte, vmDir, name, none string) (*Plan, error) {
	p := &Plan{Outcome: Outcome{Instance: name, Dir: vmDir}}
	req, where, err := OneRequest(vm)
	if err != nil {
		return nil, err
	}
	if where == "" {
		p.Notes = append(p.Notes, none)
		return p, nil
	}
	if !belowRoot(cfg, vmDir) {
		return nil, fmt.Errorf("VM directory %s: %w (%s; on OpenNebula name the system datastores' directory, e.g. /var/lib/one/datastores)",
			vmDir, ErrOutsideRoot, strings.Join(cfg.Hook.InstancesRoot, ", "))
	}
	if req.Kickstart != nil {
		return nil, fmt.Errorf("%s: an inline kickstart (text/x-kickstart) is not supported on OpenNebula: pass it in CONTEXT FILES_DS (inst.ks=hd:LABEL=CONTEXT:/NAME) or by URL", where)
	}
	mode := string(req.Mode)
	if err := allowMode(cfg, mode); err != nil {
		return nil, err
	}
	// OpenNebula writes several <devices> (the guest agent's channel,
	// Q35 controllers): one list for the rewrite.
	if domainXML, err = libvirtxml.MergeDevices(domainXML); err != nil {
		return nil, err
	}
	ownKernel, _, _ := libvirtxml.DirectBoot(domainXML)
	in := libvirtxml.Install{Cmdline: req.BootParams, Mode: mode, Installer: req.Installer}
	if !req.HasBootParams {
		if ownKernel == "" {
			return nil, fmt.Errorf("%s has kscloud directives but no bootparams=, and the VM boots no kernel of its own (OS/KERNEL_DS)", where)
		}
		in.Cmdline, _ = libvirtxml.KernelCmdline(domainXML) // parsed above by MergeDevices
	}
	if req.Installer != "" {
		entry, err := catalogEntry(cfg, req.Installer)
		if err != nil {
			return nil, err
		}
		in.Kernel, in.Initrd = entry.Kernel, entry.Initrd
		if entry.Cmdline != "" && req.HasBootParams {
			in.Cmdline = entry.Cmdline + " " + req.BootParams
		}
	} else if !cfg.Policy.AllowEKI {
		return nil, fmt.Errorf("no kscloud.installer= given and the VM's own kernel may not serve as installer: %w (catalog: %s)", ErrPolicy, strings.Join(cfg.InstallerNames(), ", "))
	} else if ownKernel == "" {
		return nil, fmt.Errorf("no kscloud.installer= given and the VM boots no kernel of its own (set OS/KERNEL_DS, or name an installer of the catalog: %s)", strings.Join(cfg.InstallerNames(), ", "))
	}
	if err := p.rewrite(cfg, req, in, domainXML, filepath.Join(vmDir, SerialLog)); err != nil {
		return nil, err
	}
	p.Notes = append(p.Notes, "directives from "+where)
	return p, nil
}

// domainName returns the domain's <name>, "" when unreadable.
func domainName(domainXML []byte) string {
	var d struct {
		Name string `xml:"name"`
	}
	_ = xml.Unmarshal(domainXML, &d)
	return strings.TrimSpace(d.Name)
}

// readCmdline returns the domain's <os><cmdline>.
// belowRoot reports whether dir (clean, absolute) lies below one of the
// configured instances roots, by name: nothing is read from disk (the
// OpenNebula rewrite writes nothing there; libvirt creates the console log).
func belowRoot(cfg *config.Config, dir string) bool {
	for _, root := range cfg.Hook.InstancesRoot {
		rel, err := filepath.Rel(filepath.Clean(root), dir)
		if err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

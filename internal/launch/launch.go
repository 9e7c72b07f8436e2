// Package launch is the pre-boot step of an instance launch on a Eucalyptus
// node controller: read the instance's user-data, decide what the operator's
// policy allows, and rewrite the domain XML the NC will boot. It is shared
// by the daemon (nchookd serve) and by the hook binary's fallback, which
// must stay free of libvirt, so nothing here talks to libvirt.
package launch

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/euca"
	"github.com/kscloud/kscloud/internal/initrd"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/userdata"
)

// Files nchookd creates in an instance directory.
const (
	// OrigSuffix names the copy of the NC's domain XML kept beside it.
	OrigSuffix = ".orig"
	// KickstartInitrd is the per-instance installer initrd carrying an
	// inline kickstart as /ks.cfg.
	KickstartInitrd = "kscloud-initrd.img"
	// SerialLog is the console log added when a domain has no serial device.
	SerialLog = "console.log"
	lockFile  = ".nchookd.lock"
)

// maxDomainXML bounds what is read of a domain XML file.
const maxDomainXML = 4 << 20

// ErrPolicy marks a request the operator's policy does not allow.
var ErrPolicy = errors.New("not allowed by policy")

// ErrOutsideRoot marks an instance directory outside hook.instances_root.
var ErrOutsideRoot = errors.New("outside the configured instances root")

// Outcome says what a pre-boot step did.
type Outcome struct {
	Instance   string   `json:"instance"`
	Dir        string   `json:"dir,omitempty"`
	DomainFile string   `json:"domain_file,omitempty"`
	Changed    bool     `json:"changed"`
	Mode       string   `json:"mode,omitempty"`
	Installer  string   `json:"installer,omitempty"` // catalog name, "" for the instance's EKI/ERI
	Cmdline    string   `json:"cmdline,omitempty"`   // the user's bootparams
	Kernel     string   `json:"kernel,omitempty"`
	Initrd     string   `json:"initrd,omitempty"`
	Kickstart  bool     `json:"inline_kickstart,omitempty"`
	VNC        *VNCInfo `json:"vnc,omitempty"`
	ConsoleLog string   `json:"console_log,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// VNCInfo is the VNC console asked for at launch. The port is known only
// once libvirt has started the domain.
type VNCInfo struct {
	Listen   string `json:"listen"`
	Port     int    `json:"port,omitempty"`
	Password string `json:"password"`
}

// Plan is a rewrite decided but not yet written.
type Plan struct {
	Outcome
	DomainXML  []byte // the rewritten domain (nil when unchanged)
	kickstart  []byte
	baseInitrd string
}

// Decide computes the rewrite of domainXML for the instance described by
// instXML (instance.xml bytes). dir is the instance directory, used to name
// per-instance files. It reads nothing from disk and writes nothing.
func Decide(cfg *config.Config, instXML, domainXML []byte, dir string) (*Plan, error) {
	inst, err := euca.ParseInstance(instXML)
	if err != nil {
		return nil, err
	}
	p, err := decide(cfg, inst, domainXML, dir)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	return p, nil
}

func decide(cfg *config.Config, inst *euca.Instance, domainXML []byte, dir string) (*Plan, error) {
	p := &Plan{Outcome: Outcome{Instance: inst.Name, Dir: dir}}
	raw, err := userdata.DecodeBase64(inst.UserData)
	if err != nil {
		return nil, err
	}
	req, err := userdata.Parse(raw, userdata.DefaultLimits())
	if err != nil {
		return nil, err
	}
	if !req.HasBootParams {
		if req.Kickstart != nil || req.ModeSet || req.Installer != "" || req.VNC {
			return nil, fmt.Errorf("user-data has kscloud directives but no bootparams= line")
		}
		p.Notes = append(p.Notes, "no bootparams in user-data: domain left as the NC wrote it")
		return p, nil
	}
	mode := string(req.Mode)
	if !cfg.AllowsMode(mode) {
		return nil, fmt.Errorf("kscloud.mode=%s: %w (allowed: %s)", mode, ErrPolicy, strings.Join(cfg.Policy.Modes, ", "))
	}
	in := libvirtxml.Install{Cmdline: req.BootParams, Mode: mode, Installer: req.Installer}
	if req.Installer != "" {
		entry, ok := cfg.Installer[req.Installer]
		if !ok {
			have := strings.Join(cfg.InstallerNames(), ", ")
			if have == "" {
				have = "none"
			}
			return nil, fmt.Errorf("installer %q is not in the operator's catalog (catalog: %s)", req.Installer, have)
		}
		in.Kernel, in.Initrd = entry.Kernel, entry.Initrd
		if entry.Cmdline != "" {
			in.Cmdline = entry.Cmdline + " " + req.BootParams
		}
	} else if !cfg.Policy.AllowEKI {
		return nil, fmt.Errorf("no kscloud.installer= given and the instance's own kernel may not serve as installer: %w (catalog: %s)", ErrPolicy, strings.Join(cfg.InstallerNames(), ", "))
	}
	if req.Kickstart != nil {
		if len(req.Kickstart) > cfg.Policy.MaxInlineKickstart {
			return nil, fmt.Errorf("inline kickstart is %d bytes, over the %d-byte limit: %w", len(req.Kickstart), cfg.Policy.MaxInlineKickstart, ErrPolicy)
		}
		base := in.Initrd
		if base == "" {
			base = inst.Ramdisk
		}
		if base == "" {
			base, _ = domainInitrd(domainXML)
		}
		if base == "" {
			return nil, fmt.Errorf("inline kickstart needs an installer initrd: the instance has no ramdisk and names no kscloud.installer")
		}
		if in.Kernel == "" {
			in.Kernel = inst.Kernel
			if in.Kernel == "" {
				in.Kernel, _ = domainKernel(domainXML)
			}
		}
		p.baseInitrd = base
		p.kickstart = req.Kickstart
		in.Initrd = filepath.Join(dir, KickstartInitrd)
		if !hasParam(in.Cmdline, "inst.ks") && !hasParam(in.Cmdline, "ks") {
			in.Cmdline += " inst.ks=file:/ks.cfg"
		}
		p.Kickstart = true
	}
	if req.VNC {
		if listen := cfg.VNCListenAddr(); listen == "" {
			p.Notes = append(p.Notes, "kscloud.vnc=yes ignored: the operator's policy allows no VNC console")
		} else {
			pw, err := libvirtxml.NewVNCPassword()
			if err != nil {
				return nil, err
			}
			in.VNC = &libvirtxml.VNC{Listen: listen, Password: pw}
		}
	}
	if inst.ConsoleLogPath != "" {
		in.SerialLog = inst.ConsoleLogPath
	} else {
		in.SerialLog = filepath.Join(dir, SerialLog)
	}
	out, err := libvirtxml.RewriteInstall(domainXML, in)
	if err != nil {
		return nil, err
	}
	// A rewrite of an already rewritten file keeps its VNC password.
	if in.VNC != nil {
		if listen, _, pw, ok, err := libvirtxml.VNCGraphics(out); err == nil && ok {
			in.VNC.Listen, in.VNC.Password = listen, pw
		}
		p.VNC = &VNCInfo{Listen: in.VNC.Listen, Password: in.VNC.Password}
	}
	p.DomainXML = out
	p.Changed = true
	p.Mode = mode
	p.Installer = req.Installer
	p.Cmdline = req.BootParams
	p.Kernel, _ = domainKernel(out)
	p.Initrd, _ = domainInitrd(out)
	p.ConsoleLog = in.SerialLog
	return p, nil
}

// hasParam reports whether the command line has key=… or a bare key.
func hasParam(cmdline, key string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == key || strings.HasPrefix(f, key+"=") {
			return true
		}
	}
	return false
}

// CheckDir refuses an instance directory that is not a real directory
// below one of the configured instances roots.
func CheckDir(cfg *config.Config, dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("no instance directory given")
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("instance directory %q is not an absolute path", dir)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("instance directory %s: %w", dir, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("instance directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("instance directory %s: not a directory", dir)
	}
	for _, root := range cfg.Hook.InstancesRoot {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(r, real); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			return real, nil
		}
	}
	return "", fmt.Errorf("instance directory %s: %w (%s)", dir, ErrOutsideRoot, strings.Join(cfg.Hook.InstancesRoot, ", "))
}

// PreBoot runs the pre-boot step on an instance directory: decide the
// rewrite, write per-instance files, keep the NC's domain XML as
// FILE.orig, and replace the domain XML atomically. On any error the domain
// XML is left byte-identical.
func PreBoot(cfg *config.Config, dir string) (*Outcome, error) {
	real, err := CheckDir(cfg, dir)
	if err != nil {
		return nil, err
	}
	unlock, err := lock(real)
	if err != nil {
		return nil, err
	}
	defer unlock()
	instXML, err := atomicfile.ReadRegular(filepath.Join(real, euca.InstanceFile), 1<<20)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", filepath.Base(real), err)
	}
	inst, err := euca.ParseInstance(instXML)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", filepath.Base(real), err)
	}
	domFile, err := euca.DomainFile(real, inst)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	// Rewrite from the NC's original when a previous pass kept one, so a
	// second pre-boot (or the daemon and the fallback both) agree.
	domainXML, err := atomicfile.ReadRegular(domFile, maxDomainXML)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	p, err := decide(cfg, inst, domainXML, real)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	p.DomainFile = domFile
	if !p.Changed {
		return &p.Outcome, nil
	}
	if p.kickstart != nil {
		if err := initrd.Inject(p.baseInitrd, filepath.Join(real, KickstartInitrd),
			[]initrd.File{{Name: "ks.cfg", Data: p.kickstart, Mode: 0o600}}, time.Now()); err != nil {
			return nil, fmt.Errorf("instance %s: inline kickstart: %w", inst.Name, err)
		}
	}
	if _, err := atomicfile.KeepOriginal(domFile, domFile+OrigSuffix); err != nil {
		return nil, fmt.Errorf("instance %s: keep original: %w", inst.Name, err)
	}
	// NoSync: the NC reads the file at once; a node crash loses the
	// instance anyway (atomicfile.NoSync). The rename keeps it whole.
	opts := []atomicfile.Option{atomicfile.NoSync}
	if p.VNC != nil { // the file now holds the VNC password: its owner (the NC) only
		opts = append(opts, atomicfile.AtMost(0o600))
	}
	if err := atomicfile.Write(domFile, p.DomainXML, 0o644, opts...); err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	return &p.Outcome, nil
}

// PreClean removes what nchookd created in an instance directory before
// the NC deletes it. The domain XML and its .orig are the NC's business.
func PreClean(cfg *config.Config, dir string) (*Outcome, error) {
	real, err := CheckDir(cfg, dir)
	if err != nil {
		return nil, err
	}
	unlock, err := lock(real)
	if err != nil {
		return nil, err
	}
	defer unlock()
	o := &Outcome{Instance: filepath.Base(real), Dir: real}
	if err := os.Remove(filepath.Join(real, KickstartInitrd)); err == nil {
		o.Changed = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("instance %s: %w", o.Instance, err)
	}
	return o, nil
}

// lock takes an exclusive lock on the instance directory's lock file so the
// daemon and a fallback hook never rewrite the same instance at once.
func lock(dir string) (func(), error) {
	// Read-only with mode 0644: the daemon (root) and the hook (the NC's
	// user) must both be able to open whichever of them created it.
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("instance %s: lock: %w", filepath.Base(dir), err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("instance %s: lock: %w", filepath.Base(dir), err)
	}
	return func() { f.Close() }, nil
}

// domainOS is what Decide reads back from a domain's <os>.
type domainOS struct {
	Kernel string `xml:"os>kernel"`
	Initrd string `xml:"os>initrd"`
}

func readOS(domainXML []byte) domainOS {
	var d domainOS
	_ = xml.Unmarshal(domainXML, &d) // errors surface from libvirtxml
	d.Kernel, d.Initrd = strings.TrimSpace(d.Kernel), strings.TrimSpace(d.Initrd)
	return d
}

func domainKernel(domainXML []byte) (string, bool) { k := readOS(domainXML).Kernel; return k, k != "" }
func domainInitrd(domainXML []byte) (string, bool) { i := readOS(domainXML).Initrd; return i, i != "" }

// Package preboot is the pre-boot step of an instance launch on a Eucalyptus
// node controller: read the instance's user-data, decide what the operator's
// policy allows, and rewrite the domain XML the NC will boot. It is shared
// by the daemon (nchookd serve) and by the hook binary's fallback, which
// must stay free of libvirt, so nothing here talks to libvirt.
package preboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// Limits on what is read from an instance directory.
const (
	maxDomainXML   = 4 << 20
	maxInstanceXML = 1 << 20
)

// FileMode is the mode of the files nchookd creates in an instance
// directory (the installer initrd carrying an inline kickstart): owner and
// group read, owned by the directory's owner and group as the NC's own
// files are, never readable by other local users (the kickstart holds the
// root password hash). libvirt's dynamic_ownership (on by default) hands
// it to QEMU's user when the domain starts; a QEMU running as root reads it
// anyway.
const FileMode fs.FileMode = 0o640

// ErrPolicy marks a request the operator's policy does not allow.
var ErrPolicy = errors.New("not allowed by policy")

// ErrOutsideRoot marks an instance directory outside hook.instances_root.
var ErrOutsideRoot = errors.New("outside the configured instances root")

// ErrNameMismatch marks an instance.xml whose <name> is not its
// directory's: the NC names each instance directory after the instance, and
// nchookd keys its records by that name, which the NC's user must not
// choose apart from the directory.
var ErrNameMismatch = errors.New("instance.xml names another instance")

// AlwaysRefused reports whether err refuses the launch whatever
// hook.on_error says: nchookd never boots as the NC wrote it what it must
// not touch at all.
func AlwaysRefused(err error) bool {
	return errors.Is(err, ErrOutsideRoot) || errors.Is(err, ErrNameMismatch)
}

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
type VNCInfo = libvirtxml.VNC

// Plan is a rewrite decided but not yet written.
type Plan struct {
	Outcome
	DomainXML  []byte // the rewritten domain (nil when unchanged)
	kickstart  []byte
	baseInitrd string
	// baseFromCatalog: baseInitrd is the operator's catalog entry, read
	// as root; any other path came from the instance and is read only as
	// the instance directory's owner could.
	baseFromCatalog bool
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
	if err := allowMode(cfg, mode); err != nil {
		return nil, err
	}
	in := libvirtxml.Install{Cmdline: req.BootParams, Mode: mode, Installer: req.Installer}
	if req.Installer != "" {
		entry, err := catalogEntry(cfg, req.Installer)
		if err != nil {
			return nil, err
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
		domKernel, domInitrd, err := libvirtxml.DirectBoot(domainXML)
		if err != nil {
			return nil, err
		}
		base := in.Initrd
		if base == "" {
			base = inst.Ramdisk
		}
		if base == "" {
			base = domInitrd
		}
		if base == "" {
			return nil, fmt.Errorf("inline kickstart needs an installer initrd: the instance has no ramdisk and names no kscloud.installer")
		}
		if in.Kernel == "" {
			in.Kernel = inst.Kernel
			if in.Kernel == "" {
				in.Kernel = domKernel
			}
		}
		p.baseInitrd = base
		p.baseFromCatalog = req.Installer != ""
		p.kickstart = req.Kickstart
		in.Initrd = filepath.Join(dir, KickstartInitrd)
		if !hasParam(in.Cmdline, "inst.ks") && !hasParam(in.Cmdline, "ks") {
			in.Cmdline += " inst.ks=file:/ks.cfg"
		}
		p.Kickstart = true
	}
	serial := filepath.Join(dir, SerialLog)
	if inst.ConsoleLogPath != "" {
		serial = inst.ConsoleLogPath
	}
	if err := p.rewrite(cfg, req, in, domainXML, serial); err != nil {
		return nil, err
	}
	return p, nil
}

// rewrite finishes a plan, on Eucalyptus and OpenNebula alike: a VNC
// console as the operator's policy allows, the serial console logged to
// serial, the installer boot (libvirtxml.RewriteInstall), and what the
// plan reports of it.
func (p *Plan) rewrite(cfg *config.Config, req *userdata.Request, in libvirtxml.Install, domainXML []byte, serial string) error {
	if req.VNC {
		if listen := cfg.VNCListenAddr(); listen == "" {
			p.Notes = append(p.Notes, "kscloud.vnc=yes ignored: the operator's policy allows no VNC console")
		} else {
			pw, err := libvirtxml.NewVNCPassword()
			if err != nil {
				return err
			}
			in.VNC = &libvirtxml.VNC{Listen: listen, Password: pw}
		}
	}
	in.SerialLog = serial
	out, err := libvirtxml.RewriteInstall(domainXML, in)
	if err != nil {
		return err
	}
	// A rewrite of an already rewritten file keeps its VNC password.
	if in.VNC != nil {
		if v, ok, err := libvirtxml.VNCGraphics(out); err == nil && ok {
			in.VNC.Listen, in.VNC.Password = v.Listen, v.Password
		}
		p.VNC = &VNCInfo{Listen: in.VNC.Listen, Password: in.VNC.Password}
	}
	p.DomainXML = out
	p.Changed = true
	p.Mode = in.Mode
	p.Installer = req.Installer
	p.Cmdline = req.BootParams
	p.Kernel, p.Initrd, _ = libvirtxml.DirectBoot(out) // out parsed: no error
	p.ConsoleLog = in.SerialLog
	return nil
}

// allowMode refuses a kscloud.mode= the operator's policy does not allow.
func allowMode(cfg *config.Config, mode string) error {
	if !cfg.AllowsMode(mode) {
		return fmt.Errorf("kscloud.mode=%s: %w (allowed: %s)", mode, ErrPolicy, strings.Join(cfg.Policy.Modes, ", "))
	}
	return nil
}

// catalogEntry is the operator's catalog entry of a kscloud.installer=
// name, or an error naming the catalog's entries.
func catalogEntry(cfg *config.Config, name string) (config.Installer, error) {
	entry, ok := cfg.Installer[name]
	if !ok {
		have := strings.Join(cfg.InstallerNames(), ", ")
		if have == "" {
			have = "none"
		}
		return config.Installer{}, fmt.Errorf("installer %q is not in the operator's catalog (catalog: %s)", name, have)
	}
	return entry, nil
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

// PreBoot runs the pre-boot step on an instance directory: decide the
// rewrite, write per-instance files, keep the NC's domain XML as
// FILE.orig, and replace the domain XML atomically. On any error the domain
// XML is left byte-identical.
func PreBoot(cfg *config.Config, dir string) (*Outcome, error) {
	return PreBootContext(context.Background(), cfg, dir)
}

// PreBootContext is PreBoot bounded by ctx: waiting for the instance's
// lock ends when ctx does, and nothing is written once ctx is done (the
// hook that asked has given up and answered the NC without this rewrite).
//
// The instance directory belongs to the NC's user, who may rename, replace
// or symlink anything in it at any moment: it is opened once, every later
// step acts on that open directory by plain names, and every file read or
// replaced there must be a regular file.
func PreBootContext(ctx context.Context, cfg *config.Config, dir string) (*Outcome, error) {
	d, err := openInstanceDir(cfg, dir)
	if errors.Is(err, ErrOutsideRoot) && cfg.Hook.OnError == config.OnErrorBoot {
		return outsideRoot(dir, err)
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	unlock, err := d.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	instXML, err := d.ReadRegular(euca.InstanceFile, maxInstanceXML)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", d.name(), err)
	}
	inst, err := euca.ParseInstance(instXML)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", d.name(), err)
	}
	if inst.Name != d.name() {
		return nil, fmt.Errorf("instance %s: %w (%q)", d.name(), ErrNameMismatch, inst.Name)
	}
	domName, err := euca.DomainFileName(d.Path(), inst, d.exists)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	domainXML, err := d.ReadRegular(domName, maxDomainXML)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	p, err := decide(cfg, inst, domainXML, d.Path())
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	p.DomainFile = filepath.Join(d.Path(), domName)
	if !p.Changed {
		return &p.Outcome, nil
	}
	if p.kickstart != nil {
		base, err := d.openImage(cfg, p.baseInitrd, p.baseFromCatalog)
		if err != nil {
			return nil, fmt.Errorf("instance %s: inline kickstart: %w", inst.Name, err)
		}
		// Unsynced, as the domain XML below: QEMU reads it when the NC
		// starts the domain right after this hook, and a node crash
		// loses the instance anyway; an fsync of a whole initrd would be
		// the longest step under the NC's lock. The rename keeps it whole.
		err = d.ReplaceUnsynced(KickstartInitrd, FileMode, d.owner, func(f *os.File) error {
			return initrd.Append(f, base, []initrd.File{{Name: "ks.cfg", Data: p.kickstart, Mode: 0o600}}, time.Now())
		})
		base.Close()
		if err != nil {
			return nil, fmt.Errorf("instance %s: inline kickstart: %w", inst.Name, err)
		}
	}
	testPause("before-write", d.Path())
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("instance %s: domain XML not rewritten: the hook stopped waiting (%w)", inst.Name, err)
	}
	if _, err := d.KeepOriginal(domName, domName+OrigSuffix); err != nil {
		return nil, fmt.Errorf("instance %s: keep original: %w", inst.Name, err)
	}
	// The rewritten domain may hold a VNC password and an installer's
	// command line: it keeps the NC's owner and mode, less what every
	// user could read, and with a VNC password less the group too (the
	// NC reads it as its owner, libvirt gets it over its API). Unsynced:
	// the NC reads it at once and a node crash loses the instance anyway
	// (the fsyncs cost more than the rewrite); the rename keeps it whole.
	clear := fs.FileMode(0o007)
	if p.VNC != nil {
		clear = 0o077
	}
	if err := d.WriteUnsynced(domName, p.DomainXML, 0o640, clear, d.owner); err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	return &p.Outcome, nil
}

// WithoutDirectives passes a launch whose user-data asks nothing of
// nchookd: it returns an unchanged Outcome when instance.xml in dir (read
// as the directory's owner, through the directory held open; nothing is
// written) has no kscloud directive, else cause. The hook uses it when no
// configuration can be read: such a launch must always boot.
func WithoutDirectives(dir string, cause error) (*Outcome, error) {
	o, err := outsideRoot(dir, cause)
	if err != nil {
		return nil, err
	}
	o.Notes = []string{"no kscloud directives: domain left as the NC wrote it"}
	return o, nil
}

// outsideRoot answers, under hook.on_error = "boot", for an instance
// directory outside every instances root. A launch whose user-data asks for
// nothing is none of nchookd's business, so a wrong hook.instances_root
// must not stop it: instance.xml is read (with the directory owner's
// credentials; nothing is written) and only a launch with directives gets
// the error, which refuses it (nchookd never acts outside the root).
func outsideRoot(dir string, cause error) (*Outcome, error) {
	if !filepath.IsAbs(dir) {
		return nil, cause
	}
	// Held open: instance.xml is read from the directory whose owner is
	// checked, whatever the path names by then.
	d, err := atomicfile.OpenDir(dir)
	if err != nil {
		return nil, cause
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return nil, cause
	}
	testPause("outside-root-read", dir)
	f, err := d.OpenAs(euca.InstanceFile, int(st.Uid), int(st.Gid))
	if err != nil {
		return nil, cause
	}
	defer f.Close()
	fst, err := f.Stat()
	if err != nil || !fst.Mode().IsRegular() || fst.Size() > maxInstanceXML {
		return nil, cause
	}
	b := make([]byte, fst.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, cause
	}
	inst, err := euca.ParseInstance(b)
	if err != nil {
		return nil, cause
	}
	raw, err := userdata.DecodeBase64(inst.UserData)
	if err != nil {
		return nil, cause
	}
	req, err := userdata.Parse(raw, userdata.DefaultLimits())
	if err != nil || req.HasBootParams || req.Kickstart != nil || req.ModeSet || req.Installer != "" || req.VNC {
		return nil, cause
	}
	return &Outcome{Instance: inst.Name, Dir: dir,
		Notes: []string{"instance directory outside hook.instances_root and no kscloud directives: domain left as the NC wrote it"}}, nil
}

// PreClean removes what nchookd created in an instance directory before
// the NC deletes it. The domain XML and its .orig are the NC's business.
func PreClean(cfg *config.Config, dir string) (*Outcome, error) {
	return PreCleanContext(context.Background(), cfg, dir)
}

// PreCleanContext is PreClean bounded by ctx (the lock wait).
func PreCleanContext(ctx context.Context, cfg *config.Config, dir string) (*Outcome, error) {
	d, err := openInstanceDir(cfg, dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	unlock, err := d.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	o := &Outcome{Instance: d.name(), Dir: d.Path()}
	if err := d.Remove(KickstartInitrd); err == nil {
		o.Changed = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("instance %s: %w", o.Instance, err)
	}
	return o, nil
}

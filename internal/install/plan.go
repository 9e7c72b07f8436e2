package install

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/initrd"
	"github.com/kscloud/kscloud/internal/userdata"
)

// Plan is what a launch resolved before anything exists on the cloud:
// the installer it boots, how the kickstart reaches it, and the
// provenance of the image. It is kept in the build record, so that
// --resume and cleanup act on exactly what was planned.
type Plan struct {
	// Kernel and Initrd are the installer's: local paths (libvirt: the
	// initrd is the copy with the kickstart injected, when it is),
	// eki-/eri- ids (ec2), or files or img-N ids (opennebula).
	Kernel string `json:"kernel,omitempty"`
	Initrd string `json:"initrd,omitempty"`
	// Cmdline is the local installer's kernel command line (libvirt).
	Cmdline string `json:"cmdline,omitempty"`
	// Args are the installer arguments besides the kickstart's, and
	// CmdlinePrefix the catalog installer's own, first (opennebula: its
	// steps put the command line together).
	Args          string `json:"args,omitempty"`
	CmdlinePrefix string `json:"cmdline_prefix,omitempty"`
	// UserData is the rendered user-data (ec2: the command line travels
	// in it as bootparams=, and an inline kickstart as a MIME part).
	UserData []byte `json:"user_data,omitempty"`
	// KickstartFile is the build's copy of the kickstart the installer
	// gets from kscloud (served over HTTP, or a context file), if any.
	KickstartFile string `json:"kickstart_file,omitempty"`
	// Media is an install ISO attached as a CD-ROM (libvirt --location).
	Media string `json:"media,omitempty"`
	// HTTP is where kscloud serves the kickstart (--ks-delivery http):
	// a resume serves it again there, the installer's command line
	// holding that port and path.
	HTTP *HTTPDelivery `json:"http,omitempty"`
	// Provenance goes beside (or into the description of) the image.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// HTTPDelivery is a kickstart server's loopback address and secret path
// component (the state file is 0600).
type HTTPDelivery struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

// Served is what PlanInput.Serve started: where, the URL path, and the
// host as the guest reaches the server ("" = 10.0.2.2, QEMU user
// networking's name for the host's loopback).
type Served struct {
	HTTPDelivery
	Path      string
	GuestHost string
}

// CatalogInstaller is an installer of an operator's catalog, resolved
// to what the cloud boots.
type CatalogInstaller struct {
	Name                       string
	Kernel, Initrd             string // image ids
	Cmdline                    string // goes first on the command line
	KernelSHA256, InitrdSHA256 string
}

// PlanInput is what NewPlan needs besides the spec.
type PlanInput struct {
	Provider string // libvirt | ec2 | opennebula
	Kind     string // bake | run
	BuildID  string
	// Dir is the build's directory (the kickstart's copy, an injected
	// initrd); CacheDir keeps downloaded installer files.
	Dir, CacheDir string
	// Arch is the architecture asked for (--arch).
	Arch string
	// Kickstart is the kickstart's content, read (and linted) by the
	// caller and copied to Dir/ks.cfg; nil without one, or for a URL the
	// installer fetches and this host cannot read.
	Kickstart []byte
	// Version is kscloud's, for the provenance; Now its date.
	Version string
	Now     time.Time
	// Serve starts serving the kickstart (delivery http) for the build's
	// length.
	Serve func(ks []byte) (Served, error)
	// Catalog resolves an installer of the operator's catalog
	// (opennebula).
	Catalog func(ctx context.Context, name string) (CatalogInstaller, error)
}

// Plan errors, for the caller to say which flags fix them.
var (
	// ErrNoInstaller: neither kernel and initrd nor a location.
	ErrNoInstaller = errors.New("no installer")
	// ErrNothingToBoot: an ec2 install with no command line at all.
	ErrNothingToBoot = errors.New("nothing to boot")
)

// DeliveryError is a kickstart delivery the provider does not offer.
type DeliveryError struct {
	Delivery, Provider string
	Want               string // the ones it offers, for people
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("kickstart delivery %q: want %s on %s", e.Delivery, e.Want, e.Provider)
}

// DefaultDelivery fills in how the kickstart reaches the installer when
// the spec does not say: inject (libvirt), url (a URL on a cloud),
// inline (ec2), context (opennebula).
func (s *Spec) DefaultDelivery(provider, kind string) {
	if s.Delivery != "" {
		return
	}
	if provider == "opennebula" {
		if kind == "run" && s.ImageID != "" {
			return // boots an image
		}
		s.Delivery = "context"
		if IsURL(s.Kickstart) {
			s.Delivery = "url"
		}
		return
	}
	switch {
	case s.Kickstart == "":
	case provider == "libvirt":
		s.Delivery = "inject"
	case IsURL(s.Kickstart):
		s.Delivery = "url"
	default:
		s.Delivery = "inline"
	}
}

// NewPlan resolves the launch of spec (its delivery defaulted): the
// installer (files, a location fetched and cached, catalog images), the
// kickstart's way to it (injected into a copy of the initrd, served,
// rendered into user-data), and the provenance.
func NewPlan(ctx context.Context, spec *Spec, in PlanInput) (*Plan, error) {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	prov := NewProvenance(spec.Kickstart)
	prov.KickstartSHA256, prov.Date, prov.KscloudVersion, prov.Build, prov.Installer = spec.KickstartSHA256, in.Now.UTC(), in.Version, in.BuildID, spec.Catalog
	if spec.Kickstart != "" && !IsURL(spec.Kickstart) {
		prov.GitRevision, prov.GitDirty = GitRevision(spec.Kickstart)
		if abs, err := filepath.Abs(spec.Kickstart); err == nil {
			prov.KickstartSource = abs
		}
	}
	p := &Plan{Provenance: prov}
	var err error
	switch in.Provider {
	case "libvirt":
		if spec.ImageID != "" && in.Kind == "run" {
			return p, nil // boots an image, no installer
		}
		err = p.local(ctx, spec, in)
	case "ec2":
		if in.Kind == "run" && spec.Kickstart == "" && spec.ExtraArgs == "" {
			return p, nil // boots an image, no installer
		}
		err = p.ec2(spec, in)
	case "opennebula":
		if in.Kind == "run" && spec.ImageID != "" {
			return &Plan{}, nil // boots an image, no installer
		}
		err = p.opennebula(ctx, spec, in)
	default:
		err = fmt.Errorf("provider %q: no launch plan", in.Provider)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// local: kernel and initrd files (or a location's), the kickstart
// injected, served or fetched by URL, the command line.
func (p *Plan) local(ctx context.Context, spec *Spec, in PlanInput) error {
	var args []string
	kernel, initrdPath := spec.Kernel, spec.Initrd
	if spec.Location != "" {
		l, err := Locate(ctx, in.CacheDir, spec.Location, in.Arch)
		if err != nil {
			return err
		}
		kernel, initrdPath, args, p.Media = l.Kernel, l.Initrd, append(args, l.Args...), l.ISO
	}
	if kernel == "" || initrdPath == "" {
		return ErrNoInstaller
	}
	if err := p.installerFiles(&kernel, &initrdPath, false); err != nil {
		return err
	}
	p.Kernel, p.Initrd = kernel, initrdPath
	switch spec.Delivery {
	case "inject":
		inj := filepath.Join(in.Dir, "initrd.img")
		if err := os.MkdirAll(in.Dir, 0o700); err != nil {
			return err
		}
		if err := initrd.Inject(initrdPath, inj, []initrd.File{{Name: "ks.cfg", Data: in.Kickstart, Mode: 0o600}}, in.Now); err != nil {
			return err
		}
		p.Initrd = inj
		args = append(args, "inst.ks=file:/ks.cfg")
	case "http":
		if in.Serve == nil {
			return errors.New("kickstart delivery http: no server")
		}
		srv, err := in.Serve(in.Kickstart)
		if err != nil {
			return err
		}
		p.HTTP, p.KickstartFile = &srv.HTTPDelivery, filepath.Join(in.Dir, "ks.cfg")
		_, port, _ := net.SplitHostPort(srv.Addr)
		host := srv.GuestHost
		if host == "" {
			host = "10.0.2.2" // QEMU user networking: the host's loopback
		}
		args = append(args, "ip=dhcp", "inst.ks=http://"+net.JoinHostPort(host, port)+srv.Path)
	case "url":
		args = append(args, "ip=dhcp", "inst.ks="+spec.Kickstart)
	case "":
	default:
		return &DeliveryError{Delivery: spec.Delivery, Provider: "libvirt", Want: "inject, http or url"}
	}
	if spec.ExtraArgs != "" {
		args = append(args, spec.ExtraArgs)
	}
	p.Cmdline = strings.Join(args, " ")
	return nil
}

// ec2: the installer's ids as given, the command line and an inline
// kickstart rendered into user-data (nchookd on the node puts them on
// the installer).
func (p *Plan) ec2(spec *Spec, in PlanInput) error {
	var args []string
	p.Kernel, p.Initrd = spec.Kernel, spec.Initrd
	r := userdata.RenderInput{Mode: userdata.ModeBake, Installer: spec.Catalog, VNC: spec.VNC}
	if in.Kind == "run" {
		r.Mode = userdata.ModeInPlace
	}
	switch spec.Delivery {
	case "inline":
		r.Kickstart = in.Kickstart
		args = append(args, "inst.ks=file:/ks.cfg")
	case "url":
		args = append(args, "ip=dhcp", "inst.ks="+spec.Kickstart)
	case "":
	default:
		return &DeliveryError{Delivery: spec.Delivery, Provider: "ec2", Want: "inline or url"}
	}
	if spec.ExtraArgs != "" {
		args = append(args, spec.ExtraArgs)
	}
	r.BootParams = strings.Join(args, " ")
	if r.BootParams == "" {
		return ErrNothingToBoot
	}
	ud, err := userdata.Render(r)
	if err != nil {
		return err
	}
	p.UserData = ud
	return nil
}

// opennebula: a catalog installer's images, a location's files (x86_64
// trees), or files and img-N ids as given; the arguments besides the
// kickstart's (its steps add those and upload what they need).
func (p *Plan) opennebula(ctx context.Context, spec *Spec, in PlanInput) error {
	var args []string
	kernel, initrdPath := spec.Kernel, spec.Initrd
	if spec.Catalog != "" {
		if in.Catalog == nil {
			return fmt.Errorf("installer %q: no catalog here", spec.Catalog)
		}
		// Resolved into image ids now, before anything exists; the ids
		// are the build's (a resume boots exactly these).
		ci, err := in.Catalog(ctx, spec.Catalog)
		if err != nil {
			return err
		}
		kernel, initrdPath, p.CmdlinePrefix = ci.Kernel, ci.Initrd, ci.Cmdline
		p.Provenance.KernelSHA256, p.Provenance.InitrdSHA256, p.Provenance.Installer = ci.KernelSHA256, ci.InitrdSHA256, ci.Name
	}
	if spec.Location != "" {
		l, err := LocateTree(ctx, in.CacheDir, spec.Location, "x86_64")
		if err != nil {
			return err
		}
		kernel, initrdPath, args = l.Kernel, l.Initrd, append(args, l.Args...)
	}
	if err := p.installerFiles(&kernel, &initrdPath, true); err != nil {
		return err
	}
	if spec.ExtraArgs != "" {
		args = append(args, spec.ExtraArgs)
	}
	p.Kernel, p.Initrd, p.Args = kernel, initrdPath, strings.Join(args, " ")
	if spec.Delivery != "url" && in.Kickstart != nil {
		p.KickstartFile = filepath.Join(in.Dir, "ks.cfg")
	}
	return nil
}

// installerFiles makes kernel and initrd absolute paths of regular files
// and records their sha256 in the provenance; with images, an img-N id
// (an existing KERNEL/RAMDISK image) is taken as it is.
func (p *Plan) installerFiles(kernel, initrdPath *string, images bool) error {
	sums := []*string{&p.Provenance.KernelSHA256, &p.Provenance.InitrdSHA256}
	for i, fp := range []*string{kernel, initrdPath} {
		if images && strings.HasPrefix(*fp, "img-") {
			continue
		}
		abs, err := filepath.Abs(*fp)
		if err != nil {
			return err
		}
		if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("installer file %s: not a readable file", abs)
		}
		*fp = abs
		if *sums[i], err = SHA256File(abs); err != nil {
			return err
		}
	}
	return nil
}

// legacyPlanKeys are the values in which kscloud before the typed plan
// kept it ("prepared" said it was complete).
var legacyPlanKeys = []string{"prepared", "kernel", "ramdisk", "cmdline", "userdata", "bootparams", "iso", "http.addr",
	"http.token", "one.args", "one.cmdline_prefix", "provenance.kernel", "provenance.initrd", "provenance.git", "provenance.git_dirty"}

// planFromValues reads the plan (and the machine asked for) of a build
// record written before they were typed (its values), so that such a
// build resumes as planned; dir is the build's directory. Its
// provenance's kscloud version is left for the resuming kscloud to fill
// in, as that kscloud did. A record whose plan was never complete gets
// none: the launch plans anew.
func (b *Build) planFromValues(dir string) error {
	v := b.Values
	if b.Spec.Machine == nil && v["host.accel"] != "" {
		b.Spec.Machine = &Machine{Accel: v["host.accel"], Boot: v["host.boot"], CPU: v["host.cpu"], Network: v["host.network"]}
		if b.Spec.Architecture == "" {
			b.Spec.Architecture = v["host.arch"]
		}
	}
	for _, k := range []string{"host.accel", "host.boot", "host.cpu", "host.network", "host.arch"} {
		delete(v, k)
	}
	if b.Plan != nil || v["prepared"] != "yes" {
		return nil
	}
	ud, err := base64.StdEncoding.DecodeString(v["userdata"])
	if err != nil {
		return fmt.Errorf("values: userdata is not base64 (%v): written by another program", err)
	}
	p := &Plan{Kernel: v["kernel"], Initrd: v["ramdisk"], Cmdline: v["cmdline"], Args: v["one.args"],
		CmdlinePrefix: v["one.cmdline_prefix"], Media: v["iso"]}
	if len(ud) > 0 {
		p.UserData = ud
	}
	if tok := v["http.token"]; tok != "" {
		p.HTTP = &HTTPDelivery{Addr: v["http.addr"], Token: tok}
	}
	if (p.HTTP != nil || b.Provider == "opennebula" && b.Spec.Delivery != "url") && b.Spec.KickstartSHA256 != "" {
		p.KickstartFile = filepath.Join(dir, "ks.cfg")
	}
	if !(b.Provider == "opennebula" && b.Kind == "run" && b.Spec.ImageID != "") {
		pr := NewProvenance(b.Spec.Kickstart)
		pr.KickstartSHA256, pr.Date, pr.Build, pr.Installer = b.Spec.KickstartSHA256, b.Created, b.ID, b.Spec.Catalog
		pr.KernelSHA256, pr.InitrdSHA256 = v["provenance.kernel"], v["provenance.initrd"]
		pr.GitRevision, pr.GitDirty = v["provenance.git"], v["provenance.git_dirty"] == "yes"
		p.Provenance = pr
	}
	for _, k := range legacyPlanKeys {
		delete(v, k)
	}
	b.Plan = p
	return nil
}

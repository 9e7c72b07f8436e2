package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/initrd"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/userdata"
)

// launchFlags are the flags of run and bake.
type launchFlags struct {
	global
	ks, delivery                 string
	kernel, initrd, location     string
	image                        string // run: boot this image; ec2 bake: the installer image (EMI)
	installerImage               string // ec2 run in place: the installer image (EMI) whose root disk gets the install
	catalog                      string // --installer: kscloud.installer= on a cloud with nchookd; KSCLOUD_INSTALLER images on opennebula
	extraArgs                    string
	name                         string
	disk, memory, cpus           int
	vnc, keepOnError, noLint     bool
	timeout, inactivity          time.Duration
	resume                       string
	itype, zone, key             string
	virtualization, architecture string
	imageKernel, imageRamdisk    string
	targetDevice                 string
	lintVersion                  string
	host                         hostFlags // libvirt machine: --accel, --boot, --cpu, --network
	format                       string    // bake: image format besides the qcow2 (libvirt)
}

func (f *launchFlags) register(fs *flag.FlagSet, kind string) {
	f.global.register(fs)
	f.host.register(fs)
	f.global.host = &f.host
	fs.StringVar(&f.ks, "ks", "", "kickstart `FILE|URL`")
	fs.StringVar(&f.delivery, "ks-delivery", "", "how the installer gets the kickstart: inject (into a copy of the initrd; libvirt default), http (kscloud serves it), url (the installer fetches --ks itself), inline (user-data part, nchookd injects; ec2 default)")
	fs.StringVar(&f.kernel, "kernel", "", "installer kernel `path` (libvirt) or eki-/aki- id (ec2)")
	fs.StringVar(&f.initrd, "initrd", "", "installer initrd `path` (libvirt) or eri-/ari- id (ec2)")
	fs.StringVar(&f.location, "location", "", "install tree `URL` or directory (its .treeinfo), or an ISO image URL or file (read without mounting; attached as a CD-ROM); cached by checksum")
	fs.StringVar(&f.catalog, "installer", "", "installer `name` from the operator's catalog: nchookd's on the node (ec2; kscloud.installer=), or the KERNEL and RAMDISK images marked KSCLOUD_INSTALLER=name (opennebula)")
	fs.StringVar(&f.extraArgs, "extra-args", "", "more kernel `args` for the installer")
	fs.StringVar(&f.name, "name", "", "image name (bake) or instance name (run)")
	fs.IntVar(&f.disk, "disk", 4, "disk size in `GiB`")
	fs.IntVar(&f.memory, "memory", 0, "memory in `MiB` (libvirt; default 768)")
	fs.IntVar(&f.cpus, "cpus", 0, "virtual `CPUs` (libvirt; default 1)")
	fs.IntVar(&f.cpus, "vcpus", 0, "virtual `CPUs` (libvirt; same as --cpus)")
	fs.BoolVar(&f.vnc, "vnc", false, "a VNC console during the install (loopback, random password)")
	fs.BoolVar(&f.keepOnError, "keep-on-error", false, "on failure leave every resource in place and print them")
	fs.BoolVar(&f.noLint, "no-lint", false, "launch even when kscloud lint finds errors in the kickstart")
	fs.StringVar(&f.lintVersion, "lint-version", "", "kickstart syntax `version` for the lint (default: kscloud lint's)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Hour, "give up when the install has not finished after this `duration`")
	fs.DurationVar(&f.inactivity, "inactivity", 15*time.Minute, "give up when the console stays silent this `long` (watchdog)")
	fs.StringVar(&f.resume, "resume", "", "resume the interrupted build `ID` (state file)")
	fs.StringVar(&f.itype, "type", "m1.small", "instance `type` (ec2)")
	fs.StringVar(&f.zone, "zone", "", "availability `zone` (ec2)")
	fs.StringVar(&f.key, "key", "", "key pair `name` (ec2)")
	fs.StringVar(&f.virtualization, "virtualization", "hvm", "registered image virtualization: hvm or paravirtual (ec2)")
	fs.StringVar(&f.architecture, "arch", "x86_64", "architecture: x86_64 or aarch64 where the host's libvirt offers it (libvirt); registered image architecture x86_64, i386 or arm64 (ec2)")
	if kind == "bake" {
		fs.StringVar(&f.format, "format", "qcow2", "image `format` (libvirt): qcow2 (the image), or raw, vmdk, vdi written beside it")
		fs.StringVar(&f.imageKernel, "image-kernel", "", "kernel `ID` (eki-/aki-) of a paravirtual image: a pv-grub EKI as seed 000 uses, or the installed system's kernel (ec2)")
		fs.StringVar(&f.imageRamdisk, "image-ramdisk", "", "ramdisk `ID` (eri-/ari-) of a paravirtual image, if its kernel needs one (ec2)")
	}
	fs.StringVar(&f.targetDevice, "target-device", "/dev/sdb", "device the target volume is attached as (ec2 bake)")
	if kind == "run" {
		fs.StringVar(&f.image, "image", "", "boot a copy of this image `NAME|ID` instead of installing")
		fs.StringVar(&f.installerImage, "installer-image", "", "installer image `ID` (emi-/ami-) to install in place on (ec2): its root disk receives the install")
	} else {
		fs.StringVar(&f.image, "installer-image", "", "installer image `ID` (emi-/ami-) the bake boots with the volume attached (ec2)")
	}
}

func (f *launchFlags) spec() install.Spec {
	s := install.Spec{
		Name: f.name, Kickstart: f.ks, Delivery: f.delivery, Kernel: f.kernel, Initrd: f.initrd, Location: f.location,
		ImageID: f.image, Catalog: f.catalog, ExtraArgs: f.extraArgs, DiskGiB: f.disk, MemoryMB: f.memory, CPUs: f.cpus,
		Type: f.itype, Zone: f.zone, KeyName: f.key, VNC: f.vnc,
		Timeout: install.Duration{Duration: f.timeout}, Inactivity: install.Duration{Duration: f.inactivity},
		Architecture: f.architecture, Virtualization: f.virtualization, RootDevice: "/dev/sda1",
		ImageKernel: f.imageKernel, ImageRamdisk: f.imageRamdisk,
	}
	if f.installerImage != "" {
		s.ImageID = f.installerImage // ec2 run in place: the instance's image
	}
	if f.provider == "libvirt" {
		s.RootDevice = "/dev/vda"
	}
	return s
}

// prepared is what a launch needs besides the build state.
type prepared struct {
	wf      *install.Workflow
	one     *opennebula.Workflow // --provider opennebula
	cleanup func()
}

// prepare resolves the installer and the kickstart delivery for a new
// build, writing what a resume needs into the build's values and
// directory; for a resumed build it reads them back.
func prepare(ctx context.Context, f *launchFlags, b *install.Build, p cloud.Provider, kind string, st *status, stderr io.Writer) (*prepared, error) {
	if f.provider == "opennebula" {
		return prepareOpenNebula(ctx, f, b, p, kind, st, stderr)
	}
	dir := buildDir(f.stateDir, b.ID)
	wf := &install.Workflow{P: p, Status: st.line, TargetDevice: f.targetDevice}
	pr := &prepared{wf: wf, cleanup: func() {}}
	if b.Value("prepared") == "yes" {
		wf.Kernel, wf.Ramdisk, wf.Cmdline = b.Value("kernel"), b.Value("ramdisk"), b.Value("cmdline")
		ud, _ := base64.StdEncoding.DecodeString(b.Value("userdata"))
		wf.UserData = ud
		if b.Spec.Delivery == "http" {
			ks, err := os.ReadFile(filepath.Join(dir, "ks.cfg"))
			if err != nil {
				return nil, err
			}
			// The installer may still want it: serve it again, same port
			// and path (they are on its command line) if free.
			if tok := b.Value("http.token"); tok != "" {
				if peers, _, err := kickstartPeers(ctx, f.connect, p, b); err == nil {
					if srv, err := serveKickstart(ks, b.Value("http.addr"), tok, peers); err == nil {
						pr.cleanup = srv.Close
					}
				}
			}
		}
		wf.Provenance = provenanceFrom(b)
		useInstallMedia(p, b.Value("iso"))
		return pr, nil
	}
	spec := &b.Spec
	if spec.Delivery == "" && spec.Kickstart != "" {
		switch {
		case f.provider == "libvirt":
			spec.Delivery = "inject"
		case install.IsURL(spec.Kickstart):
			spec.Delivery = "url"
		default:
			spec.Delivery = "inline"
		}
	}
	ks, err := f.readKickstart(ctx, spec, dir, kind, stderr)
	if err != nil {
		return nil, err
	}
	prov := install.NewProvenance(spec.Kickstart)
	prov.KickstartSHA256, prov.Date, prov.KscloudVersion, prov.Build, prov.Installer = spec.KickstartSHA256, time.Now().UTC(), version, b.ID, spec.Catalog
	if spec.Kickstart != "" && !install.IsURL(spec.Kickstart) {
		prov.GitRevision, prov.GitDirty = install.GitRevision(spec.Kickstart)
		if abs, err := filepath.Abs(spec.Kickstart); err == nil {
			prov.KickstartSource = abs
		}
	}
	var args []string
	switch f.provider {
	case "libvirt":
		if spec.ImageID != "" && kind == "run" {
			break // boots an image, no installer
		}
		kernel, initrdPath := spec.Kernel, spec.Initrd
		if spec.Location != "" {
			l, err := locate(ctx, f.stateDir, spec.Location, f.architecture)
			if err != nil {
				return nil, err
			}
			kernel, initrdPath, args = l.kernel, l.initrd, append(args, l.args...)
			b.SetValue("iso", l.iso)
			useInstallMedia(p, l.iso)
		}
		if kernel == "" || initrdPath == "" {
			return nil, errors.New("no installer: give --kernel and --initrd, or --location of an install tree")
		}
		var err error
		for _, fp := range []*string{&kernel, &initrdPath} {
			if *fp, err = filepath.Abs(*fp); err != nil {
				return nil, err
			}
			if st, err := os.Stat(*fp); err != nil || !st.Mode().IsRegular() {
				return nil, fmt.Errorf("installer file %s: not a readable file", *fp)
			}
		}
		if prov.KernelSHA256, err = install.SHA256File(kernel); err != nil {
			return nil, err
		}
		if prov.InitrdSHA256, err = install.SHA256File(initrdPath); err != nil {
			return nil, err
		}
		wf.Kernel, wf.Ramdisk = kernel, initrdPath
		switch spec.Delivery {
		case "inject":
			inj := filepath.Join(dir, "initrd.img")
			if err := initrd.Inject(initrdPath, inj, []initrd.File{{Name: "ks.cfg", Data: ks, Mode: 0o600}}, time.Now()); err != nil {
				return nil, err
			}
			wf.Ramdisk = inj
			args = append(args, "inst.ks=file:/ks.cfg")
		case "http":
			tok, err := newKickstartToken()
			if err != nil {
				return nil, err
			}
			peers, guestHost, err := kickstartPeers(ctx, f.connect, p, b)
			if err != nil {
				return nil, err
			}
			srv, err := serveKickstart(ks, "", tok, peers)
			if err != nil {
				return nil, err
			}
			pr.cleanup = srv.Close
			b.SetValue("http.addr", srv.Addr())
			b.SetValue("http.token", tok) // the state file is 0600
			_, port, _ := net.SplitHostPort(srv.Addr())
			// The host as the guest reaches it (user networking: 10.0.2.2).
			args = append(args, "ip=dhcp", "inst.ks=http://"+guestHost+":"+port+srv.Path())
		case "url":
			args = append(args, "ip=dhcp", "inst.ks="+spec.Kickstart)
		case "":
		default:
			return nil, fmt.Errorf("--ks-delivery %q: want inject, http or url on libvirt", spec.Delivery)
		}
		if spec.ExtraArgs != "" {
			args = append(args, spec.ExtraArgs)
		}
		wf.Cmdline = strings.Join(args, " ")
	case "ec2":
		if kind == "run" && spec.Kickstart == "" && spec.ExtraArgs == "" {
			break // boots an image, no installer
		}
		wf.Kernel, wf.Ramdisk = spec.Kernel, spec.Initrd
		in := userdata.RenderInput{Mode: userdata.ModeBake, Installer: spec.Catalog, VNC: spec.VNC}
		if kind == "run" {
			in.Mode = userdata.ModeInPlace
		}
		switch spec.Delivery {
		case "inline":
			in.Kickstart = ks
			args = append(args, "inst.ks=file:/ks.cfg")
		case "url":
			args = append(args, "ip=dhcp", "inst.ks="+spec.Kickstart)
		case "":
		default:
			return nil, fmt.Errorf("--ks-delivery %q: want inline or url on ec2", spec.Delivery)
		}
		if spec.ExtraArgs != "" {
			args = append(args, spec.ExtraArgs)
		}
		in.BootParams = strings.Join(args, " ")
		if in.BootParams == "" {
			return nil, errors.New("nothing to boot: give --ks (or --extra-args with the installer's answers)")
		}
		ud, err := userdata.Render(in)
		if err != nil {
			return nil, err
		}
		// The command line travels in user-data (bootparams=); nchookd on
		// the node puts it on the installer.
		wf.UserData = ud
		b.SetValue("bootparams", in.BootParams)
	}
	wf.Provenance = prov
	b.Result = nil
	b.SetValue("kernel", wf.Kernel)
	b.SetValue("ramdisk", wf.Ramdisk)
	b.SetValue("cmdline", wf.Cmdline)
	b.SetValue("userdata", base64.StdEncoding.EncodeToString(wf.UserData))
	b.SetValue("provenance.kernel", prov.KernelSHA256)
	b.SetValue("provenance.initrd", prov.InitrdSHA256)
	b.SetValue("provenance.git", prov.GitRevision)
	if prov.GitDirty {
		b.SetValue("provenance.git_dirty", "yes")
	}
	b.SetValue("prepared", "yes")
	return pr, nil
}

func provenanceFrom(b *install.Build) *install.Provenance {
	p := install.NewProvenance(b.Spec.Kickstart)
	p.KickstartSHA256, p.Date, p.KscloudVersion, p.Build, p.Installer = b.Spec.KickstartSHA256, b.Created, version, b.ID, b.Spec.Catalog
	p.KernelSHA256, p.InitrdSHA256 = b.Value("provenance.kernel"), b.Value("provenance.initrd")
	p.GitRevision, p.GitDirty = b.Value("provenance.git"), b.Value("provenance.git_dirty") == "yes"
	return p
}

// readKickstart reads spec.Kickstart (a file or URL), records its sha256,
// keeps a copy in the build directory dir and lints it for provider
// (none: libvirt's and EC2's rules). A URL the installer fetches itself
// may be unreadable from here: a warning, and nil.
func (f *launchFlags) readKickstart(ctx context.Context, spec *install.Spec, dir, kind string, stderr io.Writer, provider ...string) ([]byte, error) {
	if spec.Kickstart == "" {
		return nil, nil
	}
	ks, err := install.ReadSource(ctx, spec.Kickstart, install.MaxKickstart)
	if err != nil && spec.Delivery == "url" {
		// The installer fetches it itself, maybe over a network this
		// host does not see: go on, unchecked.
		fmt.Fprintf(stderr, "kscloud %s: warning: kickstart %s cannot be read from here (%s): not linted, no checksum in the provenance\n", kind, install.RedactURL(spec.Kickstart), install.RedactText(err.Error()))
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("kickstart %s: %w", install.RedactURL(spec.Kickstart), err)
	}
	spec.KickstartSHA256 = install.SHA256(ks)
	if err := install.WriteFile(filepath.Join(dir, "ks.cfg"), ks); err != nil {
		return nil, err
	}
	if !f.noLint {
		if err := lintBeforeLaunch(ctx, spec.Kickstart, ks, f.lintVersion, kind, stderr, provider...); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

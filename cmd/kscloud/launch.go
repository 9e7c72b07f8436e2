package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/ksserve"
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
	nchookd                      bool // --nchookd: the OpenNebula hosts run nchookd (reboot allowed, checked on the VM)
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
	fs.BoolVar(&f.nchookd, "nchookd", false, "opennebula: the hosts run nchookd, so the kickstart may end with reboot (linted as kscloud lint --nchookd); the install fails early when the VM's host reports no nchookd in its MONITORING")
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
		Type: f.itype, Zone: f.zone, KeyName: f.key, VNC: f.vnc, NodeHook: f.nchookd,
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

// prepare plans a new build (install.NewPlan: installer, kickstart
// delivery, provenance) into its record, or takes a resumed build's plan,
// and wires it to the provider's workflow.
func prepare(ctx context.Context, f *launchFlags, b *install.Build, p cloud.Provider, kind string, st *status, stderr io.Writer) (*prepared, error) {
	dir := buildDir(f.stateDir, b.ID)
	pr := &prepared{wf: &install.Workflow{P: p, Status: st.line, TargetDevice: f.targetDevice}, cleanup: func() {}}
	var ks []byte
	if b.Plan == nil {
		spec := &b.Spec
		spec.DefaultDelivery(f.provider, kind)
		var lintFor []string
		if f.provider == "opennebula" {
			lintFor = []string{"opennebula"}
		}
		var err error
		if ks, err = f.readKickstart(ctx, spec, dir, kind, stderr, lintFor...); err != nil {
			return nil, err
		}
		in := install.PlanInput{Provider: f.provider, Kind: kind, BuildID: b.ID, Dir: dir, CacheDir: filepath.Join(f.stateDir, "cache"),
			Arch: f.architecture, Kickstart: ks, Version: version,
			Serve: func(ks []byte) (install.Served, error) {
				tok, err := ksserve.NewToken()
				if err != nil {
					return install.Served{}, err
				}
				peers, guestHost, err := kickstartPeers(ctx, f.connect, p, b)
				if err != nil {
					return install.Served{}, err
				}
				srv, err := ksserve.Serve(ks, "", tok, peers)
				if err != nil {
					return install.Served{}, err
				}
				pr.cleanup = srv.Close
				return install.Served{HTTPDelivery: install.HTTPDelivery{Addr: srv.Addr(), Token: tok}, Path: srv.Path(), GuestHost: guestHost}, nil
			}}
		if op, ok := p.(*opennebula.Provider); ok {
			in.Catalog = func(ctx context.Context, name string) (install.CatalogInstaller, error) {
				in, err := op.Installer(ctx, name)
				if err != nil {
					return install.CatalogInstaller{}, installerRemedy(err)
				}
				st.line(fmt.Sprintf("installer %s: kernel %s, initrd %s", in.Name, in.Kernel, in.Initrd))
				return install.CatalogInstaller(in), nil
			}
		}
		plan, err := install.NewPlan(ctx, spec, in)
		if err != nil {
			return nil, planRemedy(err)
		}
		b.Plan, b.Result = plan, nil
	} else if h := b.Plan.HTTP; h != nil || b.Plan.KickstartFile != "" {
		var err error
		if ks, err = os.ReadFile(b.Plan.KickstartFile); err != nil && h != nil {
			return nil, err
		}
		// The installer may still want it: serve it again, same port
		// and path (they are on its command line), or say why not.
		if h != nil {
			if peers, _, err := kickstartPeers(ctx, f.connect, p, b); err != nil {
				fmt.Fprintf(stderr, "kscloud: kickstart server %s (on the installer's command line): %v; not served again\n", h.Addr, err)
			} else if srv := ksserve.Resume(ks, h.Addr, h.Token, peers, stderr); srv != nil {
				pr.cleanup = srv.Close
			}
		}
	}
	plan := b.Plan
	if plan.Provenance != nil && plan.Provenance.KscloudVersion == "" {
		plan.Provenance.KscloudVersion = version // a plan from a record of an older kscloud
	}
	if f.provider == "opennebula" {
		op, ok := p.(*opennebula.Provider)
		if !ok {
			return nil, fmt.Errorf("provider %s is not OpenNebula", p.Name())
		}
		pr.one = &opennebula.Workflow{P: op, Status: st.line, Serve: f.one.serve, ServeURL: f.one.serveURL,
			Kernel: plan.Kernel, Initrd: plan.Initrd, Args: plan.Args, CmdlinePrefix: plan.CmdlinePrefix, Provenance: plan.Provenance,
			NeedNodeHook: f.nchookd || b.Spec.NodeHook}
		if b.Spec.Delivery == "url" {
			pr.one.KickstartURL = b.Spec.Kickstart
		} else {
			pr.one.Kickstart = ks
		}
		return pr, nil
	}
	wf := pr.wf
	wf.Kernel, wf.Ramdisk, wf.Cmdline, wf.UserData, wf.Provenance = plan.Kernel, plan.Initrd, plan.Cmdline, plan.UserData, plan.Provenance
	useInstallMedia(p, plan.Media)
	return pr, nil
}

// planRemedy names the flags that fix a plan the spec cannot give.
func planRemedy(err error) error {
	var de *install.DeliveryError
	switch {
	case errors.Is(err, install.ErrNoInstaller):
		return errors.New("no installer: give --kernel and --initrd, or --location of an install tree")
	case errors.Is(err, install.ErrNothingToBoot):
		return errors.New("nothing to boot: give --ks (or --extra-args with the installer's answers)")
	case errors.As(err, &de):
		return fmt.Errorf("--ks-delivery %q: want %s on %s", de.Delivery, de.Want, de.Provider)
	}
	return err
}

// useInstallMedia tells a local provider to attach the ISO to installer
// instances.
func useInstallMedia(p cloud.Provider, iso string) {
	if lp, ok := p.(*cloudlibvirt.Provider); ok && iso != "" {
		lp.SetInstallMedia(iso)
	}
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
		if err := lintBeforeLaunch(ctx, spec.Kickstart, ks, f.lintVersion, kind, f.nchookd, stderr, provider...); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

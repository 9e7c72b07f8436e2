package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/install"
)

const runUsage = `[flags] --ks FILE|URL (--kernel K --initrd I | --location URL | --installer NAME)   install in place
       kscloud run [flags] --image NAME                                                                boot a copy of a baked image`

func cmdRun(args []string, stdout, stderr io.Writer) int { return launch("run", args, stdout, stderr) }

const bakeUsage = `[flags] --ks FILE|URL (--kernel K --initrd I | --location URL | --installer NAME) [--name NAME]
       kscloud bake --resume ID`

func cmdBake(args []string, stdout, stderr io.Writer) int {
	return launch("bake", args, stdout, stderr)
}

func launch(kind string, args []string, stdout, stderr io.Writer) int {
	usage := runUsage
	if kind == "bake" {
		usage = bakeUsage
	}
	fs := newFlagSet(kind, usage, stderr)
	var f launchFlags
	f.register(fs, kind)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "kscloud %s: unexpected argument %q\n", kind, pos[0])
		return 2
	}
	if err := f.check(); err != nil {
		fmt.Fprintf(stderr, "kscloud %s: %v\n", kind, err)
		return 2
	}
	if f.resume == "" {
		if msg := f.validate(kind); msg != "" {
			fmt.Fprintf(stderr, "kscloud %s: %s\n", kind, msg)
			return 2
		}
	}
	// From here stderr goes through the status line (Write): the -v log
	// and the warnings of the steps do not write over the progress line.
	st := newStatus(stderr)
	defer st.done()
	stderr = st
	ctx, cancel := signalContext()
	defer cancel()
	store, err := install.OpenStore(f.stateDir)
	if err != nil {
		return fail(stderr, kind, err)
	}
	var b *install.Build
	if f.resume != "" {
		if b, err = store.Load(f.resume); err != nil {
			return fail(stderr, kind, err)
		}
		if b.Kind != kind {
			return fail(stderr, kind, fmt.Errorf("build %s is a %s, not a %s", b.ID, b.Kind, kind))
		}
		if b.Status == install.StatusDone || b.Status == install.StatusCleaned {
			return fail(stderr, kind, fmt.Errorf("build %s is %s: nothing to resume", b.ID, b.Status))
		}
		f.useRecorded(fs, b)
	} else {
		b = install.NewBuild(kind, f.provider, f.spec())
	}
	f.host.record(fs, &f, b, f.resume != "")
	p, closeP, err := f.openProvider(ctx, stderr)
	if err != nil {
		return fail(stderr, kind, err)
	}
	defer closeP()
	if err := checkHost(ctx, p, kind, stderr); err != nil {
		return fail(stderr, kind, err)
	}
	reached := f.cloudRef(p)
	if err := sameCloud(b, reached); err != nil {
		return fail(stderr, kind, err)
	}
	if b.Cloud == nil {
		b.Cloud = reached
	}
	st.start = time.Now()
	st.line(fmt.Sprintf("build %s (%s on %s)", b.ID, kind, f.provider))
	pr, err := prepare(ctx, &f, b, p, kind, st, stderr)
	if err != nil {
		b.Status, b.Error = install.StatusFailed, err.Error()
		if serr := store.Save(b); serr != nil {
			err = errors.Join(err, serr)
		}
		st.done()
		return fail(stderr, kind, err)
	}
	defer pr.cleanup()
	eng := &install.Engine{Provider: p, Store: store, Log: f.logger(stderr), KeepOnError: f.keepOnError, Progress: st.line}
	var steps []install.Step
	switch {
	case kind == "bake":
		if f.provider == "ec2" {
			// Instance-store disks as seed 000 maps them (name → device).
			pr.wf.Ephemeral = map[string]string{"ephemeral0": "/dev/sdb", "ephemeral1": "/dev/sdc"}
		}
		steps = pr.wf.BakeSteps()
	case b.Spec.ImageID != "" && b.Spec.Kickstart == "" && b.Spec.ExtraArgs == "":
		// Boots an image. (On ec2 an install in place has an image too:
		// the installer's, given with --installer-image.)
		steps = pr.wf.ImageRunSteps()
	default:
		steps = pr.wf.RunSteps(f.provider == "libvirt")
	}
	if pr.one != nil {
		steps = oneSteps(pr.one, kind, b)
	}
	runStart := time.Now()
	runErr := eng.Run(ctx, b, steps)
	if runErr != nil && f.keepOnError && b.Status != install.StatusRunning {
		st.keep("kept on error (--keep-on-error): " + b.ResourceSummary())
		st.keep(fmt.Sprintf("resume with: kscloud %s --resume %s; remove with: kscloud cleanup %s", b.Kind, b.ID, b.ID))
	}
	defer func() {
		var volumes int64
		if vp, ok := p.(volumePather); ok {
			volumes = volumesWritten(vp, b)
		}
		if err := appendSummary(store.Dir, b, time.Since(runStart), runErr, f.calls, volumes); err != nil {
			fmt.Fprintf(stderr, "kscloud %s: %v\n", kind, err)
		}
	}()
	if runErr == nil && kind == "bake" && b.Result != nil {
		// The image is registered and kept: a provenance not written is
		// said, not a failed bake.
		if err := recordImageDigest(ctx, p, b); err != nil {
			st.keep(fmt.Sprintf("warning: image %s: provenance incomplete: %v", b.Result.ImageID, err))
		}
		if w, ok := p.(provenanceWriter); ok {
			if path, err := w.WriteProvenance(ctx, b.Result.ImageID, b.Result.Provenance); err != nil {
				st.keep(fmt.Sprintf("warning: image %s: provenance not written: %v", b.Result.ImageID, err))
			} else {
				st.keep("provenance: " + path)
			}
		}
		if err := store.Save(b); err != nil {
			runErr = err
		} else if e, err := bakeExport(b, f.format, st); err != nil {
			runErr = err
		} else if e != nil {
			b.SetValue("export.path", e.Path)
			b.SetValue("export.sha256", e.SHA256)
			runErr = store.Save(b)
		}
	}
	st.done()
	if runErr != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "kscloud %s: interrupted; %s\n", kind, leftOver(b, f.keepOnError))
			return 130
		}
		if errors.Is(runErr, ec2.ErrNoZone) {
			runErr = fmt.Errorf("%w: name one with --zone", runErr)
		}
		return fail(stderr, kind, runErr)
	}
	printResult(stdout, f.output, b)
	return 0
}

type provenanceWriter interface {
	WriteProvenance(ctx context.Context, imageID string, v any) (string, error)
}

func leftOver(b *install.Build, kept bool) string {
	s := b.ResourceSummary()
	if s == "nothing" {
		return "nothing left behind"
	}
	if kept {
		return "kept: " + s + "; resume: kscloud " + b.Kind + " --resume " + b.ID + "; remove: kscloud cleanup " + b.ID
	}
	return "left behind: " + s + "; remove: kscloud cleanup " + b.ID
}

func (f *launchFlags) validate(kind string) string {
	if f.provider == "opennebula" && f.disk > 0 && f.timeout > 0 {
		if msg := f.host.validate(f.provider); msg != "" {
			return msg
		}
		return f.validateOpenNebula(kind)
	}
	if f.disk <= 0 {
		return fmt.Sprintf("--disk %d: must be at least 1 GiB", f.disk)
	}
	if f.catalog != "" && f.provider == "libvirt" {
		return "--installer NAME is for ec2 (nchookd's catalog on the node) and opennebula (KERNEL/RAMDISK images marked KSCLOUD_INSTALLER); on libvirt give --kernel and --initrd, or --location"
	}
	if msg := f.host.validate(f.provider); msg != "" {
		return msg
	}
	if f.format != "" && f.format != "qcow2" {
		if f.provider != "libvirt" {
			return "--format is for local libvirt images (an EC2 cloud keeps its own)"
		}
		if msg := checkExport(f.format, ""); msg != "" {
			return msg
		}
	}
	if f.timeout <= 0 || f.inactivity < 0 {
		return "--timeout must be positive and --inactivity not negative"
	}
	if f.vnc && f.provider == "libvirt" && kind == "run" && f.image != "" {
		return "--vnc applies to installs; an image boots without one"
	}
	if kind == "run" && f.image != "" {
		if f.ks != "" || f.kernel != "" || f.location != "" || f.installerImage != "" {
			return "--image boots an installed system: it takes no --ks, --kernel, --location or --installer-image"
		}
		if f.provider == "ec2" {
			return f.validateEC2(kind)
		}
		return ""
	}
	if f.installerImage != "" && f.provider != "ec2" {
		return "--installer-image is for ec2 (an install in place on an instance of that image)"
	}
	if f.ks == "" && f.extraArgs == "" {
		return "--ks FILE|URL is required (see kscloud " + kind + " -h)"
	}
	if f.provider == "libvirt" && f.location == "" && (f.kernel == "" || f.initrd == "") {
		return "an installer is required: --kernel and --initrd, or --location"
	}
	if f.location != "" && (f.kernel != "" || f.initrd != "") {
		return "--location and --kernel/--initrd exclude each other"
	}
	if f.provider == "ec2" && (kind == "bake" && f.image == "" || kind == "run" && f.installerImage == "") {
		what := "the image the installer instance boots (its own disk is not the target)"
		if kind == "run" {
			what = "the image whose root disk the install replaces"
		}
		return "ec2 " + kind + " needs an installer image: --installer-image emi-… (" + what + "), with --kernel eki-… --initrd eri-…, or --installer NAME from the node's catalog"
	}
	if n := f.name; n != "" && !validName(n) {
		return fmt.Sprintf("--name %q: 1 to 112 letters, digits and ._()- (a timestamp is added; EC2 allows 128)", n)
	}
	if f.provider == "ec2" {
		return f.validateEC2(kind)
	}
	return ""
}

// validName: image and instance names every provider takes (file names
// on libvirt, EC2's image-name alphabet, room for "-YYYYMMDD-HHMMSS").
func validName(n string) bool {
	if len(n) > 112 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._()-", r)) {
			return false
		}
	}
	return n != "." && n != ".."
}

// validateEC2 checks ids and image settings before any state exists: a
// bad one found at register time would cost the whole install.
func (f *launchFlags) validateEC2(kind string) string {
	check := func(flag, v string, fn func(string) error) string {
		if v == "" {
			return ""
		}
		if err := fn(v); err != nil {
			return flag + ": " + err.Error()
		}
		return ""
	}
	image := "--installer-image"
	if kind == "run" && f.installerImage == "" {
		image = "--image" // run --image: an EMI/AMI id (names are libvirt's)
	}
	for _, c := range []struct {
		flag, v string
		fn      func(string) error
	}{
		{image, f.image, ec2.CheckImageID},
		{"--installer-image", f.installerImage, ec2.CheckImageID},
		{"--kernel", f.kernel, ec2.CheckKernelID},
		{"--initrd", f.initrd, ec2.CheckRamdiskID},
		{"--image-kernel", f.imageKernel, ec2.CheckKernelID},
		{"--image-ramdisk", f.imageRamdisk, ec2.CheckRamdiskID},
	} {
		if msg := check(c.flag, c.v, c.fn); msg != "" {
			return msg
		}
	}
	if kind != "bake" {
		return ""
	}
	switch f.architecture {
	case "x86_64", "i386", "arm64":
	default:
		return fmt.Sprintf("--arch %q: want x86_64, i386 or arm64", f.architecture)
	}
	switch f.virtualization {
	case "hvm":
		if f.imageKernel != "" || f.imageRamdisk != "" {
			return "--image-kernel/--image-ramdisk are for --virtualization paravirtual (an hvm image boots from its disk)"
		}
	case "paravirtual":
		if f.imageKernel == "" {
			return "--virtualization paravirtual needs --image-kernel eki-…: the kernel the image boots (a pv-grub EKI, as seed 000 uses, or the installed system's), never the installer's"
		}
	default:
		return fmt.Sprintf("--virtualization %q: want hvm or paravirtual", f.virtualization)
	}
	return ""
}

func printResult(w io.Writer, format string, b *install.Build) {
	if format == "json" {
		out := map[string]any{"build": b.ID, "kind": b.Kind, "provider": b.Provider, "result": viewResult(b.Result), "export": nil}
		if p := b.Value("export.path"); p != "" {
			out["export"] = map[string]string{"path": p, "sha256": b.Value("export.sha256")}
		}
		printJSON(w, out)
		return
	}
	r := b.Result
	if r == nil {
		fmt.Fprintf(w, "build\t%s\n", b.ID)
		return
	}
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%s\t%s\n", k, shown(v))
		}
	}
	kv("build", b.ID)
	kv("image", r.ImageID)
	kv("name", r.ImageName)
	kv("path", r.ImagePath)
	kv("instance", r.InstanceID)
	kv("addresses", strings.Join(r.Addresses, " "))
	kv("vnc", r.VNC)
	kv("marker", r.Marker)
	if r.Provenance != nil {
		kv("kickstart", r.Provenance.KickstartSHA256)
		kv("image_sha256", r.Provenance.ImageSHA256)
	}
	kv("export", b.Value("export.path"))
	kv("export_sha256", b.Value("export.sha256"))
	if r.InstallSeconds > 0 {
		kv("install_s", fmt.Sprintf("%.1f", r.InstallSeconds))
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/safetext"
	"github.com/kscloud/kscloud/internal/userdata"
)

func cmdImages(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "export" || args[0] == "import") {
		return cmdImageTransfer(args[0], args[1:], stdout, stderr)
	}
	fs := newFlagSet("images", "list | show NAME|ID | rm NAME|ID | export NAME|ID --format F FILE | import FILE --provenance P", stderr)
	var g global
	g.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(stderr, "kscloud images: %v\n", err)
		return 2
	}
	if len(pos) == 0 {
		pos = []string{"list"}
	}
	sub := pos[0]
	if (sub == "show" || sub == "rm") != (len(pos) == 2) || len(pos) > 2 || (sub != "list" && sub != "show" && sub != "rm") {
		fs.Usage()
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	p, closeP, err := g.openProvider(ctx, stderr)
	if err != nil {
		return fail(stderr, "images", err)
	}
	defer closeP()
	switch sub {
	case "list":
		imgs, err := p.Images(ctx, cloud.Tags{cloud.TagCreator: "kscloud"})
		if err != nil {
			return fail(stderr, "images", err)
		}
		sort.Slice(imgs, func(i, j int) bool { return imgs[i].Created.Before(imgs[j].Created) })
		if g.output == "json" {
			printJSON(stdout, viewImages(imgs))
			return 0
		}
		printImages(stdout, imgs)
	case "show":
		im, err := p.Image(ctx, pos[1])
		if err != nil {
			return fail(stderr, "images", err)
		}
		var prov any
		if im.Path != "" {
			if b, err := os.ReadFile(strings.TrimSuffix(im.Path, ".qcow2") + ".provenance.json"); err == nil {
				json.Unmarshal(b, &prov)
			}
		}
		if g.output == "json" {
			printJSON(stdout, map[string]any{"image": viewImage(im), "provenance": prov})
			return 0
		}
		printImage(stdout, im)
		if m, ok := prov.(map[string]any); ok {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(stdout, "%s\t%s\n", shown(k), shown(fmt.Sprint(m[k])))
			}
		}
	case "rm":
		im, err := p.Image(ctx, pos[1])
		if err != nil {
			return fail(stderr, "images", err)
		}
		if err := p.DeregisterImage(ctx, im.ID); err != nil {
			return fail(stderr, "images", err)
		}
		if im.SnapshotID != "" {
			if err := p.DeleteSnapshot(ctx, im.SnapshotID); err != nil && !cloud.IsNotFound(err) {
				return fail(stderr, "images", fmt.Errorf("image %s removed, its snapshot %s not: %w", im.ID, im.SnapshotID, err))
			}
		}
		fmt.Fprintf(stderr, "removed image %s (%s)\n", im.ID, im.Name)
	}
	return 0
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[BUILD-ID]", stderr)
	var g global
	g.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) > 1 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(stderr, "kscloud status: %v\n", err)
		return 2
	}
	store := install.ReadStore(g.stateDir)
	var builds []*install.Build
	if len(pos) == 1 {
		b, err := store.Load(pos[0])
		if err != nil {
			return fail(stderr, "status", err)
		}
		builds = []*install.Build{b}
	} else if builds, err = store.List(); err != nil {
		return fail(stderr, "status", err)
	}
	if g.output == "json" {
		printJSON(stdout, viewBuilds(builds))
		return 0
	}
	if len(pos) == 1 {
		b := builds[0]
		fmt.Fprintf(stdout, "build\t%s\nkind\t%s\nprovider\t%s\nstatus\t%s\ncreated\t%s\n", b.ID, b.Kind, b.Provider, b.Status, b.Created.Format(time.RFC3339))
		if b.Cloud != nil {
			fmt.Fprintf(stdout, "cloud\t%s\n", b.Cloud.Where())
		}
		if b.Error != "" {
			fmt.Fprintf(stdout, "error\t%s\n", shown(b.Error))
		}
		steps := make([]string, 0, len(b.Steps))
		for k, v := range b.Steps {
			steps = append(steps, k+"="+v)
		}
		sort.Strings(steps)
		fmt.Fprintf(stdout, "steps\t%s\n", strings.Join(steps, " "))
		fmt.Fprintf(stdout, "resources\t%s\n", b.ResourceSummary())
		if b.Result != nil {
			printResult(stdout, "text", b)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILD\tKIND\tPROVIDER\tSTATUS\tCREATED\tRESOURCES")
	for _, b := range builds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Kind, b.Provider, b.Status, b.Created.Format(time.RFC3339), b.ResourceSummary())
	}
	tw.Flush()
	return 0
}

func cmdCleanup(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cleanup", "BUILD-ID | --orphans", stderr)
	var g global
	g.register(fs)
	orphans := fs.Bool("orphans", false, "also remove the temporaries tagged by kscloud (installer instances, target volumes, snapshots no image uses) that no state file owns; never instances, disks or images made for you")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if (len(pos) == 0) == !*orphans || len(pos) > 1 {
		fs.Usage()
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(stderr, "kscloud cleanup: %v\n", err)
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	store := install.ReadStore(g.stateDir)
	var b *install.Build
	if len(pos) == 1 {
		if b, err = store.Load(pos[0]); err != nil {
			return fail(stderr, "cleanup", err)
		}
		g.useRecorded(fs, b)
	}
	p, closeP, err := g.openProvider(ctx, stderr)
	if err != nil {
		return fail(stderr, "cleanup", err)
	}
	defer closeP()
	if b != nil {
		if err := sameCloud(b, g.cloudRef(p)); err != nil {
			return fail(stderr, "cleanup", err)
		}
	}
	eng := &install.Engine{Provider: p, Store: store, Log: g.logger(stderr), Progress: func(l string) { fmt.Fprintln(stderr, l) }}
	if b != nil {
		if b.Status == install.StatusRunning {
			fmt.Fprintf(stderr, "kscloud cleanup: note: build %s is recorded as running; if it still runs, its own cleanup races this one\n", b.ID)
		}
		if err := eng.Sweep(ctx, b); err != nil {
			return fail(stderr, "cleanup", err)
		}
	}
	if *orphans {
		n, err := sweepOrphans(ctx, p, store, stderr)
		if err != nil {
			return fail(stderr, "cleanup", err)
		}
		fmt.Fprintf(stderr, "removed %d orphaned resource(s)\n", n)
	}
	return 0
}

// orphanRoles are the roles a sweep may remove: a build's temporaries.
// What a build produced for its user (a run's instance and disk, images)
// is never swept, even when no state file here owns it: another host's
// state, or a copied image's snapshot, may.
var orphanRoles = map[string]bool{"installer": true, "target": true, "snapshot": true}

// sweepOrphans removes the temporaries (orphanRoles) tagged
// kscloud:creator=kscloud that no build state file here owns; a snapshot
// an image uses stays.
func sweepOrphans(ctx context.Context, p cloud.Provider, store *install.Store, stderr io.Writer) (int, error) {
	res, err := p.FindTagged(ctx, cloud.TagCreator, "kscloud")
	if err != nil {
		return 0, err
	}
	builds, err := store.List()
	if err != nil {
		return 0, err
	}
	owned := map[string]bool{}
	for _, b := range builds {
		for _, r := range b.Resources {
			if !r.Deleted {
				owned[r.ID] = true
			}
		}
	}
	order := map[string]int{"instance": 0, "volume": 1, "snapshot": 2, "image": 3}
	sort.Slice(res, func(i, j int) bool { return order[res[i].Kind] < order[res[j].Kind] })
	n := 0
	var errs []error
	for _, r := range res {
		if owned[r.ID] || r.Kind == "image" || !orphanRoles[r.Tags[cloud.TagRole]] {
			continue
		}
		if r.Kind == "snapshot" && imageUses(ctx, p, r.ID) {
			continue
		}
		if err := install.DeleteResource(ctx, p, install.Resource{Kind: r.Kind, ID: r.ID}); err != nil && !cloud.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.Kind, r.ID, err))
			continue
		}
		fmt.Fprintf(stderr, "removed orphan %s %s (build %s)\n", r.Kind, r.ID, r.Tags[cloud.TagBuild])
		n++
	}
	return n, errors.Join(errs...)
}

func imageUses(ctx context.Context, p cloud.Provider, snap string) bool {
	imgs, err := p.Images(ctx, nil)
	if err != nil {
		return true
	}
	for _, im := range imgs {
		if im.SnapshotID == snap {
			return true
		}
	}
	return false
}

func cmdVNC(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("vnc", "INSTANCE|BUILD-ID", stderr)
	var g global
	g.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 1 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(stderr, "kscloud vnc: %v\n", err)
		return 2
	}
	id := pos[0]
	var build *install.Build
	if b, err := install.ReadStore(g.stateDir).Load(id); err == nil {
		build = b
		g.useRecorded(fs, b)
		for _, role := range []string{"installer", "instance"} {
			if r, ok := b.Resource(role); ok {
				id = r.ID
			}
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	p, closeP, err := g.openProvider(ctx, stderr)
	if err != nil {
		return fail(stderr, "vnc", err)
	}
	defer closeP()
	if build != nil {
		if err := sameCloud(build, g.cloudRef(p)); err != nil {
			return fail(stderr, "vnc", err)
		}
	}
	vp, ok := p.(cloud.VNCConsoles)
	if !ok {
		return fail(stderr, "vnc", fmt.Errorf("provider %s cannot tell where a VNC console is", p.Name()))
	}
	v, err := vp.VNCConsole(ctx, id)
	if err != nil {
		return fail(stderr, "vnc", err)
	}
	if g.output == "json" {
		printJSON(stdout, viewVNC(v))
		return 0
	}
	// The note is read from a console the guest also writes to.
	fmt.Fprintf(stdout, "%s\npassword\t%s\n", safetext.Line(v.URL()), safetext.Line(v.Password))
	if v.Node != "" {
		fmt.Fprintf(stdout, "node\t%s\n", safetext.Line(v.Node))
		if v.Loopback() {
			// The console listens on the node's loopback only.
			fmt.Fprintf(stdout, "tunnel\tssh -N -L %d:%s %s   (then vnc://127.0.0.1:%d)\n", v.Port, safetext.Line(v.Addr()), safetext.Line(v.Node), v.Port)
		}
	}
	return 0
}

func cmdUserdata(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("userdata", "--bootparams ARGS [--mode bake|in-place] [--installer NAME] [--vnc] [--ks FILE] [--cloud-config FILE]", stderr)
	bp := fs.String("bootparams", "", "installer kernel `args` (e.g. inst.ks=http://…/ks.cfg ip=dhcp)")
	mode := fs.String("mode", "bake", "bake or in-place")
	inst := fs.String("installer", "", "installer `name` from the node operator's catalog")
	vnc := fs.Bool("vnc", false, "ask for a VNC console during the install")
	ks := fs.String("ks", "", "inline kickstart `file` (a text/x-kickstart part; nchookd injects it as /ks.cfg)")
	cc := fs.String("cloud-config", "", "cloud-config `file` passed through to cloud-init")
	compress := fs.String("compress", "auto", "auto, always or never")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) > 0 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	in := userdata.RenderInput{BootParams: *bp, Mode: userdata.Mode(*mode), Installer: *inst, VNC: *vnc, Compress: *compress}
	if *ks != "" {
		b, err := os.ReadFile(*ks)
		if err != nil {
			return fail(stderr, "userdata", err)
		}
		in.Kickstart = b
		if !strings.Contains(in.BootParams, "ks=") {
			in.BootParams = strings.TrimSpace(in.BootParams + " inst.ks=file:/ks.cfg")
		}
	}
	if *cc != "" {
		b, err := os.ReadFile(*cc)
		if err != nil {
			return fail(stderr, "userdata", err)
		}
		in.CloudConfig = b
	}
	out, err := userdata.Render(in)
	if err != nil {
		fmt.Fprintf(stderr, "kscloud userdata: %v\n", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

// printImages is images list's table. Names, states and tags are the
// cloud's (an OpenNebula image's NAME is any user's text): shown as
// viewImage makes them safe to print, as the JSON output is.
func printImages(w io.Writer, imgs []cloud.Image) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tCREATED\tBUILD")
	for _, im := range imgs {
		v := viewImage(im)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.State, im.Created.Format(time.RFC3339), v.Build)
	}
	tw.Flush()
}

// printImage is images show's lines (safe to print: viewImage).
func printImage(w io.Writer, im cloud.Image) {
	v := viewImage(im)
	fmt.Fprintf(w, "id\t%s\nname\t%s\nstate\t%s\ncreated\t%s\n", v.ID, v.Name, v.State, im.Created.Format(time.RFC3339))
	if v.Path != "" {
		fmt.Fprintf(w, "path\t%s\n", shown(v.Path))
	}
	if v.SnapshotID != "" {
		fmt.Fprintf(w, "snapshot\t%s\n", v.SnapshotID)
	}
	fmt.Fprintf(w, "description\t%s\n", v.Description)
}

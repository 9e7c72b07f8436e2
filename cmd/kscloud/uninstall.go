package main

import (
	"fmt"
	"io"
	"path/filepath"

	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
)

// cmdUninstallHost removes what kscloud set up on a libvirt host: its
// storage pools and its empty directories, the state directory's included. Images and volumes on disk
// stay (kscloud images rm; or remove the directories it names).
func cmdUninstallHost(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("uninstall-host", "[--connect URI] [--state-dir DIR]", stderr)
	var g global
	g.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "kscloud uninstall-host: unexpected argument %q\n", pos[0])
		return 2
	}
	if err := g.check(); err != nil {
		fmt.Fprintf(stderr, "kscloud uninstall-host: %v\n", err)
		return 2
	}
	if g.provider != "libvirt" {
		fmt.Fprintf(stderr, "kscloud uninstall-host: --provider %s: only libvirt hosts have anything set up by kscloud\n", g.provider)
		return 2
	}
	ctx, cancel := signalContext()
	defer cancel()
	p, err := cloudlibvirt.Open(ctx, cloudlibvirt.Options{URI: g.connect, StateDir: g.stateDir, Log: g.logger(stderr)})
	if err != nil {
		return fail(stderr, "uninstall-host", err)
	}
	defer p.Close()
	hs, err := p.UninstallHost(ctx)
	if err != nil {
		return fail(stderr, "uninstall-host", err)
	}
	removeStateDirs(g.stateDir, &hs)
	if g.output == "json" {
		printJSON(stdout, hostView{RemovedPools: nonNil(hs.RemovedPools), RemovedDirs: nonNil(hs.RemovedDirs), Kept: nonNil(hs.Kept)})
		return 0
	}
	for _, n := range hs.RemovedPools {
		fmt.Fprintf(stdout, "removed pool\t%s\n", n)
	}
	for _, d := range hs.RemovedDirs {
		fmt.Fprintf(stdout, "removed directory\t%s\n", d)
	}
	for _, d := range hs.Kept {
		fmt.Fprintf(stdout, "kept (not empty)\t%s\n", d)
	}
	if len(hs.RemovedPools)+len(hs.RemovedDirs)+len(hs.Kept) == 0 {
		fmt.Fprintln(stdout, "nothing of kscloud's on this host")
	}
	return 0
}

// removeStateDirs removes, when empty, what kscloud's own commands made in
// the state directory (builds by run and bake, cache by a download; the
// provider has removed its own) and then the state directory itself: with
// nothing of kscloud's left on the host, no empty directory is either. One
// that holds files (a build's state, the summary, a cached installer) stays
// and is named.
func removeStateDirs(stateDir string, hs *cloudlibvirt.HostSetup) {
	hs.RemoveEmptyDirs(filepath.Join(stateDir, "builds"), filepath.Join(stateDir, "cache"), stateDir)
}

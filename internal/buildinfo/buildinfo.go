// Package buildinfo says which build a binary is: the version the
// Makefile links in (-X main.version=…), else what the Go toolchain
// recorded (the module version, or the VCS revision of a plain go build).
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Info is what "kscloud version --output json" and "nchookd version
// --output json" print.
type Info struct {
	Program  string `json:"program"`
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"` // VCS revision the toolchain recorded
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
}

// Version returns linked unless it is empty or "dev" (no -ldflags), then
// the module version the toolchain recorded, else "dev+REVISION" (with
// "-dirty" for a modified tree), else "dev".
func Version(linked string) string {
	if linked != "" && linked != "dev" {
		return linked
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, mod := vcs(bi)
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if mod {
		rev += "-dirty"
	}
	return "dev+" + rev
}

// Get returns the Info of a program whose version is version (as Version
// returned it).
func Get(program, version string) Info {
	in := Info{Program: program, Version: version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		in.Revision, in.Modified = vcs(bi)
	}
	return in
}

func vcs(bi *debug.BuildInfo) (rev string, modified bool) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, modified
}

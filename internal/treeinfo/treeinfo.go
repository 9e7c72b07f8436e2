// Package treeinfo reads an install tree's .treeinfo (an INI file, as
// virt-install reads it): where the installer kernel and initrd of an
// architecture are, and their checksums. Install trees (internal/install)
// and ISO images (internal/isomedia) share it.
package treeinfo

import (
	"fmt"
	"strings"
)

// Info is what a .treeinfo says about its installer.
type Info struct {
	Kernel, Initrd             string // paths relative to the tree
	KernelSHA256, InitrdSHA256 string
	Family, Version            string
}

// Parse reads a .treeinfo's content for arch (location names the tree or
// medium in errors).
func Parse(b []byte, location, arch string) (*Info, error) {
	ini := parseINI(string(b))
	ti := &Info{}
	for _, sec := range []string{"images-" + arch, "images-xen"} {
		if s, ok := ini[sec]; ok && s["kernel"] != "" {
			ti.Kernel, ti.Initrd = s["kernel"], s["initrd"]
			break
		}
	}
	if ti.Kernel == "" || ti.Initrd == "" {
		return nil, fmt.Errorf("install tree %s: .treeinfo has no kernel/initrd for %s", location, arch)
	}
	if cs, ok := ini["checksums"]; ok {
		ti.KernelSHA256 = strings.TrimPrefix(cs[ti.Kernel], "sha256:")
		ti.InitrdSHA256 = strings.TrimPrefix(cs[ti.Initrd], "sha256:")
	}
	for _, sec := range []string{"release", "general"} {
		if s, ok := ini[sec]; ok {
			if ti.Family == "" {
				ti.Family = s["name"]
				if ti.Family == "" {
					ti.Family = s["family"]
				}
			}
			if ti.Version == "" {
				ti.Version = s["version"]
			}
		}
	}
	return ti, nil
}

// Arch is the .treeinfo section name of an --arch value (arm64 is
// aarch64 there; none is x86_64).
func Arch(arch string) string {
	if arch == "arm64" {
		return "aarch64"
	}
	if arch == "" || arch == "amd64" {
		return "x86_64"
	}
	return arch
}

func parseINI(s string) map[string]map[string]string {
	out := map[string]map[string]string{}
	cur := ""
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && strings.HasSuffix(line, "]") {
			cur = strings.TrimSpace(line[1 : len(line)-1])
			if out[cur] == nil {
				out[cur] = map[string]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || cur == "" {
			continue
		}
		out[cur][strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

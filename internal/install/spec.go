package install

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Spec is what the user asked for.
type Spec struct {
	Name string `json:"name"` // image name (bake) or instance name (run)
	// Kickstart source as given (URL or file) and its bytes' digest.
	Kickstart       string `json:"kickstart,omitempty"`
	KickstartSHA256 string `json:"kickstart_sha256,omitempty"`
	// How the kickstart reaches the installer: "inject" (into a copy of
	// the initrd, local), "inline" (MIME part in user-data, nchookd
	// injects), "http" (kscloud serves it), "url" (the installer fetches
	// Kickstart itself).
	Delivery string `json:"delivery,omitempty"`
	// Installer: local kernel/initrd paths, or cloud ids (eki-/eri-), or an
	// install tree (Location), or an image to boot (ImageID), or an
	// operator catalog name (Catalog).
	Kernel   string `json:"kernel,omitempty"`
	Initrd   string `json:"initrd,omitempty"`
	Location string `json:"location,omitempty"`
	ImageID  string `json:"image_id,omitempty"`
	Catalog  string `json:"catalog,omitempty"`
	// ExtraArgs are appended to the installer's command line.
	ExtraArgs string `json:"extra_args,omitempty"`
	DiskGiB   int    `json:"disk_gib"`
	MemoryMB  int    `json:"memory_mb,omitempty"`
	CPUs      int    `json:"cpus,omitempty"`
	Type      string `json:"instance_type,omitempty"`
	Zone      string `json:"zone,omitempty"`
	KeyName   string `json:"key_name,omitempty"`
	VNC       bool   `json:"vnc,omitempty"`
	// NodeHook: the cloud's hosts run nchookd and the kickstart relies on
	// it (kscloud --nchookd, OpenNebula); a resumed build keeps it.
	NodeHook bool `json:"node_hook,omitempty"`
	// Timeout bounds the whole install; Inactivity is the watchdog.
	Timeout    Duration `json:"timeout"`
	Inactivity Duration `json:"inactivity"`
	// Architecture and virtualization of the registered image (clouds).
	Architecture   string `json:"architecture,omitempty"`
	Virtualization string `json:"virtualization,omitempty"`
	RootDevice     string `json:"root_device,omitempty"`
	// ImageKernel and ImageRamdisk boot a paravirtual registered image
	// (never the installer's: that would boot the installer again).
	ImageKernel  string `json:"image_kernel_id,omitempty"`
	ImageRamdisk string `json:"image_ramdisk_id,omitempty"`
	// Machine is the local machine asked for (libvirt).
	Machine *Machine `json:"machine,omitempty"`
}

// Machine is a libvirt launch's machine: accelerator (auto, kvm, tcg),
// firmware (bios, uefi), CPU mode and network.
type Machine struct {
	Accel   string `json:"accel,omitempty"`
	Boot    string `json:"boot,omitempty"`
	CPU     string `json:"cpu,omitempty"`
	Network string `json:"network,omitempty"`
}

// Duration marshals as a Go duration string.
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// Provenance is stored beside every baked image.
type Provenance struct {
	KickstartSource string    `json:"kickstart_source"`
	KickstartSHA256 string    `json:"kickstart_sha256"`
	GitRevision     string    `json:"git_revision,omitempty"`
	GitDirty        bool      `json:"git_dirty,omitempty"`
	KernelSHA256    string    `json:"installer_kernel_sha256,omitempty"`
	InitrdSHA256    string    `json:"installer_initrd_sha256,omitempty"`
	Installer       string    `json:"installer,omitempty"`
	Date            time.Time `json:"date"`
	KscloudVersion  string    `json:"kscloud_version"`
	Build           string    `json:"build"`
	ImageSHA256     string    `json:"image_sha256,omitempty"` // the image file itself (local images)
	Firmware        string    `json:"firmware,omitempty"`     // bios | uefi (local images: how it boots)
	Arch            string    `json:"arch,omitempty"`         // local images: x86_64 | aarch64
}

// NewProvenance starts the provenance of an image whose kickstart came
// from source (a path or a URL). The provenance is shared with the image
// (NAME.provenance.json is world-readable beside it; on EC2 it is the
// image's description): a URL's credentials and query values are
// redacted (RedactURL).
func NewProvenance(source string) *Provenance {
	return &Provenance{KickstartSource: RedactURL(source)}
}

// MaxDescription is the longest image or snapshot description EC2 takes.
const MaxDescription = 255

// Describe renders provenance as one line of at most MaxDescription bytes
// (image descriptions have little room): a long kickstart source is
// shortened from its start, the rest is always there.
func (p *Provenance) Describe() string {
	var b strings.Builder
	b.WriteString("kscloud " + p.KscloudVersion + " ks sha256:" + p.KickstartSHA256)
	if src := RedactURL(p.KickstartSource); src != "" {
		rest := len(" git:") + len(p.GitRevision) + len("+dirty") + len(" build:") + len(p.Build)
		room := MaxDescription - b.Len() - len(" src:") - rest
		if len(src) > room {
			if room < 8 {
				src = ""
			} else {
				cut := len(src) - (room - 3)
				for cut < len(src) && !utf8.RuneStart(src[cut]) {
					cut++ // never split a character
				}
				src = "..." + src[cut:]
			}
		}
		if src != "" {
			b.WriteString(" src:" + src)
		}
	}
	if p.GitRevision != "" {
		b.WriteString(" git:" + p.GitRevision)
		if p.GitDirty {
			b.WriteString("+dirty")
		}
	}
	b.WriteString(" build:" + p.Build)
	return b.String()
}

// SHA256File returns the hex sha256 of a file.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SHA256 returns the hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// GitRevision returns the commit of the git work tree holding path, and
// whether that file has uncommitted changes; "" when not in a work tree.
func GitRevision(path string) (rev string, dirty bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false
	}
	dir := filepath.Dir(abs)
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	rev = strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--", abs).Output()
	return rev, err == nil && len(strings.TrimSpace(string(st))) > 0
}

package preboot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/libvirtxml"
)

// InstalledMarker names the file nchookd leaves in an OpenNebula VM
// directory once the VM's install has finished (in place: the installed
// system booted from its disk; bake: the installer powered off). The VM
// directory lives as long as the VM and moves with it (poweroff keeps it,
// undeploy and migration carry it), so a later deploy of the VM, read by
// the daemon or by the hook alone when the daemon is down, boots its disk
// and never the installer again. The daemon's store keeps the same fact.
const InstalledMarker = "kscloud-installed.json"

// Installed is the content of the marker.
type Installed struct {
	Instance   string    `json:"instance"`
	Mode       string    `json:"mode"`
	FinishedAt time.Time `json:"finished_at"`
	Reason     string    `json:"reason,omitempty"`
}

// WriteInstalled leaves the marker in the VM directory dir (atomically,
// owned like the directory, never following a symlink).
func WriteInstalled(cfg *config.Config, dir string, m Installed) error {
	if m.Instance == "" || (m.Mode != libvirtxml.ModeBake && m.Mode != libvirtxml.ModeInPlace) {
		return fmt.Errorf("install marker: instance %q mode %q: incomplete", m.Instance, m.Mode)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return ReplaceInstanceFile(cfg, dir, filepath.Join(dir, InstalledMarker), append(b, '\n'), false)
}

// ReadInstalled reads the marker of the VM directory dir as the daemon
// does (dir below hook.instances_root, no symlink followed): ok is false
// when there is none. A marker that is not one (not JSON, another
// instance's, an unknown mode: the directory's owner may write anything
// there) is an error naming the file, never a finished install.
func ReadInstalled(cfg *config.Config, dir, instance string) (m Installed, ok bool, err error) {
	path := filepath.Join(dir, InstalledMarker)
	b, err := ReadInstanceFile(cfg, dir, path, maxInstalled)
	if errors.Is(err, fs.ErrNotExist) {
		return Installed{}, false, nil
	}
	if err != nil {
		return Installed{}, false, err
	}
	m, err = ParseInstalled(b, instance)
	if err != nil {
		return Installed{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return m, true, nil
}

// ReadInstalledFile reads the marker of the VM directory dir as the deploy
// wrapper does, as the directory's owner (OpenNebula's user): a regular
// file, no symlink followed, at most a few KiB.
func ReadInstalledFile(dir, instance string) (m Installed, ok bool, err error) {
	path := filepath.Join(dir, InstalledMarker)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Installed{}, false, nil
	}
	if err != nil {
		return Installed{}, false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return Installed{}, false, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxInstalled+1))
	if err != nil {
		return Installed{}, false, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxInstalled {
		return Installed{}, false, fmt.Errorf("%s: over %d bytes", path, maxInstalled)
	}
	m, err = ParseInstalled(b, instance)
	if err != nil {
		return Installed{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return m, true, nil
}

const maxInstalled = 4 << 10

// ParseInstalled checks that b is the marker of instance.
func ParseInstalled(b []byte, instance string) (Installed, error) {
	var m Installed
	if err := json.Unmarshal(b, &m); err != nil {
		return Installed{}, fmt.Errorf("not an install marker: %v", err)
	}
	if m.Instance != instance || (m.Mode != libvirtxml.ModeBake && m.Mode != libvirtxml.ModeInPlace) {
		return Installed{}, fmt.Errorf("marker of instance %q mode %q, not of %s", m.Instance, m.Mode, instance)
	}
	return m, nil
}

// InstalledPlan is the deploy of a VM whose install finished (mode): its
// domain boots from disk (libvirtxml.InstalledDomain), whatever its
// user-data or OS/KERNEL_DS say. A VM directory outside the instances
// roots is refused, as DecideOne refuses it.
func InstalledPlan(cfg *config.Config, domainXML []byte, vmDir, instance, mode string) (*Plan, error) {
	if !belowRoot(cfg, filepath.Clean(vmDir)) {
		return nil, fmt.Errorf("VM %s: VM directory %s: %w (%s)", instance, vmDir, ErrOutsideRoot, strings.Join(cfg.Hook.InstancesRoot, ", "))
	}
	// OpenNebula 6.0+ writes a second <devices> (the guest agent's
	// channel); the rewrites want one.
	merged, err := libvirtxml.MergeDevices(domainXML)
	if err != nil {
		return nil, fmt.Errorf("VM %s: install finished, boot from disk: %w", instance, err)
	}
	out, err := libvirtxml.InstalledDomain(merged, mode)
	if err != nil {
		return nil, fmt.Errorf("VM %s: install finished, boot from disk: %w", instance, err)
	}
	p := &Plan{Outcome: Outcome{Instance: instance, Dir: vmDir, Mode: mode, Changed: true,
		Notes: []string{"install finished (" + mode + "): boots from disk, not the installer"}}}
	p.DomainXML = out
	return p, nil
}

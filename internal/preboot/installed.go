package preboot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
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

// ReadInstalled reads the marker of the VM directory dir: ok is false
// when there is none. A marker that is not one (not JSON, another
// instance's, an unknown mode: the directory's owner may write anything
// there) is an error naming the file, never a finished install.
func ReadInstalled(cfg *config.Config, dir, instance string) (m Installed, ok bool, err error) {
	path := filepath.Join(dir, InstalledMarker)
	b, err := ReadInstanceFile(cfg, dir, path, 4<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return Installed{}, false, nil
	}
	if err != nil {
		return Installed{}, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Installed{}, false, fmt.Errorf("%s: not an install marker: %v", path, err)
	}
	if m.Instance != instance || (m.Mode != libvirtxml.ModeBake && m.Mode != libvirtxml.ModeInPlace) {
		return Installed{}, false, fmt.Errorf("%s: marker of instance %q mode %q, not of %s", path, m.Instance, m.Mode, instance)
	}
	return m, true, nil
}

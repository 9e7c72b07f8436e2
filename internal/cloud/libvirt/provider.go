// Package libvirt is kscloud's local provider: the cloud.Provider
// interface on one libvirt host. Volumes are sparse raw files in a libvirt
// directory pool, instances are domains (an installer is a transient
// start; install in place is virt-install's pattern: a persistent
// disk-boot definition whose first start is the installer), snapshots are
// sparse qcow2 conversions into an image pool, images are named snapshots
// with their provenance beside them. What libvirt does not hold (tags,
// names, attachments) is kept in a registry of JSON files.
package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/progress"
	"github.com/kscloud/kscloud/internal/virt"
)

// Options configure the provider.
type Options struct {
	URI        string // default qemu:///system
	StateDir   string // registry and consoles live under StateDir/local
	VolumeDir  string // default StateDir/volumes (pool VolumePool)
	ImageDir   string // default StateDir/images (pool ImagePool)
	VolumePool string // default kscloud-volumes
	ImagePool  string // default kscloud-images
	Network    string // "user" (default), "bridge=BR" or a libvirt network name
	Machine    Machine
	MemoryMB   int    // default 768
	CPUs       int    // default 1
	VNCListen  string // default 127.0.0.1
	Log        *slog.Logger
}

// DefaultStateDir is root's state directory; its pools have plain names.
const DefaultStateDir = "/var/lib/kscloud"

// Pools returns the names of the volume and image pools.
func (p *Provider) Pools() (volumes, images string) { return p.opt.VolumePool, p.opt.ImagePool }

// Provider is the local libvirt provider.
type Provider struct {
	opt Options
	c   *virt.Conn
	reg *registry
	log *slog.Logger

	mu      sync.Mutex
	subs    map[chan virt.Event]struct{}
	jobs    map[string]bool // snapshot conversions running in this process
	stopped map[string]time.Time
	done    chan struct{}
	machine *Resolved // ResolveMachine's answer
	media   string    // SetInstallMedia

	storageMu sync.Mutex
	storageOK bool // directories and pools exist (storage)
}

// Open connects to libvirt and prepares the pools.
func Open(ctx context.Context, opt Options) (*Provider, error) {
	if opt.URI == "" {
		opt.URI = "qemu:///system"
	}
	if opt.StateDir == "" {
		return nil, errors.New("libvirt provider: no state directory")
	}
	if opt.VolumeDir == "" {
		opt.VolumeDir = filepath.Join(opt.StateDir, "volumes")
	}
	if opt.ImageDir == "" {
		opt.ImageDir = filepath.Join(opt.StateDir, "images")
	}
	// Pool names are global to the libvirt host: a state directory other
	// than the default gets pools of its own.
	suffix := ""
	if opt.StateDir != DefaultStateDir {
		sum := sha256.Sum256([]byte(filepath.Clean(opt.StateDir)))
		suffix = "-" + hex.EncodeToString(sum[:4])
	}
	if opt.VolumePool == "" {
		opt.VolumePool = "kscloud-volumes" + suffix
	}
	if opt.ImagePool == "" {
		opt.ImagePool = "kscloud-images" + suffix
	}
	if opt.Network == "" {
		opt.Network = "user"
	}
	if opt.MemoryMB == 0 {
		opt.MemoryMB = 768
	}
	if opt.CPUs == 0 {
		opt.CPUs = 1
	}
	if opt.VNCListen == "" {
		opt.VNCListen = "127.0.0.1"
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	regDir := filepath.Join(opt.StateDir, "local")
	c, err := virt.Open(ctx, opt.URI, log)
	if err != nil {
		return nil, err
	}
	p := &Provider{opt: opt, c: c, reg: &registry{dir: regDir}, log: log,
		subs: map[chan virt.Event]struct{}{}, jobs: map[string]bool{}, stopped: map[string]time.Time{}, done: make(chan struct{})}
	go p.events()
	return p, nil
}

// storage creates, on first need, the directories and the two pools the
// provider writes to; opening the provider creates nothing (kscloud
// images list on a fresh host leaves no trace). UninstallHost removes them.
func (p *Provider) storage(ctx context.Context) error {
	p.storageMu.Lock()
	defer p.storageMu.Unlock()
	if p.storageOK {
		return nil
	}
	for _, d := range []string{filepath.Join(p.reg.dir, "console"), p.opt.VolumeDir, p.opt.ImageDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("libvirt provider: %w", err)
		}
	}
	if err := p.c.EnsurePool(ctx, p.opt.VolumePool, p.opt.VolumeDir); err != nil {
		return err
	}
	if err := p.c.EnsurePool(ctx, p.opt.ImagePool, p.opt.ImageDir); err != nil {
		return err
	}
	p.storageOK = true
	return nil
}

// HostSetup is what UninstallHost found and did.
type HostSetup struct {
	RemovedPools []string // pools undefined (their directories' files stay)
	RemovedDirs  []string // empty directories removed
	Kept         []string // directories kept because files are left in them
}

// RemoveEmptyDirs removes each of dirs, in order, that is an empty
// directory (noted in RemovedDirs); one that holds files, or is not a
// directory (a symbolic link to one elsewhere: os.Remove would unlink it
// whatever its target holds), is noted in Kept; one that does not exist is
// skipped.
func (hs *HostSetup) RemoveEmptyDirs(dirs ...string) {
	for _, d := range dirs {
		switch err := syscall.Rmdir(d); {
		case err == nil:
			hs.RemovedDirs = append(hs.RemovedDirs, d)
		case errors.Is(err, os.ErrNotExist):
		default:
			hs.Kept = append(hs.Kept, d)
		}
	}
}

// UninstallHost removes what the provider set up on this host: its two
// storage pools (stopped and undefined; volumes and images on disk stay)
// and its directories that are empty. It refuses while instances it
// recorded still exist.
func (p *Provider) UninstallHost(ctx context.Context) (HostSetup, error) {
	var hs HostSetup
	insts, err := p.reg.list("instance")
	if err != nil {
		return hs, err
	}
	for _, r := range insts {
		if !r.Terminated {
			if _, err := p.c.Info(ctx, r.ID); err == nil {
				return hs, fmt.Errorf("instance %s still exists: terminate it first (kscloud cleanup)", r.ID)
			}
		}
	}
	for _, name := range []string{p.opt.VolumePool, p.opt.ImagePool} {
		removed, err := p.c.RemovePool(ctx, name)
		if err != nil {
			return hs, err
		}
		if removed {
			hs.RemovedPools = append(hs.RemovedPools, name)
		}
	}
	p.storageMu.Lock()
	p.storageOK = false
	p.storageMu.Unlock()
	hs.RemoveEmptyDirs(filepath.Join(p.reg.dir, "console"), p.opt.VolumeDir, p.opt.ImageDir, p.reg.dir)
	return hs, nil
}

// Close stops following events and closes the connection.
func (p *Provider) Close() error {
	close(p.done)
	return p.c.Close()
}

// Name implements cloud.Provider.
func (p *Provider) Name() string { return "libvirt" }

// Capabilities implements cloud.Capable: existing volumes can be attached
// at launch (they are disks of the domain from its first boot).
func (p *Provider) Capabilities() cloud.Capabilities {
	return cloud.Capabilities{AttachExistingAtLaunch: true}
}

// Conn exposes the libvirt connection (for status and VNC lookups).
func (p *Provider) Conn() *virt.Conn { return p.c }

// events fans libvirt events out to waiters and switches install-in-place
// domains to their disk when the installer ends (what nchookd does on a
// node; harmless when nchookd already did it).
func (p *Provider) events() {
	for {
		select {
		case <-p.done:
			return
		case ev := <-p.c.Events():
			if ev.Kind == virt.Stopped {
				p.mu.Lock()
				p.stopped[ev.Domain] = ev.Time
				p.mu.Unlock()
				p.afterStop(ev)
			}
			p.mu.Lock()
			for ch := range p.subs {
				select {
				case ch <- ev:
				default:
				}
			}
			p.mu.Unlock()
		}
	}
}

func (p *Provider) afterStop(ev virt.Event) {
	rec, err := p.reg.get("instance", ev.Domain)
	if err != nil || !rec.InPlace || rec.Terminated {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ev.Reason != "shutdown" {
		p.reg.update("instance", rec.ID, func(r *record) { r.StateReason = "installer stopped: " + ev.Reason })
		return
	}
	if f := consoleFailure(rec.Console); f != "" {
		p.reg.update("instance", rec.ID, func(r *record) { r.StateReason = "installer reported: " + f })
		return
	}
	info, err := p.c.Info(ctx, rec.ID)
	if err != nil || info.Active || !info.Persistent {
		return
	}
	// The installer's stop leaves the persistent definition (disk boot).
	if err := p.c.Start(ctx, rec.ID); err != nil {
		if info, ierr := p.c.Info(ctx, rec.ID); ierr == nil && info.Active {
			return // nchookd was faster
		}
		p.log.Error("install in place: boot installed disk", "instance", rec.ID, "err", err)
		p.reg.update("instance", rec.ID, func(r *record) { r.StateReason = "boot installed disk: " + err.Error() })
		return
	}
	p.log.Info("install in place: installed system booting from disk", "instance", rec.ID)
	p.reg.update("instance", rec.ID, func(r *record) { r.InPlace = false; r.VNC = "" })
}

// consoleFailure returns the failure line the installer's serial log
// holds, "" when none (or when it cannot be read).
func consoleFailure(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	con := progress.NewFollower(0, nil)
	io.Copy(con, io.LimitReader(f, 64<<20))
	return con.Failure()
}

func (p *Provider) subscribe() (chan virt.Event, func()) {
	ch := make(chan virt.Event, 64)
	p.mu.Lock()
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.subs, ch)
		p.mu.Unlock()
	}
}

// WaitInstanceState implements wait.InstanceEvents: it returns when
// the instance is in one of want, woken by libvirt events (no polling).
func (p *Provider) WaitInstanceState(ctx context.Context, id string, want ...string) (cloud.Instance, error) {
	ch, unsub := p.subscribe()
	defer unsub()
	for {
		inst, err := p.Instance(ctx, id)
		if err != nil {
			return inst, err
		}
		for _, w := range want {
			if inst.State == w {
				return inst, nil
			}
		}
		select {
		case <-ctx.Done():
			return inst, ctx.Err()
		case ev := <-ch:
			if ev.Domain != id && ev.Kind != virt.Reconnected {
				continue
			}
		}
	}
}

// --- instances ---

// RunInstance implements cloud.Instances. With KernelID/RamdiskID (local
// paths) the instance boots that installer with Cmdline; InPlace defines
// a persistent disk-boot domain whose first start is the installer.
// With ImageID it boots a copy-on-write clone of that image.
func (p *Provider) RunInstance(ctx context.Context, spec cloud.InstanceSpec) (cloud.Instance, error) {
	if err := p.storage(ctx); err != nil {
		return cloud.Instance{}, err
	}
	id := newID("i-")
	rec := &record{Kind: "instance", ID: id, Name: spec.Name, Tags: spec.Tags, Created: time.Now().UTC(),
		Console: filepath.Join(p.reg.dir, "console", id+".log")}
	machine, err := p.ResolveMachine(ctx)
	if err != nil {
		return cloud.Instance{}, err
	}
	ds := domainSpec{Name: id, UUID: newUUID(), Machine: machine, MemoryMB: orInt(spec.MemoryMB, p.opt.MemoryMB), CPUs: orInt(spec.CPUs, p.opt.CPUs),
		Console: rec.Console, Network: p.opt.Network, MAC: newMAC()}
	if spec.ImageID != "" {
		img, err := p.Image(ctx, spec.ImageID)
		if err != nil {
			return cloud.Instance{}, err
		}
		vol, err := p.c.CreateVolume(ctx, p.opt.VolumePool, id+"-root.qcow2", 0, "qcow2", img.Path, "qcow2")
		if err != nil {
			return cloud.Instance{}, err
		}
		rec.OwnedVolume, rec.Image = vol.Name, img.ID
		ds.Machine.Boot = imageFirmware(img.Path, ds.Machine)
		ds.Disks, ds.DiskFormat = append(ds.Disks, vol.Path), append(ds.DiskFormat, "qcow2")
	}
	// Volumes the launch creates (a size, a snapshot) go if it fails.
	var created []string
	launched := false
	defer func() {
		if launched {
			return
		}
		for _, vid := range created {
			p.DeleteVolume(context.WithoutCancel(ctx), vid)
		}
	}()
	var devices []string
	var deleteOnTerm []bool
	for _, a := range spec.Volumes {
		vid := a.VolumeID
		switch {
		case vid == "" || strings.HasPrefix(vid, "snap-"):
			nv, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: a.SizeGiB, SnapshotID: vid})
			if err != nil {
				return cloud.Instance{}, fmt.Errorf("instance %s: block-device mapping at %s: %w", id, a.Device, err)
			}
			created = append(created, nv.ID)
			vid = nv.ID
			deleteOnTerm = append(deleteOnTerm, a.DeleteOnTermination == nil || *a.DeleteOnTermination)
		case strings.HasPrefix(vid, "ephemeral") || vid == "none":
			return cloud.Instance{}, fmt.Errorf("instance %s: block-device mapping %q at %s: the local provider has no instance store", id, vid, a.Device)
		default:
			deleteOnTerm = append(deleteOnTerm, false)
		}
		v, err := p.reg.get("volume", vid)
		if err != nil {
			return cloud.Instance{}, err
		}
		if v.Instance != "" {
			if _, err := p.liveInstance(ctx, v.Instance); err == nil {
				return cloud.Instance{}, fmt.Errorf("volume %q: attached to %s: %w", v.ID, v.Instance, cloud.ErrIncorrectState)
			}
		}
		ds.Disks, ds.DiskFormat = append(ds.Disks, v.Path), append(ds.DiskFormat, "raw")
		rec.Volumes = append(rec.Volumes, v.ID)
		devices = append(devices, a.Device)
	}
	base, err := baseXML(ds)
	if err != nil {
		return cloud.Instance{}, err
	}
	if err := p.reg.put(rec); err != nil {
		return cloud.Instance{}, err
	}
	launched = true // the volumes are the instance's now: terminate handles them
	for i, vid := range rec.Volumes {
		target := "vd" + string(rune('a'+i+len(ds.Disks)-len(rec.Volumes)))
		dev := devices[i]
		if dev == "" {
			dev = target
		}
		del := deleteOnTerm[i]
		p.reg.update("volume", vid, func(r *record) {
			r.Instance, r.Device, r.Target, r.DeleteOnTermination = id, devicePath(dev), target, del
		})
	}
	switch {
	case spec.KernelID != "":
		mode := "bake"
		if spec.InPlace {
			mode = "in-place"
		}
		in := libvirtxml.Install{Kernel: spec.KernelID, Initrd: spec.RamdiskID, Cmdline: spec.Cmdline, Mode: mode, SerialLog: rec.Console}
		if spec.VNC {
			pw, err := libvirtxml.NewVNCPassword()
			if err != nil {
				return cloud.Instance{}, err
			}
			in.VNC = &libvirtxml.VNC{Listen: p.opt.VNCListen, Password: pw}
		}
		src := base
		if media := p.installMedia(); media != "" {
			// The installer (only) gets the install ISO as a CD-ROM.
			withCD := ds
			withCD.CDROM = media
			if src, err = baseXML(withCD); err != nil {
				return cloud.Instance{}, err
			}
		}
		inst, err := libvirtxml.RewriteInstall([]byte(src), in)
		if err != nil {
			return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, err)
		}
		if spec.InPlace {
			final, err := installedXML(base, in)
			if err != nil {
				return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, err)
			}
			if err := p.c.DefineXML(ctx, string(final)); err != nil {
				return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, err)
			}
			rec.InPlace, rec.Persistent = true, true
			p.reg.put(rec)
		}
		if err := p.c.CreateXML(ctx, string(inst)); err != nil {
			if spec.InPlace {
				p.c.Undefine(context.WithoutCancel(ctx), id)
			}
			p.reg.update("instance", id, func(r *record) { r.Terminated, r.StateReason = true, "launch failed: "+err.Error() })
			return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, err)
		}
	default:
		if len(ds.Disks) == 0 {
			return cloud.Instance{}, errors.New("instance: nothing to boot (no image, no installer, no volume)")
		}
		if err := p.c.DefineXML(ctx, base); err != nil {
			return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, err)
		}
		rec.Persistent = true
		p.reg.put(rec)
		if err := p.c.Start(ctx, id); err != nil {
			return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, err)
		}
	}
	inst, err := p.Instance(ctx, id)
	if err != nil {
		return cloud.Instance{}, err
	}
	if spec.VNC {
		if live, err := p.c.XML(ctx, id, true); err == nil {
			if v, ok, _ := libvirtxml.VNCGraphics([]byte(live)); ok {
				inst.VNC = v.URL() + " password " + v.Password
				p.reg.update("instance", id, func(r *record) { r.VNC = inst.VNC })
			}
		}
	}
	return inst, nil
}

func orInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func (p *Provider) liveInstance(ctx context.Context, id string) (virt.DomainInfo, error) {
	return p.c.Info(ctx, id)
}

// Instance implements cloud.Instances: running when the domain runs,
// stopped when only its persistent definition is left, terminated when it
// is gone (a transient installer that powered off) or was terminated.
func (p *Provider) Instance(ctx context.Context, id string) (cloud.Instance, error) {
	rec, err := p.reg.get("instance", id)
	if err != nil {
		return cloud.Instance{}, err
	}
	inst := cloud.Instance{ID: id, Tags: rec.Tags, Launched: rec.Created, StateReason: rec.StateReason, VNC: rec.VNC, ImageID: rec.Image}
	inst.Volumes, err = p.attachments(id)
	if err != nil {
		return cloud.Instance{}, err
	}
	if rec.Terminated {
		inst.State = cloud.InstanceTerminated
		return inst, nil
	}
	info, err := p.c.Info(ctx, id)
	switch {
	case virt.IsNotFound(err):
		inst.State = cloud.InstanceTerminated
		if inst.StateReason == "" {
			inst.StateReason = "Client.InstanceInitiatedShutdown: the guest powered off"
		}
	case err != nil:
		return cloud.Instance{}, err
	case info.Active:
		inst.State = cloud.InstanceRunning
	default:
		inst.State = cloud.InstanceStopped
	}
	if inst.State != cloud.InstanceRunning {
		inst.VNC = ""
	} else if p.opt.Network != "user" {
		// On a libvirt network or bridge the system has an address of its
		// own: the DHCP lease or the guest agent tells it.
		if addrs, err := p.c.Addresses(ctx, id); err == nil && len(addrs) > 0 {
			inst.PrivateIP = addrs[0]
		}
	}
	return inst, nil
}

// attachments lists the volumes attached to an instance (at launch or
// later), in the order of their devices.
func (p *Provider) attachments(id string) ([]cloud.Attachment, error) {
	vols, err := p.reg.list("volume")
	if err != nil {
		return nil, err
	}
	var out []cloud.Attachment
	for _, v := range vols {
		if v.Instance == id {
			out = append(out, cloud.Attachment{VolumeID: v.ID, Device: v.Device, DeleteOnTermination: cloud.Bool(v.DeleteOnTermination)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out, nil
}

// devicePath makes "sdf" into "/dev/sdf", as the EC2 API names devices.
func devicePath(d string) string {
	if d == "" || strings.HasPrefix(d, "/") {
		return d
	}
	return "/dev/" + d
}

// TerminateInstance implements cloud.Instances.
func (p *Provider) TerminateInstance(ctx context.Context, id string) error {
	rec, err := p.reg.get("instance", id)
	if err != nil {
		return err
	}
	if err := p.c.Destroy(ctx, id); err != nil && !virt.IsNotFound(err) {
		if info, ierr := p.c.Info(ctx, id); ierr == nil && info.Active {
			return fmt.Errorf("instance %s: terminate: %w", id, err)
		}
	}
	if info, err := p.c.Info(ctx, id); err == nil && info.Persistent {
		if err := p.c.Undefine(ctx, id); err != nil && !virt.IsNotFound(err) {
			return fmt.Errorf("instance %s: terminate: %w", id, err)
		}
	}
	if rec.OwnedVolume != "" {
		if err := p.c.DeleteVolume(ctx, p.opt.VolumePool, rec.OwnedVolume); err != nil && !errors.Is(err, virt.ErrNoVolume) {
			return fmt.Errorf("instance %s: remove root clone: %w", id, err)
		}
	}
	vols, err := p.reg.list("volume")
	if err != nil {
		return err
	}
	for _, v := range vols {
		if v.Instance != id {
			continue
		}
		if v.DeleteOnTermination {
			if err := p.c.DeleteVolume(ctx, p.opt.VolumePool, v.ID+".img"); err != nil && !errors.Is(err, virt.ErrNoVolume) {
				return fmt.Errorf("instance %s: terminate: delete volume %s: %w", id, v.ID, err)
			}
			p.reg.remove(v.ID)
			continue
		}
		p.reg.update("volume", v.ID, func(r *record) { r.Instance, r.Device, r.Target = "", "", "" })
	}
	return p.reg.update("instance", id, func(r *record) { r.Terminated, r.VNC = true, "" })
}

// ConsoleOutput implements cloud.Instances: the serial log.
func (p *Provider) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	rec, err := p.reg.get("instance", id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(rec.Console)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

var _ cloud.VNCConsoles = (*Provider)(nil)

// VNCConsole implements cloud.VNCConsoles: the live domain's VNC graphics
// (an installer started with --vnc has one, an installed system never).
func (p *Provider) VNCConsole(ctx context.Context, id string) (consolenote.VNC, error) {
	if _, err := p.reg.get("instance", id); err != nil {
		return consolenote.VNC{}, err
	}
	live, err := p.c.XML(ctx, id, true)
	if err != nil {
		if virt.IsNotFound(err) {
			return consolenote.VNC{}, fmt.Errorf("instance %s: not running: %w", id, cloud.ErrNoVNC)
		}
		return consolenote.VNC{}, fmt.Errorf("instance %s: %w", id, err)
	}
	v, ok, err := libvirtxml.VNCGraphics([]byte(live))
	if err != nil || !ok || v.Port <= 0 {
		return consolenote.VNC{}, fmt.Errorf("instance %s: it has one only during an install started with --vnc: %w", id, cloud.ErrNoVNC)
	}
	return consolenote.VNC{Instance: id, Host: v.Listen, Port: v.Port, Password: v.Password}, nil
}

// --- volumes ---

// CreateVolume implements cloud.Volumes: a sparse raw file in the pool,
// empty or holding a snapshot's blocks (written sparsely by qemu-img).
func (p *Provider) CreateVolume(ctx context.Context, spec cloud.VolumeSpec) (cloud.Volume, error) {
	if err := p.storage(ctx); err != nil {
		return cloud.Volume{}, err
	}
	var snap *record
	size := spec.SizeGiB
	if spec.SnapshotID != "" {
		s, err := p.reg.get("snapshot", spec.SnapshotID)
		if err != nil {
			return cloud.Volume{}, err
		}
		if st, _ := p.Snapshot(ctx, s.ID); st.State != cloud.SnapshotCompleted {
			return cloud.Volume{}, fmt.Errorf("volume from %s: snapshot is %s: %w", s.ID, st.State, cloud.ErrIncorrectState)
		}
		vsize, err := virtualSize(ctx, s.Path)
		if err != nil {
			return cloud.Volume{}, fmt.Errorf("volume from %s: %w", s.ID, err)
		}
		gib := int((vsize + 1<<30 - 1) >> 30)
		if size == 0 {
			size = gib
		} else if size < gib {
			return cloud.Volume{}, fmt.Errorf("volume from %s: %d GiB is smaller than the snapshot (%d GiB)", s.ID, size, gib)
		}
		snap = s
	}
	if size <= 0 {
		return cloud.Volume{}, fmt.Errorf("volume: size %d GiB: must be positive", size)
	}
	id := newID("vol-")
	rec := &record{Kind: "volume", ID: id, SizeGiB: size, Tags: spec.Tags, Created: time.Now().UTC()}
	if err := p.reg.put(rec); err != nil {
		return cloud.Volume{}, err
	}
	v, err := p.c.CreateVolume(ctx, p.opt.VolumePool, id+".img", uint64(size)<<30, "raw", "", "")
	if err != nil {
		p.reg.remove(id)
		return cloud.Volume{}, err
	}
	if snap != nil {
		out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-n", "--target-is-zero", "-f", "qcow2", "-O", "raw", snap.Path, v.Path).CombinedOutput()
		if err != nil {
			p.c.DeleteVolume(context.WithoutCancel(ctx), p.opt.VolumePool, id+".img")
			p.reg.remove(id)
			return cloud.Volume{}, fmt.Errorf("volume from %s: qemu-img convert: %v: %s", snap.ID, err, strings.TrimSpace(string(out)))
		}
	}
	rec.Path = v.Path
	if err := p.reg.put(rec); err != nil {
		return cloud.Volume{}, err
	}
	return p.Volume(ctx, id)
}

// VolumePath is the file holding volume id on this host ("" while it is
// being created), for what a build wrote here (kscloud's summary).
func (p *Provider) VolumePath(id string) (string, error) {
	rec, err := p.reg.get("volume", id)
	if err != nil {
		return "", err
	}
	return rec.Path, nil
}

// Volume implements cloud.Volumes.
func (p *Provider) Volume(ctx context.Context, id string) (cloud.Volume, error) {
	rec, err := p.reg.get("volume", id)
	if err != nil {
		return cloud.Volume{}, err
	}
	v := cloud.Volume{ID: id, SizeGiB: rec.SizeGiB, Tags: rec.Tags, State: cloud.VolumeAvailable, AttachState: "detached"}
	if rec.Path == "" {
		v.State = cloud.VolumeCreating
		return v, nil
	}
	if rec.Instance != "" {
		if info, err := p.c.Info(ctx, rec.Instance); err == nil && (info.Active || info.Persistent) {
			v.State, v.InstanceID, v.AttachState = cloud.VolumeInUse, rec.Instance, "attached"
			v.Attachment = &cloud.Attachment{VolumeID: id, Device: rec.Device}
		}
	}
	return v, nil
}

// AttachVolume implements cloud.Volumes (hot-plug into a running domain).
func (p *Provider) AttachVolume(ctx context.Context, volumeID, instanceID, device string) error {
	v, err := p.Volume(ctx, volumeID)
	if err != nil {
		return err
	}
	if v.State != cloud.VolumeAvailable {
		return fmt.Errorf("volume %q: attach: %s: %w", volumeID, v.State, cloud.ErrIncorrectState)
	}
	rec, _ := p.reg.get("volume", volumeID)
	target, err := hotplugTarget(device)
	if err != nil {
		return fmt.Errorf("volume %q: attach to instance %s: %w", volumeID, instanceID, err)
	}
	x, err := diskXML(rec.Path, "raw", target)
	if err != nil {
		return err
	}
	if err := p.c.AttachDevice(ctx, instanceID, x); err != nil {
		if virt.IsNotFound(err) {
			return fmt.Errorf("instance %q: %w", instanceID, cloud.ErrNotFound)
		}
		return err
	}
	return p.reg.update("volume", volumeID, func(r *record) {
		r.Instance, r.Device, r.Target, r.DeleteOnTermination = instanceID, devicePath(device), target, false
	})
}

// DetachVolume implements cloud.Volumes.
func (p *Provider) DetachVolume(ctx context.Context, volumeID string) error {
	rec, err := p.reg.get("volume", volumeID)
	if err != nil {
		return err
	}
	if rec.Instance == "" {
		return fmt.Errorf("volume %q: detach: not attached: %w", volumeID, cloud.ErrIncorrectState)
	}
	if info, err := p.c.Info(ctx, rec.Instance); err == nil && info.Active {
		target := rec.Target
		if target == "" {
			target = filepath.Base(rec.Device) // recorded before targets were
		}
		x, _ := diskXML(rec.Path, "raw", target)
		if err := p.c.DetachDevice(ctx, rec.Instance, x); err != nil {
			return err
		}
	}
	return p.reg.update("volume", volumeID, func(r *record) { r.Instance, r.Device, r.Target, r.DeleteOnTermination = "", "", "", false })
}

// DeleteVolume implements cloud.Volumes.
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	v, err := p.Volume(ctx, id)
	if err != nil {
		return err
	}
	if v.State == cloud.VolumeInUse {
		return fmt.Errorf("volume %q: delete: attached to %s: %w", id, v.InstanceID, cloud.ErrIncorrectState)
	}
	if err := p.c.DeleteVolume(ctx, p.opt.VolumePool, id+".img"); err != nil && !errors.Is(err, virt.ErrNoVolume) {
		return err
	}
	return p.reg.remove(id)
}

// --- tags ---

// Tag implements cloud.Tagger.
func (p *Provider) Tag(ctx context.Context, id string, tags cloud.Tags) error {
	recs, err := p.reg.list("")
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.ID == id {
			if r.Tags == nil {
				r.Tags = cloud.Tags{}
			}
			for k, v := range tags {
				r.Tags[k] = v
			}
			return p.reg.put(r)
		}
	}
	return fmt.Errorf("resource %q: %w", id, cloud.ErrNotFound)
}

// FindTagged implements cloud.Tagger (value "" matches any value).
func (p *Provider) FindTagged(ctx context.Context, key, value string) ([]cloud.Resource, error) {
	recs, err := p.reg.list("")
	if err != nil {
		return nil, err
	}
	var out []cloud.Resource
	for _, r := range recs {
		v, ok := r.Tags[key]
		if !ok || (value != "" && v != value) {
			continue
		}
		if r.Kind == "instance" && r.Terminated {
			continue
		}
		out = append(out, cloud.Resource{Kind: r.Kind, ID: r.ID, Tags: r.Tags})
	}
	return out, nil
}

// SetInstallMedia attaches an install ISO as a CD-ROM to the installer
// instances this provider launches from now on ("" for none).
func (p *Provider) SetInstallMedia(iso string) {
	p.mu.Lock()
	p.media = iso
	p.mu.Unlock()
}

func (p *Provider) installMedia() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.media
}

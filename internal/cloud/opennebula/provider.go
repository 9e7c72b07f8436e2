package opennebula

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/consolenote"
)

// VM states and LCM states (include/VirtualMachine.h).
const (
	stPending   = 1
	stHold      = 2
	stActive    = 3
	stStopped   = 4
	stSuspended = 5
	stDone      = 6
	stPoweroff  = 8
	stUndeployd = 9
	stCloning   = 10
	stCloneFail = 11

	lcmRunning          = 3
	lcmEpilog           = 11
	lcmShutdown         = 12
	lcmUnknown          = 16
	lcmHotplug          = 17
	lcmShutdownPoweroff = 18
	lcmHotplugSaveasP   = 27
	lcmHotplugPrologP   = 33
	lcmHotplugEpilogP   = 34
)

// Image states and types (include/Image.h).
const (
	imgInit, imgReady, imgUsed, imgDisabled, imgLocked, imgError, imgClone, imgDelete, imgUsedPers, imgLockedUsed, imgLockedUsedPers = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10

	typeOS, typeDatablock, typeKernel, typeRamdisk, typeContext = 0, 2, 3, 4, 5
)

// Provider is the OpenNebula provider.
type Provider struct {
	c       *client
	eff     Effective
	imageDS int
	fileDS  int
	network int // -1: none

	mu      sync.Mutex
	pending map[string]string // volume → attaching/detaching while a hotplug runs
}

// New connects: resolves endpoint and credentials, asks one.system.version
// (which decides the version-dependent calls) and picks the datastores and
// network.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	endpoint, endpointFrom, session, authFrom, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	user, _, _ := strings.Cut(session, ":")
	p := &Provider{
		c:       &client{url: endpoint, session: session, user: user, http: &http.Client{Timeout: 5 * time.Minute}, calls: cfg.Calls},
		eff:     Effective{Endpoint: endpoint, EndpointFrom: endpointFrom, User: user, AuthFrom: authFrom},
		pending: map[string]string{},
	}
	v, err := p.c.callString(ctx, "one.system.version")
	if err != nil {
		return nil, err
	}
	p.eff.Version = v
	p.imageDS, p.fileDS = -1, -1
	if cfg.ImageDS != nil {
		p.imageDS = *cfg.ImageDS
	}
	if cfg.FileDS != nil {
		p.fileDS = *cfg.FileDS
	}
	if p.imageDS < 0 || p.fileDS < 0 {
		s, err := p.c.callString(ctx, "one.datastorepool.info")
		if err != nil {
			return nil, err
		}
		var pool dsPool
		if err := decode("datastore pool", s, &pool); err != nil {
			return nil, err
		}
		for _, d := range pool.DS {
			if d.Type == 0 && p.imageDS < 0 {
				p.imageDS = d.ID
			}
			if d.Type == 2 && p.fileDS < 0 {
				p.fileDS = d.ID
			}
		}
	}
	p.network = -1
	if cfg.Network != nil {
		p.network = *cfg.Network
	} else {
		s, err := p.c.callString(ctx, "one.vnpool.info", -1, -1, -1)
		if err != nil {
			return nil, err
		}
		var pool vnPool
		if err := decode("virtual network pool", s, &pool); err != nil {
			return nil, err
		}
		if len(pool.VNets) > 0 {
			p.network = pool.VNets[0].ID
		}
	}
	return p, nil
}

// Name is "opennebula".
func (p *Provider) Name() string { return "opennebula" }

// Effective returns the configuration in effect.
func (p *Provider) Effective() Effective { return p.eff }

// Capabilities: an existing volume (image) is a DISK of a new VM.
func (p *Provider) Capabilities() cloud.Capabilities {
	return cloud.Capabilities{AttachExistingAtLaunch: true}
}

// versionAtLeast compares oned's version with major.minor.
func (p *Provider) versionAtLeast(major, minor int) bool {
	var ma, mi int
	fmt.Sscanf(p.eff.Version, "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

// MergeUpdateConf says whether one.vm.updateconf takes the type argument
// (merge mode): OpenNebula 6.2 and later (release-6.2.0
// RequestManagerVirtualMachine.cc; 6.0.x has no such argument).
func (p *Provider) MergeUpdateConf() bool { return p.versionAtLeast(6, 2) }

// ID shapes.
const (
	preVM    = "vm-"
	preVol   = "vol-"
	preSnap  = "snap-"
	preImage = "img-"
)

var idRE = regexp.MustCompile(`^(vm-|vol-|snap-|img-)?([0-9]{1,9})$`)

// parseID returns the number in an id of the wanted kind (its prefix, or
// a bare number).
func parseID(id, prefix, what string) (int, error) {
	m := idRE.FindStringSubmatch(id)
	if m == nil || m[1] != "" && m[1] != prefix {
		return 0, fmt.Errorf("%s %q: not an OpenNebula %s id (%sN or N): %w", what, id, what, prefix, cloud.ErrNotFound)
	}
	n, _ := strconv.Atoi(m[2])
	return n, nil
}

func vmID(n int) string { return fmt.Sprintf("%s%d", preVM, n) }

// tag attribute names.
var tagAttr = map[string]string{cloud.TagBuild: "KSCLOUD_BUILD", cloud.TagCreator: "KSCLOUD_CREATOR", cloud.TagRole: "KSCLOUD_ROLE"}

// kindAttr records what kscloud made an image to be (volume, snapshot, image).
const kindAttr = "KSCLOUD_KIND"

// tagsOf reads the tags from a template.
func tagsOf(t *node) cloud.Tags {
	tags := cloud.Tags{}
	for k, a := range tagAttr {
		if t.has(a) {
			tags[k] = t.get(a)
		}
	}
	for _, v := range t.all("KSCLOUD_TAG") {
		if k := v.get("KEY"); k != "" {
			tags[k] = v.get("VALUE")
		}
	}
	return tags
}

// addTags writes tags into a template being built (all KSCLOUD_TAG
// vectors must be sent together: a merge replaces every one of them).
func addTags(t *tmpl, tags cloud.Tags) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a, ok := tagAttr[k]; ok {
			t.single(a, tags[k])
		} else {
			t.vector("KSCLOUD_TAG", "KEY", k, "VALUE", tags[k])
		}
	}
}

func tagged(tags cloud.Tags, key, value string) bool {
	v, ok := tags[key]
	return ok && (value == "" || v == value)
}

// uniqueName makes an image name oned accepts (no ':' and the like).
func uniqueName(prefix string, tags cloud.Tags) string {
	var b [4]byte
	rand.Read(b[:])
	n := "kscloud-" + prefix
	if build := tags[cloud.TagBuild]; build != "" {
		n += "-" + build
	}
	return sanitizeName(n + "-" + hex.EncodeToString(b[:]))
}

// badName: PoolObjectSQL::INVALID_NAME_CHARS (\v included, which \s
// is not), other control characters (no XML can carry them) and blanks.
var badName = regexp.MustCompile(`[&|:\\";/'#{}$<>\s\v[:cntrl:]]`)

// sanitizeName makes s a name oned takes: its characters, and at most
// 128 bytes (name_is_valid counts bytes) cut at a character boundary.
func sanitizeName(s string) string {
	s = badName.ReplaceAllString(strings.ToValidUTF8(s, "-"), "-")
	for len(s) > 128 {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// --- images as volumes, snapshots and images ---

func (p *Provider) imageInfo(ctx context.Context, n int) (imageInfo, error) {
	var im imageInfo
	s, err := p.c.callString(ctx, "one.image.info", n, false)
	if err != nil {
		return im, err
	}
	err = decode("image", s, &im)
	return im, err
}

func (p *Provider) vmInfo(ctx context.Context, n int) (vmInfo, error) {
	var v vmInfo
	s, err := p.c.callString(ctx, "one.vm.info", n, false)
	if err != nil {
		return v, err
	}
	err = decode("virtual machine", s, &v)
	return v, err
}

// vmByID parses an instance id and reads the VM.
func (p *Provider) vmByID(ctx context.Context, id string) (vmInfo, error) {
	n, err := parseID(id, preVM, "instance")
	if err != nil {
		return vmInfo{}, err
	}
	v, err := p.vmInfo(ctx, n)
	if err != nil {
		return v, fmt.Errorf("instance %s: %w", id, err)
	}
	return v, nil
}

// imageByID parses an image-backed id (prefix: vol-, snap-, img-) and
// reads the image.
func (p *Provider) imageByID(ctx context.Context, id, prefix, what string) (imageInfo, error) {
	n, err := parseID(id, prefix, what)
	if err != nil {
		return imageInfo{}, err
	}
	im, err := p.imageInfo(ctx, n)
	if err != nil {
		return im, fmt.Errorf("%s %s: %w", what, id, err)
	}
	return im, nil
}

func sizeGiB(mb int) int { return (mb + 1023) / 1024 }

// CreateVolume allocates a persistent DATABLOCK image (LOCKED while oned
// creates it: "creating"), or, from a snapshot, a clone of it.
func (p *Provider) CreateVolume(ctx context.Context, spec cloud.VolumeSpec) (cloud.Volume, error) {
	if spec.SnapshotID != "" {
		return p.volumeFromSnapshot(ctx, spec)
	}
	if spec.SizeGiB <= 0 {
		return cloud.Volume{}, fmt.Errorf("volume: size %d GiB: want at least 1", spec.SizeGiB)
	}
	t := &tmpl{}
	t.single("NAME", uniqueName("vol", spec.Tags)).single("TYPE", "DATABLOCK").single("SIZE", strconv.Itoa(spec.SizeGiB*1024)).
		single("PERSISTENT", "YES").single("FORMAT", "raw").single("DEV_PREFIX", "vd").single(kindAttr, "volume")
	addTags(t, spec.Tags)
	n, err := p.c.callInt(ctx, "one.image.allocate", t, p.imageDS)
	if err != nil {
		return cloud.Volume{}, fmt.Errorf("volume: %w", err)
	}
	return cloud.Volume{ID: fmt.Sprintf("%s%d", preVol, n), State: cloud.VolumeCreating, SizeGiB: spec.SizeGiB, Tags: copyTags(spec.Tags)}, nil
}

func copyTags(t cloud.Tags) cloud.Tags {
	out := cloud.Tags{}
	for k, v := range t {
		out[k] = v
	}
	return out
}

// volumeFromSnapshot clones the snapshot into a new image and makes it
// persistent once READY (oned refuses the flag while LOCKED).
func (p *Provider) volumeFromSnapshot(ctx context.Context, spec cloud.VolumeSpec) (cloud.Volume, error) {
	sn, err := parseID(spec.SnapshotID, preSnap, "snapshot")
	if err != nil {
		return cloud.Volume{}, err
	}
	src, err := p.imageInfo(ctx, sn)
	if err != nil {
		return cloud.Volume{}, fmt.Errorf("snapshot %s: %w", spec.SnapshotID, err)
	}
	n, err := p.c.callInt(ctx, "one.image.clone", sn, uniqueName("vol", spec.Tags), p.imageDS)
	if err != nil {
		return cloud.Volume{}, fmt.Errorf("snapshot %s: %w", spec.SnapshotID, err)
	}
	id := fmt.Sprintf("%s%d", preVol, n)
	t := &tmpl{}
	t.single(kindAttr, "volume").single("DEV_PREFIX", "vd")
	addTags(t, spec.Tags)
	if err := p.updateImage(ctx, n, t, false); err != nil {
		return cloud.Volume{ID: id}, fmt.Errorf("volume %s: %w", id, err)
	}
	size := max(spec.SizeGiB, sizeGiB(src.Size))
	return cloud.Volume{ID: id, State: cloud.VolumeCreating, SizeGiB: size, Tags: copyTags(spec.Tags)}, nil
}

// updateImage writes t into the image's TEMPLATE (merge, or replace).
func (p *Provider) updateImage(ctx context.Context, n int, t *tmpl, merge bool) error {
	typ := 0
	if merge {
		typ = 1
	}
	_, err := p.c.callInt(ctx, "one.image.update", n, t, typ)
	return err
}

// Volume describes a volume image.
func (p *Provider) Volume(ctx context.Context, id string) (cloud.Volume, error) {
	im, err := p.imageByID(ctx, id, preVol, "volume")
	if err != nil {
		return cloud.Volume{}, err
	}
	n := im.ID
	v := cloud.Volume{ID: id, SizeGiB: sizeGiB(im.Size), Tags: tagsOf(&im.Template)}
	switch im.State {
	case imgInit, imgLocked, imgClone:
		v.State = cloud.VolumeCreating
	case imgReady:
		v.State = cloud.VolumeAvailable
	case imgUsed, imgUsedPers, imgLockedUsed, imgLockedUsedPers:
		v.State = cloud.VolumeInUse
	case imgDelete:
		v.State = cloud.VolumeDeleting
	default:
		v.State = cloud.VolumeError
	}
	if im.State == imgReady && im.Persistent == 0 && im.Template.get(kindAttr) == "volume" {
		// A volume cloned from a snapshot: persistent once READY.
		if _, err := p.c.callInt(ctx, "one.image.persistent", n, true); err != nil {
			return v, fmt.Errorf("volume %s: %w", id, err)
		}
	}
	if len(im.VMs) > 0 {
		vm, err := p.vmInfo(ctx, im.VMs[0])
		if err != nil && !cloud.IsNotFound(err) {
			return v, fmt.Errorf("volume %s: its VM %d: %w", id, im.VMs[0], err)
		}
		for _, d := range vm.Template.all("DISK") {
			if atoi(d.get("IMAGE_ID")) != n {
				continue
			}
			v.InstanceID = vmID(vm.ID)
			v.Attachment = &cloud.Attachment{VolumeID: id, Device: "/dev/" + d.get("TARGET"), DeleteOnTermination: cloud.Bool(false)}
			v.AttachState = "attached"
			if hotplugging(vm.State, vm.LCM) {
				p.mu.Lock()
				v.AttachState = p.pending[id]
				p.mu.Unlock()
				if v.AttachState == "" {
					v.AttachState = "attaching"
				}
			}
		}
	}
	return v, nil
}

func hotplugging(state, lcm int) bool {
	return state == stActive && (lcm == lcmHotplug || lcm == lcmHotplugPrologP || lcm == lcmHotplugEpilogP)
}

// AttachVolume hot-plugs the volume into the VM at device (its TARGET).
func (p *Provider) AttachVolume(ctx context.Context, volumeID, instanceID, device string) error {
	im, err := p.imageByID(ctx, volumeID, preVol, "volume")
	if err != nil {
		return err
	}
	n := im.ID
	if len(im.VMs) > 0 || im.State != imgReady {
		return fmt.Errorf("volume %s: cannot attach: image state %s: %w", volumeID, imageStateName(im.State), cloud.ErrIncorrectState)
	}
	vn, err := parseID(instanceID, preVM, "instance")
	if err != nil {
		return err
	}
	t := (&tmpl{}).vector("DISK", "IMAGE_ID", strconv.Itoa(n), "TARGET", strings.TrimPrefix(device, "/dev/"))
	p.setPending(volumeID, "attaching")
	if _, err := p.c.callInt(ctx, "one.vm.attach", vn, t); err != nil {
		p.setPending(volumeID, "")
		return fmt.Errorf("volume %s to instance %s: %w", volumeID, instanceID, err)
	}
	return nil
}

func (p *Provider) setPending(vol, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if what == "" {
		delete(p.pending, vol)
	} else {
		p.pending[vol] = what
	}
}

// DetachVolume hot-unplugs the volume from its VM.
func (p *Provider) DetachVolume(ctx context.Context, volumeID string) error {
	im, err := p.imageByID(ctx, volumeID, preVol, "volume")
	if err != nil {
		return err
	}
	n := im.ID
	if len(im.VMs) == 0 {
		return fmt.Errorf("volume %s is not attached: %w", volumeID, cloud.ErrIncorrectState)
	}
	vm, err := p.vmInfo(ctx, im.VMs[0])
	if err != nil {
		return fmt.Errorf("volume %s: its VM %d: %w", volumeID, im.VMs[0], err)
	}
	for _, d := range vm.Template.all("DISK") {
		if atoi(d.get("IMAGE_ID")) == n {
			p.setPending(volumeID, "detaching")
			if _, err := p.c.callInt(ctx, "one.vm.detach", vm.ID, atoi(d.get("DISK_ID"))); err != nil {
				p.setPending(volumeID, "")
				return fmt.Errorf("volume %s from instance %s: %w", volumeID, vmID(vm.ID), err)
			}
			return nil
		}
	}
	return fmt.Errorf("volume %s is not a disk of VM %d: %w", volumeID, vm.ID, cloud.ErrIncorrectState)
}

// DeleteVolume deletes the volume image (refused while a VM uses it).
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	return p.deleteImage(ctx, id, preVol, "volume")
}

func (p *Provider) deleteImage(ctx context.Context, id, prefix, what string) error {
	im, err := p.imageByID(ctx, id, prefix, what)
	if err != nil {
		return err
	}
	n := im.ID
	if im.State == imgDelete {
		if what == "volume" {
			return nil
		}
		return fmt.Errorf("%s %s: being deleted: %w", what, id, cloud.ErrNotFound)
	}
	if _, err := p.c.callInt(ctx, "one.image.delete", n); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	return nil
}

// CreateSnapshot clones the volume image (the volume must be detached:
// oned refuses to clone a persistent image in use).
func (p *Provider) CreateSnapshot(ctx context.Context, volumeID, description string, tags cloud.Tags) (cloud.Snapshot, error) {
	vol, err := p.imageByID(ctx, volumeID, preVol, "volume")
	if err != nil {
		return cloud.Snapshot{}, err
	}
	n := vol.ID
	sn, err := p.c.callInt(ctx, "one.image.clone", n, uniqueName("snap", tags), p.imageDS)
	if err != nil {
		return cloud.Snapshot{}, fmt.Errorf("snapshot of volume %s: %w", volumeID, err)
	}
	id := fmt.Sprintf("%s%d", preSnap, sn)
	t := &tmpl{}
	t.single(kindAttr, "snapshot").single("KSCLOUD_VOLUME", volumeID).single("DESCRIPTION", description).single("DEV_PREFIX", "vd")
	addTags(t, tags)
	if err := p.updateImage(ctx, sn, t, false); err != nil {
		return cloud.Snapshot{ID: id}, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return cloud.Snapshot{ID: id, VolumeID: volumeID, State: cloud.SnapshotPending, Tags: copyTags(tags)}, nil
}

// Snapshot describes a snapshot image: LOCKED is pending, READY completed.
func (p *Provider) Snapshot(ctx context.Context, id string) (cloud.Snapshot, error) {
	im, err := p.imageByID(ctx, id, preSnap, "snapshot")
	if err != nil {
		return cloud.Snapshot{}, err
	}
	s := cloud.Snapshot{ID: id, VolumeID: im.Template.get("KSCLOUD_VOLUME"), Tags: tagsOf(&im.Template)}
	if s.VolumeID == "" {
		if v := im.Template.get("SAVED_IMAGE_ID"); v != "" {
			s.VolumeID = preVol + v
		}
	}
	switch im.State {
	case imgInit, imgLocked:
		s.State = cloud.SnapshotPending
	case imgDelete:
		return s, fmt.Errorf("snapshot %s: being deleted: %w", id, cloud.ErrNotFound)
	case imgError:
		s.State = cloud.SnapshotError
	default:
		s.State, s.Progress = cloud.SnapshotCompleted, 100
	}
	return s, nil
}

// DeleteSnapshot deletes the snapshot image.
func (p *Provider) DeleteSnapshot(ctx context.Context, id string) error {
	return p.deleteImage(ctx, id, preSnap, "snapshot")
}

// RegisterImage clones the snapshot into the image (type OS once READY);
// provenance and tags go into its TEMPLATE.
func (p *Provider) RegisterImage(ctx context.Context, spec cloud.ImageSpec) (cloud.Image, error) {
	sn, err := parseID(spec.SnapshotID, preSnap, "snapshot")
	if err != nil {
		return cloud.Image{}, err
	}
	name := sanitizeName(spec.Name)
	n, err := p.c.callInt(ctx, "one.image.clone", sn, name, p.imageDS)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("image %s from snapshot %s: %w", name, spec.SnapshotID, err)
	}
	id := fmt.Sprintf("%s%d", preImage, n)
	t := &tmpl{}
	t.single(kindAttr, "image").single("KSCLOUD_SNAPSHOT", spec.SnapshotID).single("DESCRIPTION", spec.Description).single("DEV_PREFIX", "vd")
	if spec.Architecture != "" {
		t.single("ARCH", spec.Architecture)
	}
	addTags(t, spec.Tags)
	if err := p.updateImage(ctx, n, t, false); err != nil {
		return cloud.Image{ID: id}, fmt.Errorf("image %s: %w", id, err)
	}
	return cloud.Image{ID: id, Name: name, Description: spec.Description, State: cloud.ImagePending, SnapshotID: spec.SnapshotID, Created: time.Now(), Tags: copyTags(spec.Tags)}, nil
}

func imageStateName(s int) string {
	names := []string{"INIT", "READY", "USED", "DISABLED", "LOCKED", "ERROR", "CLONE", "DELETE", "USED_PERS", "LOCKED_USED", "LOCKED_USED_PERS"}
	if s >= 0 && s < len(names) {
		return names[s]
	}
	return strconv.Itoa(s)
}

func (p *Provider) toImage(ctx context.Context, id string, im imageInfo) (cloud.Image, error) {
	out := cloud.Image{ID: id, Name: im.Name, Description: im.Template.get("DESCRIPTION"), SnapshotID: im.Template.get("KSCLOUD_SNAPSHOT"),
		Created: time.Unix(im.RegTime, 0), Tags: tagsOf(&im.Template)}
	switch im.State {
	case imgInit, imgLocked:
		out.State = cloud.ImagePending
	case imgError, imgDisabled:
		out.State = cloud.ImageFailed
	case imgDelete:
		return out, fmt.Errorf("image %s: being deleted: %w", id, cloud.ErrNotFound)
	default:
		out.State = cloud.ImageAvailable
		if im.Type == typeDatablock && im.Template.get(kindAttr) == "image" && ctx != nil {
			// A clone keeps its source's type; an image is an OS disk.
			if _, err := p.c.callInt(ctx, "one.image.chtype", im.ID, "OS"); err != nil {
				return out, fmt.Errorf("image %s: %w", id, err)
			}
		}
	}
	return out, nil
}

// Image describes an image.
func (p *Provider) Image(ctx context.Context, id string) (cloud.Image, error) {
	im, err := p.imageByID(ctx, id, preImage, "image")
	if err != nil {
		return cloud.Image{}, err
	}
	return p.toImage(ctx, id, im)
}

func (p *Provider) imagePool(ctx context.Context) ([]imageInfo, error) {
	s, err := p.c.callString(ctx, "one.imagepool.info", -3, -1, -1)
	if err != nil {
		return nil, err
	}
	var pool imagePool
	err = decode("image pool", s, &pool)
	return pool.Images, err
}

// Images lists the images (kind image) carrying all of tags.
func (p *Provider) Images(ctx context.Context, tags cloud.Tags) ([]cloud.Image, error) {
	pool, err := p.imagePool(ctx)
	if err != nil {
		return nil, err
	}
	var out []cloud.Image
	for _, im := range pool {
		if im.Template.get(kindAttr) != "image" || im.State == imgDelete {
			continue
		}
		t := tagsOf(&im.Template)
		match := true
		for k, v := range tags {
			match = match && tagged(t, k, v)
		}
		if !match {
			continue
		}
		ci, _ := p.toImage(nil, fmt.Sprintf("%s%d", preImage, im.ID), im)
		out = append(out, ci)
	}
	return out, nil
}

// DeregisterImage deletes the image.
func (p *Provider) DeregisterImage(ctx context.Context, id string) error {
	return p.deleteImage(ctx, id, preImage, "image")
}

// imageKind names an image by what kscloud made it.
func imageKind(im *imageInfo) (kind, prefix string) {
	switch im.Template.get(kindAttr) {
	case "volume":
		return "volume", preVol
	case "snapshot":
		return "snapshot", preSnap
	}
	if im.Type == typeDatablock && im.Persistent == 1 {
		return "volume", preVol
	}
	return "image", preImage
}

// Tag merges tags into a VM's USER_TEMPLATE or an image's TEMPLATE.
func (p *Provider) Tag(ctx context.Context, id string, tags cloud.Tags) error {
	m := idRE.FindStringSubmatch(id)
	if m == nil || m[1] == "" {
		return fmt.Errorf("resource %q: not an OpenNebula id (vm-N, vol-N, snap-N, img-N): %w", id, cloud.ErrNotFound)
	}
	n, _ := strconv.Atoi(m[2])
	if m[1] == preVM {
		v, err := p.vmInfo(ctx, n)
		if err != nil {
			return fmt.Errorf("instance %s: %w", id, err)
		}
		all := tagsOf(&v.User)
		for k, val := range tags {
			all[k] = val
		}
		t := &tmpl{}
		addTags(t, all)
		if _, err := p.c.callInt(ctx, "one.vm.update", n, t, 1); err != nil {
			return fmt.Errorf("instance %s: %w", id, err)
		}
		return nil
	}
	im, err := p.imageInfo(ctx, n)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	all := tagsOf(&im.Template)
	for k, val := range tags {
		all[k] = val
	}
	t := &tmpl{}
	addTags(t, all)
	if err := p.updateImage(ctx, n, t, true); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	return nil
}

// FindTagged lists VMs (not DONE) and images carrying key (=value).
// VMs are read with one.vmpool.infoextended: the short body of
// one.vmpool.info has no USER_TEMPLATE attributes but LABELS, and the
// KEY=VALUE filter needs MySQL.
func (p *Provider) FindTagged(ctx context.Context, key, value string) ([]cloud.Resource, error) {
	var out []cloud.Resource
	s, err := p.c.callString(ctx, "one.vmpool.infoextended", -3, -1, -1, -1)
	if err != nil {
		return nil, err
	}
	var pool vmPool
	if err := decode("VM pool", s, &pool); err != nil {
		return nil, err
	}
	for _, v := range pool.VMs {
		if t := tagsOf(&v.User); tagged(t, key, value) {
			out = append(out, cloud.Resource{Kind: "instance", ID: vmID(v.ID), Tags: t})
		}
	}
	imgs, err := p.imagePool(ctx)
	if err != nil {
		return nil, err
	}
	for _, im := range imgs {
		if im.State == imgDelete {
			continue
		}
		if t := tagsOf(&im.Template); tagged(t, key, value) {
			kind, prefix := imageKind(&im)
			out = append(out, cloud.Resource{Kind: kind, ID: fmt.Sprintf("%s%d", prefix, im.ID), Tags: t})
		}
	}
	return out, nil
}

// --- instances ---

// Default VM size where the spec does not say.
const (
	DefaultMemoryMB = 1024
	DefaultCPUs     = 1
)

const deleteOnTermAttr = "KSCLOUD_DELETE_ON_TERMINATION"

// RunInstance allocates a VM. Disk 0 is the image (or the first volume);
// volumes named by id are its next disks at their devices (TARGET); a
// mapping with a size and no id creates a persistent DATABLOCK volume
// first (waited READY: oned refuses a LOCKED image as a disk) — oned has
// no delete-on-termination, so those the spec wants gone are listed in
// USER_TEMPLATE and deleted once the provider sees the VM DONE. A kernel
// boot names KERNEL/RAMDISK images (OS KERNEL_DS/INITRD_DS) with
// spec.Cmdline as KERNEL_CMD.
func (p *Provider) RunInstance(ctx context.Context, spec cloud.InstanceSpec) (cloud.Instance, error) {
	return p.runInstance(ctx, spec, runOpts{})
}

// runOpts are what the install steps add to a launch.
type runOpts struct {
	hold         bool   // allocate on HOLD
	volatileMB   int    // disk 0: a volatile disk of this size
	contextFiles string // CONTEXT FILES_DS
}

// runInstance allocates the VM.
func (p *Provider) runInstance(ctx context.Context, spec cloud.InstanceSpec, o runOpts) (cloud.Instance, error) {
	t := &tmpl{}
	name := spec.Name
	if name != "" {
		t.single("NAME", sanitizeName(name))
	}
	mem, cpus := spec.MemoryMB, spec.CPUs
	if mem <= 0 {
		mem = DefaultMemoryMB
	}
	if cpus <= 0 {
		cpus = DefaultCPUs
	}
	t.single("CPU", strconv.Itoa(cpus)).single("VCPU", strconv.Itoa(cpus)).single("MEMORY", strconv.Itoa(mem))
	var disks [][]string
	if o.volatileMB > 0 {
		disks = append(disks, []string{"TYPE", "fs", "SIZE", strconv.Itoa(o.volatileMB), "FORMAT", "raw", "DEV_PREFIX", "vd"})
	}
	if spec.ImageID != "" {
		n, err := parseID(spec.ImageID, preImage, "image")
		if err != nil {
			return cloud.Instance{}, err
		}
		disks = append(disks, []string{"IMAGE_ID", strconv.Itoa(n), "DEV_PREFIX", "vd"})
	}
	var deleteOnTerm []string
	for _, a := range spec.Volumes {
		target := strings.TrimPrefix(a.Device, "/dev/")
		switch {
		case a.VolumeID != "":
			n, err := parseID(a.VolumeID, preVol, "volume")
			if err != nil {
				return cloud.Instance{}, err
			}
			disks = append(disks, []string{"IMAGE_ID", strconv.Itoa(n), "TARGET", target})
		case a.SizeGiB > 0:
			tags := copyTags(spec.Tags)
			tags[cloud.TagRole] = "launch-volume"
			v, err := p.CreateVolume(ctx, cloud.VolumeSpec{SizeGiB: a.SizeGiB, Tags: tags})
			if err != nil {
				return cloud.Instance{}, err
			}
			if err := p.waitReady(ctx, v.ID); err != nil {
				p.DeleteVolume(context.WithoutCancel(ctx), v.ID)
				return cloud.Instance{}, err
			}
			if a.DeleteOnTermination == nil || *a.DeleteOnTermination {
				deleteOnTerm = append(deleteOnTerm, v.ID)
			}
			disks = append(disks, []string{"IMAGE_ID", strings.TrimPrefix(v.ID, preVol), "TARGET", target})
		default:
			return cloud.Instance{}, fmt.Errorf("instance: volume mapping at %s: want a volume id or a size (OpenNebula has no instance-store disks)", a.Device)
		}
	}
	for _, d := range disks {
		t.vector("DISK", d...)
	}
	if p.network >= 0 {
		t.vector("NIC", "NETWORK_ID", strconv.Itoa(p.network))
	}
	osKV := []string{"ARCH", "x86_64"}
	if spec.KernelID != "" {
		k, err := parseID(spec.KernelID, preImage, "kernel image")
		if err != nil {
			return cloud.Instance{}, err
		}
		osKV = append(osKV, "KERNEL_DS", fmt.Sprintf("$FILE[IMAGE_ID=%d]", k))
		if spec.RamdiskID != "" {
			r, err := parseID(spec.RamdiskID, preImage, "initrd image")
			if err != nil {
				return cloud.Instance{}, err
			}
			osKV = append(osKV, "INITRD_DS", fmt.Sprintf("$FILE[IMAGE_ID=%d]", r))
		}
		osKV = append(osKV, "KERNEL_CMD", spec.Cmdline)
	}
	if len(disks) > 0 {
		osKV = append(osKV, "BOOT", "disk0")
	}
	t.vector("OS", osKV...)
	ctxKV := []string{"NETWORK", "YES"}
	if len(spec.UserData) > 0 {
		ctxKV = append(ctxKV, "USER_DATA", encodeB64(spec.UserData), "USERDATA_ENCODING", "base64")
	}
	if o.contextFiles != "" {
		ctxKV = append(ctxKV, "FILES_DS", o.contextFiles)
	}
	t.vector("CONTEXT", ctxKV...)
	if spec.VNC {
		t.vector("GRAPHICS", "TYPE", "VNC", "LISTEN", "0.0.0.0", "RANDOM_PASSWD", "YES")
	}
	if spec.ImageID != "" {
		t.single("KSCLOUD_IMAGE", spec.ImageID)
	}
	if len(deleteOnTerm) > 0 {
		t.single(deleteOnTermAttr, strings.Join(deleteOnTerm, " "))
	}
	tags := copyTags(spec.Tags)
	addTags(t, tags)
	if tags[cloud.TagBuild] != "" {
		t.single("LABELS", "kscloud/"+tags[cloud.TagBuild])
	}
	n, err := p.c.callInt(ctx, "one.vm.allocate", t, o.hold)
	if err != nil {
		for _, v := range deleteOnTerm {
			p.DeleteVolume(context.WithoutCancel(ctx), v)
		}
		return cloud.Instance{}, fmt.Errorf("instance %s: %w", name, err)
	}
	inst, err := p.Instance(ctx, vmID(n))
	if err != nil {
		return cloud.Instance{ID: vmID(n), State: cloud.InstancePending, Tags: tags}, err
	}
	return inst, nil
}

// waitReady waits for a new volume image to leave LOCKED (bounded by ctx
// alone); its ERROR state ends the wait.
func (p *Provider) waitReady(ctx context.Context, volID string) error {
	w := wait.Waiter{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Timeout: -1, NotFoundGrace: -1}
	_, err := w.Volume(ctx, p, volID, cloud.VolumeAvailable)
	return err
}

// instanceState maps oned's STATE/LCM_STATE onto EC2's names
// (research §5); failed says a *_FAILURE or UNKNOWN state (reported as
// stopped with the reason).
func instanceState(state, lcm int) (name string, failed bool) {
	switch state {
	case stPending, stHold, stCloning:
		return cloud.InstancePending, false
	case stPoweroff, stSuspended, stStopped, stUndeployd:
		return cloud.InstanceStopped, false
	case stDone:
		return cloud.InstanceTerminated, false
	case stCloneFail:
		return cloud.InstanceStopped, true
	case stActive:
	default:
		return cloud.InstancePending, false
	}
	switch lcm {
	case 3, 4, 17, 24, 25, 26, 57, 59, 62, 66, 69: // RUNNING, MIGRATE, HOTPLUG*, DISK_SNAPSHOT, DISK_RESIZE, HOTPLUG_RESIZE, BACKUP
		return cloud.InstanceRunning, false
	case 5, 6, 18, 29: // SAVE_*, SHUTDOWN_POWEROFF, SHUTDOWN_UNDEPLOY
		return cloud.InstanceStopping, false
	case 27, 28, 33, 34, 51, 52, 53, 54, 55, 56, 63, 64, 65, 67, 68, 70, 71: // operations on a powered-off/suspended/undeployed VM (67-71: HOTPLUG_SAVEAS_UNDEPLOYED/_STOPPED, BACKUP_POWEROFF, RESTORE)
		return cloud.InstanceStopped, false
	case 10, 11, 12, 13, 15, 23, 30: // EPILOG*, SHUTDOWN, CANCEL, CLEANUP_*
		return cloud.InstanceShuttingDown, false
	case 14, 16, 36, 37, 38, 39, 40, 41, 42, 44, 46, 47, 48, 49, 50, 61: // FAILURE, UNKNOWN, *_FAILURE
		return cloud.InstanceStopped, true
	}
	return cloud.InstancePending, false // LCM_INIT, PROLOG*, BOOT*
}

// stateName names a state as oned's CLI does.
func stateName(state, lcm int) string {
	st := map[int]string{0: "INIT", 1: "PENDING", 2: "HOLD", 3: "ACTIVE", 4: "STOPPED", 5: "SUSPENDED", 6: "DONE", 8: "POWEROFF", 9: "UNDEPLOYED", 10: "CLONING", 11: "CLONING_FAILURE"}
	if state != stActive {
		return st[state]
	}
	l := map[int]string{0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING", 11: "EPILOG", 12: "SHUTDOWN", 16: "UNKNOWN", 17: "HOTPLUG",
		18: "SHUTDOWN_POWEROFF", 19: "BOOT_UNKNOWN", 20: "BOOT_POWEROFF", 26: "HOTPLUG_SAVEAS", 27: "HOTPLUG_SAVEAS_POWEROFF",
		33: "HOTPLUG_PROLOG_POWEROFF", 34: "HOTPLUG_EPILOG_POWEROFF", 36: "BOOT_FAILURE", 39: "PROLOG_FAILURE", 40: "EPILOG_FAILURE"}
	if n, ok := l[lcm]; ok {
		return "ACTIVE/" + n
	}
	return fmt.Sprintf("ACTIVE/LCM_%d", lcm)
}

func (p *Provider) toInstance(ctx context.Context, v *vmInfo) cloud.Instance {
	id := vmID(v.ID)
	state, failed := instanceState(v.State, v.LCM)
	in := cloud.Instance{ID: id, State: state, ImageID: v.User.get("KSCLOUD_IMAGE"), Tags: tagsOf(&v.User)}
	if v.STime > 0 {
		in.Launched = time.Unix(v.STime, 0)
	}
	if failed {
		in.StateReason = stateName(v.State, v.LCM)
		if e := v.User.get("ERROR"); e != "" {
			in.StateReason += ": " + e
		}
	}
	if nic := v.Template.first("NIC"); nic != nil {
		in.PrivateIP = nic.get("IP")
	}
	dot := strings.Fields(v.User.get(deleteOnTermAttr))
	for _, d := range v.Template.all("DISK") {
		if d.get("PERSISTENT") != "YES" || d.get("IMAGE_ID") == "" {
			continue
		}
		vol := preVol + d.get("IMAGE_ID")
		in.Volumes = append(in.Volumes, cloud.Attachment{VolumeID: vol, Device: "/dev/" + d.get("TARGET"), DeleteOnTermination: cloud.Bool(slices.Contains(dot, vol))})
	}
	if g := v.Template.first("GRAPHICS"); g != nil && strings.EqualFold(g.get("TYPE"), "VNC") && state == cloud.InstanceRunning {
		in.VNC = "vnc://" + net.JoinHostPort(p.vncHost(v), g.get("PORT"))
	}
	return in
}

func (p *Provider) vncHost(v *vmInfo) string {
	if len(v.History) > 0 {
		return v.History[len(v.History)-1].Hostname
	}
	return ""
}

// Instance describes a VM. A DONE VM is terminated (oned keeps listing
// it); volumes the launch created to go with it are deleted then.
func (p *Provider) Instance(ctx context.Context, id string) (cloud.Instance, error) {
	v, err := p.vmByID(ctx, id)
	if err != nil {
		return cloud.Instance{}, err
	}
	in := p.toInstance(ctx, &v)
	if v.State == stDone {
		p.deleteLaunchVolumes(ctx, &v)
	}
	return in, nil
}

func (p *Provider) deleteLaunchVolumes(ctx context.Context, v *vmInfo) {
	for _, vol := range strings.Fields(v.User.get(deleteOnTermAttr)) {
		if err := p.DeleteVolume(ctx, vol); err != nil && !cloud.IsNotFound(err) {
			continue // still in use a moment: the next look retries
		}
	}
}

// TerminateInstance terminates the VM (hard: an installer need not answer
// ACPI). A DONE VM is already terminated.
//
// oned refuses terminate while a VM passes through PROLOG, BOOT, a
// migration, a hotplug or a save ("Could not terminate VM N, wrong state
// PROLOG."; research §1): a build cancelled while its installer's images
// are still being copied must end that VM all the same. So the call is
// retried until the VM reaches a state terminate takes (bounded by ctx and
// terminateWithin); a VM found already shutting down is on its way to DONE,
// which the caller waits for.
func (p *Provider) TerminateInstance(ctx context.Context, id string) error {
	n, err := parseID(id, preVM, "instance")
	if err != nil {
		return err
	}
	err = wait.Retry(ctx, terminateBackoff, terminateWithin, func(err error) bool { return errors.Is(err, cloud.ErrIncorrectState) },
		func(ctx context.Context) error {
			_, err := p.c.callInt(ctx, "one.vm.action", "terminate-hard", n)
			if err == nil || !errors.Is(err, cloud.ErrIncorrectState) {
				return err
			}
			if v, verr := p.vmInfo(ctx, n); verr == nil {
				if state, _ := instanceState(v.State, v.LCM); state == cloud.InstanceShuttingDown || state == cloud.InstanceTerminated {
					return nil
				}
			}
			return err
		})
	if err != nil {
		return fmt.Errorf("instance %s: %w", id, err)
	}
	return nil
}

// How long TerminateInstance waits for a VM to leave a state terminate
// refuses, and how often it tries: PROLOG copies the VM's images and can
// take minutes on a real datastore.
var (
	terminateWithin  = 15 * time.Minute
	terminateBackoff = wait.Backoff{Initial: 500 * time.Millisecond, Max: 5 * time.Second}
)

// ConsoleOutput: OpenNebula has no console-output API (one#618, #2769);
// an existing VM has none, a missing one is not found.
func (p *Provider) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	_, err := p.vmByID(ctx, id)
	return nil, err
}

// VNCConsole reads the VM's GRAPHICS (TYPE VNC, PORT 5900+ID, PASSWD) and
// its host from the last history record.
func (p *Provider) VNCConsole(ctx context.Context, id string) (consolenote.VNC, error) {
	v, err := p.vmByID(ctx, id)
	if err != nil {
		return consolenote.VNC{}, err
	}
	g := v.Template.first("GRAPHICS")
	if g == nil || !strings.EqualFold(g.get("TYPE"), "VNC") {
		return consolenote.VNC{}, fmt.Errorf("instance %s has no GRAPHICS of TYPE VNC: %w", id, cloud.ErrNoVNC)
	}
	port := atoi(g.get("PORT"))
	host := p.vncHost(&v)
	if v.State != stActive || host == "" || port <= 0 {
		return consolenote.VNC{}, fmt.Errorf("instance %s is %s: %w", id, stateName(v.State, v.LCM), cloud.ErrNoVNC)
	}
	return consolenote.VNC{Instance: id, Node: host, Host: host, Port: port, Password: g.get("PASSWD")}, nil
}

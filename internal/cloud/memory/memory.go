// Package memory is an in-memory cloud.Provider with EC2's behaviour:
// its states and their order, the not-found and incorrect-state contract,
// tags set at creation, block-device mappings that create volumes at
// launch — what the conformance suite (package cloudtest) checks — with no
// cloud and no HTTP behind it. Each describe call of a resource moves it
// one state on (creating → available, pending → running, attaching →
// attached, shutting-down → terminated…), so waits are short and
// deterministic. For engine and workflow tests.
package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
)

// Provider is an in-memory cloud. The zero value is not usable: use New.
type Provider struct {
	mu        sync.Mutex
	seq       int
	instances map[string]*instance
	volumes   map[string]*volume
	snapshots map[string]*snapshot
	images    map[string]*image
	// Console, if set, is an instance's console output; call counts the
	// ConsoleOutput calls for that instance (from 1).
	Console  func(id string, call int) []byte
	consoles map[string]int
}

// step is a state change that happens at the next describe.
type steps []func()

// next runs the first pending change.
func (s *steps) next() {
	if len(*s) > 0 {
		f := (*s)[0]
		*s = (*s)[1:]
		f()
	}
}

type instance struct {
	cloud.Instance
	p *Provider
	steps
}

type volume struct {
	cloud.Volume
	deleteOnTerm *bool
	steps
}

type snapshot struct {
	cloud.Snapshot
	steps
}

type image struct {
	cloud.Image
	steps
}

// New returns an empty cloud.
func New() *Provider {
	return &Provider{
		instances: map[string]*instance{},
		volumes:   map[string]*volume{},
		snapshots: map[string]*snapshot{},
		images:    map[string]*image{},
		consoles:  map[string]int{},
	}
}

var _ cloud.Provider = (*Provider)(nil)

// Name implements cloud.Provider.
func (p *Provider) Name() string { return "memory" }

func (p *Provider) newID(prefix string) string {
	p.seq++
	return fmt.Sprintf("%s-%08x", prefix, p.seq)
}

func notFound(kind, id string) error { return fmt.Errorf("%s %s: %w", kind, id, cloud.ErrNotFound) }

func incorrect(kind, id, state string) error {
	return fmt.Errorf("%s %s is %s: %w", kind, id, state, cloud.ErrIncorrectState)
}

func copyTags(t cloud.Tags) cloud.Tags {
	c := cloud.Tags{}
	maps.Copy(c, t)
	return c
}

// describer is a resource as a describe call shows it, which then moves
// one state on.
type describer[T any] interface {
	describe() T
	next()
}

// get describes the resource id of kind in m.
func get[T any, R describer[T]](p *Provider, m map[string]R, kind, id string) (T, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := m[id]
	if !ok {
		var zero T
		return zero, notFound(kind, id)
	}
	out := r.describe()
	r.next()
	return out, nil
}

// --- instances ---

// RunInstance implements cloud.Instances. The image, if any, must be
// available; volumes named in the spec must be snapshots ("snap-…": a new
// volume from it), ephemeralN or none (Capabilities.AttachExistingAtLaunch
// is false, as on EC2); a size without an ID creates an empty volume.
func (p *Provider) RunInstance(_ context.Context, spec cloud.InstanceSpec) (cloud.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if spec.ImageID != "" {
		im, ok := p.images[spec.ImageID]
		if !ok {
			return cloud.Instance{}, notFound("image", spec.ImageID)
		}
		if im.State != cloud.ImageAvailable {
			return cloud.Instance{}, incorrect("image", im.ID, im.State)
		}
	} else if spec.KernelID == "" {
		return cloud.Instance{}, fmt.Errorf("instance %s: neither an image nor a kernel", spec.Name)
	}
	type bdm struct {
		a    cloud.Attachment
		size int
	}
	var create []bdm
	for _, a := range spec.Volumes {
		switch id := a.VolumeID; {
		case id == "" && a.SizeGiB > 0:
			create = append(create, bdm{a, a.SizeGiB})
		case strings.HasPrefix(id, "snap-"):
			s, ok := p.snapshots[id]
			if !ok {
				return cloud.Instance{}, notFound("snapshot", id)
			}
			create = append(create, bdm{a, max(a.SizeGiB, p.snapshotSize(s))})
		case strings.HasPrefix(id, "ephemeral") || id == "none":
		default:
			return cloud.Instance{}, fmt.Errorf("instance %s: volume %s at %s: an existing volume cannot be attached at launch", spec.Name, id, a.Device)
		}
	}
	in := &instance{p: p, Instance: cloud.Instance{
		ID: p.newID("i"), State: cloud.InstancePending, ImageID: spec.ImageID,
		Launched: time.Now().UTC(), Tags: copyTags(spec.Tags),
	}}
	for _, b := range create {
		v := &volume{Volume: cloud.Volume{ID: p.newID("vol"), State: cloud.VolumeInUse, SizeGiB: b.size, InstanceID: in.ID, AttachState: "attached",
			Attachment: &cloud.Attachment{Device: b.a.Device}, Tags: cloud.Tags{}}}
		v.Attachment.VolumeID = v.ID
		v.deleteOnTerm = b.a.DeleteOnTermination
		if v.deleteOnTerm == nil {
			v.deleteOnTerm = cloud.Bool(true)
		}
		p.volumes[v.ID] = v
	}
	in.steps = steps{func() { in.State = cloud.InstanceRunning }}
	p.instances[in.ID] = in
	return in.describe(), nil
}

func (p *Provider) snapshotSize(s *snapshot) int {
	if v, ok := p.volumes[s.VolumeID]; ok {
		return v.SizeGiB
	}
	return 1
}

// describe is the instance with the volumes attached to it.
func (in *instance) describe() cloud.Instance {
	p := in.p
	out := in.Instance
	out.Tags = copyTags(in.Tags)
	out.Volumes = nil
	for _, v := range p.sortedVolumes() {
		if v.InstanceID == in.ID && v.Attachment != nil {
			a := *v.Attachment
			a.DeleteOnTermination = v.deleteOnTerm
			out.Volumes = append(out.Volumes, a)
		}
	}
	return out
}

func (p *Provider) sortedVolumes() []*volume {
	vs := make([]*volume, 0, len(p.volumes))
	for _, v := range p.volumes {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b *volume) int { return strings.Compare(a.ID, b.ID) })
	return vs
}

// Instance implements cloud.Instances.
func (p *Provider) Instance(_ context.Context, id string) (cloud.Instance, error) {
	return get(p, p.instances, "instance", id)
}

// TerminateInstance implements cloud.Instances: shutting-down, then
// terminated, when the volumes its launch created with
// DeleteOnTermination go and the others are detached. A terminated
// instance stays listed.
func (p *Provider) TerminateInstance(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	in, ok := p.instances[id]
	if !ok {
		return notFound("instance", id)
	}
	if in.State == cloud.InstanceTerminated || in.State == cloud.InstanceShuttingDown {
		return nil
	}
	in.State = cloud.InstanceShuttingDown
	in.steps = steps{func() {
		in.State = cloud.InstanceTerminated
		for _, v := range p.sortedVolumes() {
			if v.InstanceID != id {
				continue
			}
			if v.deleteOnTerm != nil && *v.deleteOnTerm {
				delete(p.volumes, v.ID)
				continue
			}
			v.detach()
		}
	}}
	return nil
}

// ConsoleOutput implements cloud.Instances (Provider.Console, or nothing).
func (p *Provider) ConsoleOutput(_ context.Context, id string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.instances[id]; !ok {
		return nil, notFound("instance", id)
	}
	p.consoles[id]++
	if p.Console == nil {
		return nil, nil
	}
	return p.Console(id, p.consoles[id]), nil
}

// --- volumes ---

// CreateVolume implements cloud.Volumes: creating, then available.
func (p *Provider) CreateVolume(_ context.Context, spec cloud.VolumeSpec) (cloud.Volume, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size := spec.SizeGiB
	if spec.SnapshotID != "" {
		s, ok := p.snapshots[spec.SnapshotID]
		if !ok {
			return cloud.Volume{}, notFound("snapshot", spec.SnapshotID)
		}
		size = max(size, p.snapshotSize(s))
	}
	if size <= 0 {
		return cloud.Volume{}, fmt.Errorf("volume: size %d GiB: want at least 1", size)
	}
	v := &volume{Volume: cloud.Volume{ID: p.newID("vol"), State: cloud.VolumeCreating, SizeGiB: size, Tags: copyTags(spec.Tags)}}
	v.steps = steps{func() { v.State = cloud.VolumeAvailable }}
	p.volumes[v.ID] = v
	return v.describe(), nil
}

func (v *volume) describe() cloud.Volume {
	out := v.Volume
	out.Tags = copyTags(v.Tags)
	if v.Attachment != nil {
		a := *v.Attachment
		out.Attachment = &a
	}
	return out
}

func (v *volume) detach() {
	v.State, v.Attachment, v.AttachState, v.InstanceID, v.deleteOnTerm = cloud.VolumeAvailable, nil, "", "", nil
}

// Volume implements cloud.Volumes.
func (p *Provider) Volume(_ context.Context, id string) (cloud.Volume, error) {
	return get(p, p.volumes, "volume", id)
}

// AttachVolume implements cloud.Volumes: attaching, then attached.
func (p *Provider) AttachVolume(_ context.Context, volumeID, instanceID, device string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.volumes[volumeID]
	if !ok {
		return notFound("volume", volumeID)
	}
	in, ok := p.instances[instanceID]
	if !ok {
		return notFound("instance", instanceID)
	}
	if v.State != cloud.VolumeAvailable {
		return incorrect("volume", v.ID, v.State)
	}
	if in.State != cloud.InstancePending && in.State != cloud.InstanceRunning && in.State != cloud.InstanceStopped {
		return incorrect("instance", in.ID, in.State)
	}
	v.State, v.InstanceID, v.AttachState = cloud.VolumeInUse, in.ID, "attaching"
	v.Attachment = &cloud.Attachment{VolumeID: v.ID, Device: device, DeleteOnTermination: cloud.Bool(false)}
	v.deleteOnTerm = cloud.Bool(false)
	v.steps = steps{func() { v.AttachState = "attached" }}
	return nil
}

// DetachVolume implements cloud.Volumes: detaching, then available.
func (p *Provider) DetachVolume(_ context.Context, volumeID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.volumes[volumeID]
	if !ok {
		return notFound("volume", volumeID)
	}
	if v.Attachment == nil || v.AttachState == "detaching" {
		return incorrect("volume", v.ID, v.State)
	}
	v.AttachState = "detaching"
	v.steps = steps{v.detach}
	return nil
}

// DeleteVolume implements cloud.Volumes: deleting, then deleted, then gone.
func (p *Provider) DeleteVolume(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.volumes[id]
	if !ok {
		return notFound("volume", id)
	}
	switch v.State {
	case cloud.VolumeDeleting, cloud.VolumeDeleted:
		return nil
	case cloud.VolumeAvailable, cloud.VolumeError:
	default:
		return incorrect("volume", id, v.State)
	}
	v.State = cloud.VolumeDeleting
	v.steps = steps{func() { v.State = cloud.VolumeDeleted }, func() { delete(p.volumes, id) }}
	return nil
}

// --- snapshots ---

// CreateSnapshot implements cloud.Snapshots: pending 0 %, 50 %, then
// completed 100 %.
func (p *Provider) CreateSnapshot(_ context.Context, volumeID, description string, tags cloud.Tags) (cloud.Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.volumes[volumeID]; !ok {
		return cloud.Snapshot{}, notFound("volume", volumeID)
	}
	s := &snapshot{Snapshot: cloud.Snapshot{ID: p.newID("snap"), VolumeID: volumeID, State: cloud.SnapshotPending, Tags: copyTags(tags)}}
	s.steps = steps{
		func() { s.Progress = 50 },
		func() { s.State, s.Progress = cloud.SnapshotCompleted, 100 },
	}
	p.snapshots[s.ID] = s
	return s.describe(), nil
}

func (s *snapshot) describe() cloud.Snapshot {
	out := s.Snapshot
	out.Tags = copyTags(s.Tags)
	return out
}

// Snapshot implements cloud.Snapshots.
func (p *Provider) Snapshot(_ context.Context, id string) (cloud.Snapshot, error) {
	return get(p, p.snapshots, "snapshot", id)
}

// DeleteSnapshot implements cloud.Snapshots; the snapshot of a registered
// image is in use (as on EC2).
func (p *Provider) DeleteSnapshot(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.snapshots[id]; !ok {
		return notFound("snapshot", id)
	}
	for _, im := range p.images {
		if im.SnapshotID == id {
			return fmt.Errorf("snapshot %s is used by image %s: %w", id, im.ID, cloud.ErrIncorrectState)
		}
	}
	delete(p.snapshots, id)
	return nil
}

// --- images ---

// RegisterImage implements cloud.Images: pending, then available.
func (p *Provider) RegisterImage(_ context.Context, spec cloud.ImageSpec) (cloud.Image, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if spec.SnapshotID != "" {
		s, ok := p.snapshots[spec.SnapshotID]
		if !ok {
			return cloud.Image{}, notFound("snapshot", spec.SnapshotID)
		}
		if s.State != cloud.SnapshotCompleted {
			return cloud.Image{}, incorrect("snapshot", s.ID, s.State)
		}
	}
	for _, im := range p.images {
		if im.Name == spec.Name {
			return cloud.Image{}, fmt.Errorf("image name %q: in use by %s", spec.Name, im.ID)
		}
	}
	im := &image{Image: cloud.Image{ID: p.newID("ami"), Name: spec.Name, Description: spec.Description, State: cloud.ImagePending,
		SnapshotID: spec.SnapshotID, Created: time.Now().UTC(), Tags: copyTags(spec.Tags)}}
	im.steps = steps{func() { im.State = cloud.ImageAvailable }}
	p.images[im.ID] = im
	return im.describe(), nil
}

func (im *image) describe() cloud.Image {
	out := im.Image
	out.Tags = copyTags(im.Tags)
	return out
}

// Image implements cloud.Images.
func (p *Provider) Image(_ context.Context, id string) (cloud.Image, error) {
	return get(p, p.images, "image", id)
}

// Images implements cloud.Images: those carrying all of tags, by ID.
func (p *Provider) Images(_ context.Context, tags cloud.Tags) ([]cloud.Image, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []cloud.Image{}
	for _, im := range p.images {
		if hasAll(im.Tags, tags) {
			out = append(out, im.describe())
		}
	}
	slices.SortFunc(out, func(a, b cloud.Image) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func hasAll(have, want cloud.Tags) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// DeregisterImage implements cloud.Images.
func (p *Provider) DeregisterImage(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.images[id]; !ok {
		return notFound("image", id)
	}
	delete(p.images, id)
	return nil
}

// --- tags ---

// tagsOf returns the tag map of the resource id names and its kind.
func (p *Provider) tagsOf(id string) (cloud.Tags, string, bool) {
	if in, ok := p.instances[id]; ok {
		return in.Tags, "instance", true
	}
	if v, ok := p.volumes[id]; ok {
		return v.Tags, "volume", true
	}
	if s, ok := p.snapshots[id]; ok {
		return s.Tags, "snapshot", true
	}
	if im, ok := p.images[id]; ok {
		return im.Tags, "image", true
	}
	return nil, "", false
}

// Tag implements cloud.Tagger.
func (p *Provider) Tag(_ context.Context, id string, tags cloud.Tags) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	have, _, ok := p.tagsOf(id)
	if !ok {
		return notFound("resource", id)
	}
	for k, v := range tags {
		have[k] = v
	}
	return nil
}

// FindTagged implements cloud.Tagger: resources with tag key (and value,
// unless ""), by ID.
func (p *Provider) FindTagged(_ context.Context, key, value string) ([]cloud.Resource, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, m := range []func() []string{
		func() []string { return keys(p.instances) },
		func() []string { return keys(p.volumes) },
		func() []string { return keys(p.snapshots) },
		func() []string { return keys(p.images) },
	} {
		ids = append(ids, m()...)
	}
	slices.Sort(ids)
	out := []cloud.Resource{}
	for _, id := range ids {
		tags, kind, _ := p.tagsOf(id)
		if v, ok := tags[key]; ok && (value == "" || v == value) {
			out = append(out, cloud.Resource{Kind: kind, ID: id, Tags: copyTags(tags)})
		}
	}
	return out, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

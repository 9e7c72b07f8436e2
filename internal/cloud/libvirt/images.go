package libvirt

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/cloud"
)

// CreateSnapshot implements cloud.Snapshots: the volume is converted to a
// sparse qcow2 in the image pool by qemu-img (holes are not read, zero
// blocks not written), in the background; Snapshot reports its progress.
func (p *Provider) CreateSnapshot(ctx context.Context, volumeID, description string, tags cloud.Tags) (cloud.Snapshot, error) {
	if err := p.storage(ctx); err != nil {
		return cloud.Snapshot{}, err
	}
	v, err := p.Volume(ctx, volumeID)
	if err != nil {
		return cloud.Snapshot{}, err
	}
	if v.State == cloud.VolumeInUse {
		// EC2 allows snapshots of attached volumes; a local running guest
		// could change the disk under the conversion, so refuse.
		return cloud.Snapshot{}, fmt.Errorf("volume %q: snapshot: attached to a running instance %s: %w", volumeID, v.InstanceID, cloud.ErrIncorrectState)
	}
	vrec, _ := p.reg.get("volume", volumeID)
	id := newID("snap-")
	rec := &record{Kind: "snapshot", ID: id, Volume: volumeID, Tags: tags, Created: time.Now().UTC(), Description: description,
		State: cloud.SnapshotPending, Path: filepath.Join(p.opt.ImageDir, id+".qcow2")}
	if err := p.reg.put(rec); err != nil {
		return cloud.Snapshot{}, err
	}
	p.mu.Lock()
	p.jobs[id] = true
	p.mu.Unlock()
	go p.convert(rec.ID, vrec.Path, rec.Path)
	return p.Snapshot(ctx, id)
}

var reProgress = regexp.MustCompile(`\((\d+)(?:\.\d+)?/100%\)`)

// Convert writes a sparse qcow2 copy of src at dst (through a temporary
// file), calling progress with percentages. It is the conversion behind
// snapshots and the benchmarks.
func Convert(ctx context.Context, src, dst string, progress func(int)) error {
	tmp := dst + ".tmp"
	cmd := exec.CommandContext(ctx, "qemu-img", "convert", "-p", "-W", "-m", "8", "-O", "qcow2", "-f", "raw", src, tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytesBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("qemu-img convert: %w", err)
	}
	sc := bufio.NewScanner(out)
	sc.Split(scanCR)
	for sc.Scan() {
		if m := reProgress.FindStringSubmatch(sc.Text()); m != nil && progress != nil {
			n, _ := strconv.Atoi(m[1])
			progress(n)
		}
	}
	if err := cmd.Wait(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("qemu-img convert %s: %v: %s", src, err, stderr.String())
	}
	return os.Rename(tmp, dst)
}

// virtualSize returns the size in bytes of the disk an image file holds.
func virtualSize(ctx context.Context, path string) (int64, error) {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", filepath.Base(path), err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", filepath.Base(path), err)
	}
	return info.VirtualSize, nil
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) {
	if len(w.b) < 4096 {
		w.b = append(w.b, p...)
	}
	return len(p), nil
}
func (w *bytesBuffer) String() string { return string(w.b) }

func scanCR(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		if c == '\r' || c == '\n' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func (p *Provider) convert(id, src, dst string) {
	defer func() {
		p.mu.Lock()
		delete(p.jobs, id)
		p.mu.Unlock()
	}()
	last := time.Time{}
	err := Convert(context.Background(), src, dst, func(n int) {
		if time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			p.reg.update("snapshot", id, func(r *record) { r.Progress = n })
		}
	})
	p.reg.update("snapshot", id, func(r *record) {
		if err != nil {
			r.State, r.Error = cloud.SnapshotError, err.Error()
			return
		}
		r.State, r.Progress = cloud.SnapshotCompleted, 100
	})
}

// Snapshot implements cloud.Snapshots. A pending snapshot whose conversion
// is not running in this process (kscloud was killed) is reported as
// error: the caller deletes and retakes it.
func (p *Provider) Snapshot(ctx context.Context, id string) (cloud.Snapshot, error) {
	rec, err := p.reg.get("snapshot", id)
	if err != nil {
		return cloud.Snapshot{}, err
	}
	s := cloud.Snapshot{ID: id, VolumeID: rec.Volume, State: rec.State, Progress: rec.Progress, Tags: rec.Tags}
	if s.State == cloud.SnapshotPending {
		p.mu.Lock()
		running := p.jobs[id]
		p.mu.Unlock()
		if !running {
			s.State = cloud.SnapshotError
		}
	}
	return s, nil
}

// DeleteSnapshot implements cloud.Snapshots.
func (p *Provider) DeleteSnapshot(ctx context.Context, id string) error {
	rec, err := p.reg.get("snapshot", id)
	if err != nil {
		return err
	}
	imgs, _ := p.reg.list("image")
	for _, im := range imgs {
		if im.Snapshot == id {
			return fmt.Errorf("snapshot %q: delete: in use by image %s: %w", id, im.ID, cloud.ErrIncorrectState)
		}
	}
	p.mu.Lock()
	running := p.jobs[id]
	p.mu.Unlock()
	if running {
		return fmt.Errorf("snapshot %q: delete: conversion running: %w", id, cloud.ErrIncorrectState)
	}
	os.Remove(rec.Path + ".tmp")
	if err := os.Remove(rec.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot %q: delete: %w", id, err)
	}
	return p.reg.remove(id)
}

// RegisterImage implements cloud.Images: the image is the snapshot's qcow2
// under its image name (a hard link, no copy) with its provenance beside it.
func (p *Provider) RegisterImage(ctx context.Context, spec cloud.ImageSpec) (cloud.Image, error) {
	if err := p.storage(ctx); err != nil {
		return cloud.Image{}, err
	}
	snap, err := p.reg.get("snapshot", spec.SnapshotID)
	if err != nil {
		return cloud.Image{}, err
	}
	if snap.State != cloud.SnapshotCompleted {
		return cloud.Image{}, fmt.Errorf("snapshot %q: register: %s: %w", spec.SnapshotID, snap.State, cloud.ErrIncorrectState)
	}
	if !validImageName(spec.Name) {
		return cloud.Image{}, fmt.Errorf("image %q: name must be 1–128 of [A-Za-z0-9._-]", spec.Name)
	}
	if _, err := p.imageByName(spec.Name); err == nil {
		return cloud.Image{}, fmt.Errorf("image %q: a registered image has that name: %w", spec.Name, cloud.ErrIncorrectState)
	}
	id := newID("img-")
	path := filepath.Join(p.opt.ImageDir, spec.Name+".qcow2")
	if err := os.Link(snap.Path, path); err != nil {
		return cloud.Image{}, fmt.Errorf("image %q: %w", spec.Name, err)
	}
	rec := &record{Kind: "image", ID: id, Name: spec.Name, Path: path, Snapshot: snap.ID, Description: spec.Description,
		Tags: spec.Tags, Created: time.Now().UTC(), State: cloud.ImageAvailable}
	if err := p.reg.put(rec); err != nil {
		os.Remove(path)
		return cloud.Image{}, err
	}
	return p.Image(ctx, id)
}

// WriteProvenance stores provenance (any JSON value) beside an image.
func (p *Provider) WriteProvenance(ctx context.Context, imageID string, v any) (string, error) {
	img, err := p.Image(ctx, imageID)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	path := provenancePath(img.Path)
	return path, atomicfile.Write(path, append(b, '\n'), 0o644)
}

func provenancePath(imagePath string) string {
	return imagePath[:len(imagePath)-len(filepath.Ext(imagePath))] + ".provenance.json"
}

var reImageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func validImageName(s string) bool { return reImageName.MatchString(s) }

func (p *Provider) imageByName(name string) (*record, error) {
	imgs, err := p.reg.list("image")
	if err != nil {
		return nil, err
	}
	for _, im := range imgs {
		if im.Name == name {
			return im, nil
		}
	}
	return nil, fmt.Errorf("image %q: %w", name, cloud.ErrNotFound)
}

// Image implements cloud.Images; id may also be the image's name.
func (p *Provider) Image(ctx context.Context, id string) (cloud.Image, error) {
	rec, err := p.reg.get("image", id)
	if err != nil {
		if byName, nerr := p.imageByName(id); nerr == nil {
			rec, err = byName, nil
		}
	}
	if err != nil {
		return cloud.Image{}, err
	}
	return cloud.Image{ID: rec.ID, Name: rec.Name, Description: rec.Description, State: rec.State, SnapshotID: rec.Snapshot,
		Created: rec.Created, Tags: rec.Tags, Path: rec.Path}, nil
}

// Images implements cloud.Images (all images carrying every tag given).
func (p *Provider) Images(ctx context.Context, tags cloud.Tags) ([]cloud.Image, error) {
	recs, err := p.reg.list("image")
	if err != nil {
		return nil, err
	}
	var out []cloud.Image
next:
	for _, r := range recs {
		for k, v := range tags {
			if r.Tags[k] != v {
				continue next
			}
		}
		out = append(out, cloud.Image{ID: r.ID, Name: r.Name, Description: r.Description, State: r.State, SnapshotID: r.Snapshot,
			Created: r.Created, Tags: r.Tags, Path: r.Path})
	}
	return out, nil
}

// DeregisterImage implements cloud.Images: the image name and provenance
// go; the snapshot stays until deleted.
func (p *Provider) DeregisterImage(ctx context.Context, id string) error {
	img, err := p.Image(ctx, id)
	if err != nil {
		return err
	}
	insts, _ := p.reg.list("instance")
	for _, in := range insts {
		if !in.Terminated && in.Image == img.ID {
			return fmt.Errorf("image %q: deregister: instance %s runs a clone of it: %w", id, in.ID, cloud.ErrIncorrectState)
		}
	}
	if err := os.Remove(img.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image %q: deregister: %w", id, err)
	}
	// The provenance goes before the record: a failure leaves the image
	// registered, and deregistering it again finishes the job.
	if err := os.Remove(provenancePath(img.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image %q: deregister: provenance: %w", id, err)
	}
	return p.reg.remove(img.ID)
}

package libvirt

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/cloud"
)

// record is the registry entry of one local resource: what libvirt does
// not keep (tags, attachments, image names, snapshot jobs).
type record struct {
	Kind    string     `json:"kind"`
	ID      string     `json:"id"`
	Name    string     `json:"name,omitempty"`
	Path    string     `json:"path,omitempty"` // volume/snapshot/image file
	SizeGiB int        `json:"size_gib,omitempty"`
	Tags    cloud.Tags `json:"tags,omitempty"`
	Created time.Time  `json:"created"`
	// Volumes: the instance it is attached to, the device as the caller
	// named it (/dev/sdf), and the disk's target in the domain (vdb, sdf).
	Instance string `json:"instance,omitempty"`
	Device   string `json:"device,omitempty"`
	Target   string `json:"target,omitempty"`
	// DeleteOnTermination: a volume the instance's launch created, removed
	// when the instance is terminated.
	DeleteOnTermination bool `json:"delete_on_termination,omitempty"`
	// Instances.
	Console     string   `json:"console,omitempty"`
	Volumes     []string `json:"volumes,omitempty"`
	OwnedVolume string   `json:"owned_volume,omitempty"` // overlay root disk removed with the instance
	Image       string   `json:"image,omitempty"`        // the image it is a clone of
	InPlace     bool     `json:"in_place,omitempty"`
	Persistent  bool     `json:"persistent,omitempty"`
	Terminated  bool     `json:"terminated,omitempty"`
	StateReason string   `json:"state_reason,omitempty"`
	VNC         string   `json:"vnc,omitempty"`
	// Snapshots and images.
	Volume      string `json:"volume,omitempty"`
	State       string `json:"state,omitempty"`
	Progress    int    `json:"progress,omitempty"`
	Description string `json:"description,omitempty"`
	Snapshot    string `json:"snapshot,omitempty"`
	Error       string `json:"error,omitempty"`
}

// registry is a directory of JSON records, one per resource, each
// replaced atomically.
type registry struct {
	dir string
	mu  sync.Mutex
}

func newID(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func (r *registry) path(id string) string { return filepath.Join(r.dir, id+".json") }

func validID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/\\") && !strings.HasPrefix(id, ".")
}

func (r *registry) get(kind, id string) (*record, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%s %q: %w", kind, id, cloud.ErrNotFound)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := os.ReadFile(r.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %q: %w", kind, id, cloud.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s %q: registry: %w", kind, id, err)
	}
	if rec.Kind != kind {
		return nil, fmt.Errorf("%s %q: %w", kind, id, cloud.ErrNotFound)
	}
	return &rec, nil
}

func (r *registry) put(rec *record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	// Made by the first record, not when the provider opens: a command
	// that only reads creates nothing.
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return atomicfile.Write(r.path(rec.ID), append(b, '\n'), 0o600)
}

func (r *registry) update(kind, id string, fn func(*record)) error {
	rec, err := r.get(kind, id)
	if err != nil {
		return err
	}
	fn(rec)
	return r.put(rec)
}

func (r *registry) remove(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := os.Remove(r.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (r *registry) list(kind string) ([]*record, error) {
	r.mu.Lock()
	ents, err := os.ReadDir(r.dir)
	r.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing recorded yet
	}
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		id := strings.TrimSuffix(e.Name(), ".json")
		r.mu.Lock()
		b, err := os.ReadFile(r.path(id))
		r.mu.Unlock()
		if err != nil {
			continue
		}
		var rec record
		if json.Unmarshal(b, &rec) != nil || (kind != "" && rec.Kind != kind) {
			continue
		}
		out = append(out, &rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

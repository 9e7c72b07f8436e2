package install

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
)

// Build statuses.
const (
	StatusRunning     = "running"
	StatusDone        = "done"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
	StatusCleaned     = "cleaned"
)

// Resource kinds.
const (
	KindInstance = "instance"
	KindVolume   = "volume"
	KindSnapshot = "snapshot"
	KindImage    = "image"
)

// Resource is a cloud resource a build created.
type Resource struct {
	Kind    string    `json:"kind"`
	ID      string    `json:"id"`
	Role    string    `json:"role"`           // installer, target, root, snapshot, image
	Step    string    `json:"step"`           // the step that created it
	Keep    bool      `json:"keep,omitempty"` // part of the result: not removed on success
	Deleted bool      `json:"deleted,omitempty"`
	Created time.Time `json:"created"`
}

// Build is the persisted state of one workflow run.
type Build struct {
	ID        string            `json:"id"`
	Kind      string            `json:"kind"` // bake | run
	Provider  string            `json:"provider"`
	Status    string            `json:"status"`
	Error     string            `json:"error,omitempty"`
	Created   time.Time         `json:"created"`
	Updated   time.Time         `json:"updated"`
	Spec      Spec              `json:"spec"`
	Cloud     *CloudRef         `json:"cloud,omitempty"` // where its resources live
	Steps     map[string]string `json:"steps"`           // step → running|done|failed
	Resources []Resource        `json:"resources"`
	// Plan is what the launch resolved before any step ran (nil until
	// then); a resume runs exactly it.
	Plan *Plan `json:"plan,omitempty"`
	// Values are step outputs later steps read (e.g. "target.device").
	Values map[string]string `json:"values,omitempty"`
	Result *Result           `json:"result,omitempty"`

	mu   sync.Mutex
	save func(*Build) error // set by Engine.Run
}

// RecordCreated records what a create call returned and saves at once —
// also when the call failed after the resource came to exist (its tagging
// failed): cleanup must know it. It returns createErr, else the save's error.
func (b *Build) RecordCreated(r Resource, createErr error) error {
	if r.ID == "" {
		return createErr
	}
	b.Record(r)
	if err := b.Save(); createErr == nil {
		return err
	}
	return createErr
}

// CloudRef says which cloud a build's resources live on, so that --resume,
// cleanup and vnc reach the same one whatever the shell's environment says
// by then. It never holds credentials (a eucarc is named, not read).
type CloudRef struct {
	Connect   string `json:"connect,omitempty"`   // libvirt URI
	Endpoint  string `json:"endpoint,omitempty"`  // EC2 API URL ("" = AWS by region)
	Region    string `json:"region,omitempty"`    // EC2 region
	Signature string `json:"signature,omitempty"` // v2 or v4
	Eucarc    string `json:"eucarc,omitempty"`    // the eucarc the keys came from, if any
}

// Where is the cloud in one phrase, for messages.
func (c *CloudRef) Where() string {
	switch {
	case c == nil:
		return "an unrecorded cloud"
	case c.Connect != "":
		return "libvirt " + c.Connect
	case c.Endpoint != "":
		return "endpoint " + c.Endpoint + " (region " + c.Region + ")"
	}
	return "AWS region " + c.Region
}

// Save persists the build now (steps call it right after recording a
// resource, before waiting on it).
func (b *Build) Save() error {
	if b.save == nil {
		return nil
	}
	return b.save(b)
}

// Result is what a finished build produced.
type Result struct {
	ImageID        string      `json:"image_id,omitempty"`
	ImageName      string      `json:"image_name,omitempty"`
	ImagePath      string      `json:"image_path,omitempty"`
	InstanceID     string      `json:"instance_id,omitempty"`
	Addresses      []string    `json:"addresses,omitempty"`
	VNC            string      `json:"vnc,omitempty"`
	Marker         string      `json:"marker,omitempty"` // the installed system's kscloud-installed line
	Provenance     *Provenance `json:"provenance,omitempty"`
	InstallSeconds float64     `json:"install_seconds,omitempty"`
	// OverheadSeconds is kscloud's own time after the installer powered
	// off until the image was registered (detach, snapshot, register).
	OverheadSeconds float64 `json:"overhead_seconds,omitempty"`
}

// NewBuild returns a build with a fresh id.
func NewBuild(kind, provider string, spec Spec) *Build {
	var b [6]byte
	rand.Read(b[:])
	now := time.Now().UTC()
	return &Build{ID: "ks-" + now.Format("20060102") + "-" + hex.EncodeToString(b[:]), Kind: kind, Provider: provider,
		Status: StatusRunning, Created: now, Spec: spec, Steps: map[string]string{}, Values: map[string]string{}}
}

// Record adds a resource the moment it exists; the caller saves (Engine
// saves after every step, Recorder saves at once).
func (b *Build) Record(r Resource) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.Resources {
		if b.Resources[i].Kind == r.Kind && b.Resources[i].ID == r.ID {
			return
		}
	}
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	b.Resources = append(b.Resources, r)
}

// Resource returns the live (not deleted) resource with role, if any.
func (b *Build) Resource(role string) (Resource, bool) {
	return b.lastResource(func(r Resource) bool { return r.Role == role })
}

// lastResource is the newest resource not deleted that match accepts.
func (b *Build) lastResource(match func(Resource) bool) (Resource, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.Resources) - 1; i >= 0; i-- {
		if r := b.Resources[i]; !r.Deleted && match(r) {
			return r, true
		}
	}
	return Resource{}, false
}

// MarkDeleted records that a resource is gone.
func (b *Build) MarkDeleted(kind, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.Resources {
		if b.Resources[i].Kind == kind && b.Resources[i].ID == id {
			b.Resources[i].Deleted = true
		}
	}
}

// SetKeep marks a resource as part of the result.
func (b *Build) SetKeep(kind, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.Resources {
		if b.Resources[i].Kind == kind && b.Resources[i].ID == id {
			b.Resources[i].Keep = true
		}
	}
}

// StepDone reports whether a step finished in an earlier run.
func (b *Build) StepDone(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Steps[name] == "done"
}

func (b *Build) setStep(name, state string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Steps[name] = state
}

// Value returns a step output.
func (b *Build) Value(k string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Values[k]
}

// SetValue sets a step output.
func (b *Build) SetValue(k, v string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Values[k] = v
}

// ResourceSummary lists the resources not deleted, for people.
func (b *Build) ResourceSummary() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var parts []string
	for _, r := range b.Resources {
		if !r.Deleted {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", r.Kind, r.ID, r.Role))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// Store keeps build state files in a directory.
type Store struct {
	Dir string
	mu  sync.Mutex
}

// DefaultStateDir is /var/lib/kscloud for root, else
// $XDG_STATE_HOME/kscloud (~/.local/state/kscloud).
func DefaultStateDir() string {
	if v := os.Getenv("KSCLOUD_STATE_DIR"); v != "" {
		return v
	}
	if os.Geteuid() == 0 {
		return "/var/lib/kscloud"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "kscloud")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "kscloud")
}

// OpenStore opens (creating) the builds directory under stateDir.
func OpenStore(stateDir string) (*Store, error) {
	d := filepath.Join(stateDir, "builds")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", d, err)
	}
	return &Store{Dir: d}, nil
}

// ReadStore is the builds directory under stateDir for a command that
// only reads it (status, vnc, cleanup): unlike OpenStore it creates
// nothing, so asking on a host that never ran a build leaves no state
// directory.
func ReadStore(stateDir string) *Store {
	return &Store{Dir: filepath.Join(stateDir, "builds")}
}

// Save writes the build's state file atomically.
func (s *Store) Save(b *Build) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.mu.Lock()
	b.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(b, "", "  ")
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.Dir, b.ID+".json"), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("build %s: state file: %w", b.ID, err)
	}
	return nil
}

// ErrNoBuild means no state file has that id.
var ErrNoBuild = errors.New("no such build")

// Load reads a build's state file.
func (s *Store) Load(id string) (*Build, error) {
	if id == "" || strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
		return nil, fmt.Errorf("build %q: bad id", id)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir, id+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("build %q: %w (in %s)", id, ErrNoBuild, s.Dir)
	}
	if err != nil {
		return nil, err
	}
	var b Build
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("build %q: state file: %w", id, err)
	}
	if b.Steps == nil {
		b.Steps = map[string]string{}
	}
	if b.Values == nil {
		b.Values = map[string]string{}
	}
	if err := b.planFromValues(filepath.Join(s.Dir, id+".d")); err != nil {
		return nil, fmt.Errorf("build %q: state file: %w", id, err)
	}
	return &b, nil
}

// List returns every build, newest first.
func (s *Store) List() ([]*Build, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no builds directory (ReadStore): no builds
	}
	if err != nil {
		return nil, err
	}
	var out []*Build
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := s.Load(strings.TrimSuffix(e.Name(), ".json"))
		if err == nil {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

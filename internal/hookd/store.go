package hookd

import (
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
	"github.com/kscloud/kscloud/internal/hookapi"
	"github.com/kscloud/kscloud/internal/launch"
)

// Phases of an install.
const (
	PhaseInstalling = "installing" // the installer domain runs
	PhaseFinishing  = "finishing"  // installer ended; switching to the final domain
	PhaseFinal      = "final"      // in place: the installed system runs from its disk
	PhaseFinished   = "finished"   // bake: the installer powered off; the disk holds the result
	PhaseFailed     = "failed"
	PhaseCleaned    = "cleaned"
)

// Store is the persisted record of installs: one JSON file per instance in
// DIR/instances, each replaced atomically, so a daemon killed at any point
// restarts with every install it knew.
type Store struct {
	dir string
	mu  sync.Mutex
	m   map[string]hookapi.InstanceStatus
	now func() time.Time
}

// OpenStore loads the records under dir (creating it).
func OpenStore(dir string) (*Store, error) {
	d := filepath.Join(dir, "instances")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", d, err)
	}
	s := &Store{dir: d, m: map[string]hookapi.InstanceStatus{}, now: time.Now}
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", d, err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("state %s: %w", e.Name(), err)
		}
		var st hookapi.InstanceStatus
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("state %s: %w", filepath.Join(d, e.Name()), err)
		}
		s.m[st.Instance] = st
	}
	return s, nil
}

func (s *Store) path(name string) string {
	return filepath.Join(s.dir, filepath.Base(name)+".json")
}

func (s *Store) put(st hookapi.InstanceStatus) error {
	st.UpdatedAt = s.now()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path(st.Instance), append(b, '\n'), 0o600); err != nil {
		return err
	}
	s.m[st.Instance] = st
	return nil
}

// Started records a fresh rewrite.
func (s *Store) Started(o *launch.Outcome) error {
	s.Remember(o)
	return s.Persist(o.Instance)
}

// Remember records a fresh rewrite in memory only; Persist writes it. The
// hook server answers the NC between the two, so the launch does not wait
// for the state file's fsync, while the lifecycle follower, which reads
// memory, already knows the install when the domain starts.
func (s *Store) Remember(o *launch.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.m[o.Instance] = hookapi.InstanceStatus{Outcome: *o, Phase: PhaseInstalling, StartedAt: now, UpdatedAt: now}
}

// Persist writes the record of name to its state file.
func (s *Store) Persist(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[name]
	if !ok {
		return fmt.Errorf("instance %q: not known", name)
	}
	return s.put(st)
}

// Update applies fn to the record of name and persists it.
func (s *Store) Update(name string, fn func(*hookapi.InstanceStatus)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[name]
	if !ok {
		return fmt.Errorf("instance %q: not known", name)
	}
	fn(&st)
	return s.put(st)
}

// Note applies fn to the record in memory only (a transient phase that a
// restart recomputes anyway); the next Update persists it.
func (s *Store) Note(name string, fn func(*hookapi.InstanceStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[name]; ok {
		fn(&st)
		s.m[name] = st
	}
}

// Cleaned forgets an instance (euca-nc-pre-clean).
func (s *Store) Cleaned(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Get returns the record of one instance.
func (s *Store) Get(name string) (hookapi.InstanceStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[name]
	return st, ok
}

// List returns every record, sorted by instance.
func (s *Store) List() []hookapi.InstanceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]hookapi.InstanceStatus, 0, len(s.m))
	for _, st := range s.m {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

package hookd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
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
//
// The map is guarded by mu, held only for memory; a state file is written
// under its instance's own lock, so one slow fsync never holds up answers
// for other instances (nor the hook's answer that Remember precedes).
type Store struct {
	dir string
	mu  sync.Mutex
	m   map[string]hookproto.InstanceStatus
	now func() time.Time

	fileMu sync.Mutex
	files  map[string]*sync.Mutex // per-instance state file lock
}

// OpenStore loads the records under dir (creating it). A state file that
// cannot be read as a record (empty, truncated, not JSON) is moved aside
// to NAME.corrupt with one log line, and the daemon starts without it.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	d := filepath.Join(dir, "instances")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", d, err)
	}
	s := &Store{dir: d, m: map[string]hookproto.InstanceStatus{}, now: time.Now, files: map[string]*sync.Mutex{}}
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", d, err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(d, e.Name())
		b, err := atomicfile.ReadRegular(p, 16<<20)
		var st hookproto.InstanceStatus
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err == nil && st.Instance == "" {
			err = errors.New("no instance name")
		}
		if err != nil {
			aside := p + ".corrupt"
			if rerr := os.Rename(p, aside); rerr != nil {
				return nil, fmt.Errorf("state %s: %v; moving it aside: %w", p, err, rerr)
			}
			log.Error("state file unreadable: moved aside, install forgotten", "file", p, "moved_to", aside, "err", err)
			continue
		}
		s.m[st.Instance] = st
	}
	return s, nil
}

func (s *Store) path(name string) string {
	return filepath.Join(s.dir, filepath.Base(name)+".json")
}

// fileLock returns the lock of name's state file.
func (s *Store) fileLock(name string) *sync.Mutex {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	m, ok := s.files[name]
	if !ok {
		m = new(sync.Mutex)
		s.files[name] = m
	}
	return m
}

// persist writes the current record of name, under name's file lock: the
// record is taken after the lock, so the last writer writes the newest.
func (s *Store) persist(name string) error {
	fl := s.fileLock(name)
	fl.Lock()
	defer fl.Unlock()
	s.mu.Lock()
	st, ok := s.m[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("instance %q: not known", name)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path(st.Instance), append(b, '\n'), 0o600)
}

// Started records a fresh rewrite.
func (s *Store) Started(o *preboot.Outcome) error {
	s.Remember(o)
	return s.Persist(o.Instance)
}

// Remember records a fresh rewrite in memory only; Persist writes it. The
// hook server answers the NC between the two, so the launch does not wait
// for the state file's fsync, while the lifecycle follower, which reads
// memory, already knows the install when the domain starts.
func (s *Store) Remember(o *preboot.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.m[o.Instance] = hookproto.InstanceStatus{Outcome: *o, Phase: PhaseInstalling, StartedAt: now, UpdatedAt: now}
}

// Persist writes the record of name to its state file.
func (s *Store) Persist(name string) error { return s.persist(name) }

// Update applies fn to the record of name and persists it.
func (s *Store) Update(name string, fn func(*hookproto.InstanceStatus)) error {
	s.mu.Lock()
	st, ok := s.m[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("instance %q: not known", name)
	}
	fn(&st)
	st.UpdatedAt = s.now()
	s.m[name] = st
	s.mu.Unlock()
	return s.persist(name)
}

// Note applies fn to the record in memory only (a transient phase that a
// restart recomputes anyway); the next Update persists it.
func (s *Store) Note(name string, fn func(*hookproto.InstanceStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[name]; ok {
		fn(&st)
		s.m[name] = st
	}
}

// Cleaned forgets an instance (euca-nc-pre-clean).
func (s *Store) Cleaned(name string) error {
	fl := s.fileLock(name)
	fl.Lock()
	defer fl.Unlock()
	s.mu.Lock()
	delete(s.m, name)
	s.mu.Unlock()
	s.fileMu.Lock()
	delete(s.files, name)
	s.fileMu.Unlock()
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Get returns the record of one instance.
func (s *Store) Get(name string) (hookproto.InstanceStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[name]
	return st, ok
}

// List returns every record, sorted by instance.
func (s *Store) List() []hookproto.InstanceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]hookproto.InstanceStatus, 0, len(s.m))
	for _, st := range s.m {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

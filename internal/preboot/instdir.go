package preboot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/config"
)

// ErrLocked marks an instance whose lock another process holds past the
// hook's time.
var ErrLocked = errors.New("locked by another process")

// instanceDir is an instance directory held open (see PreBootContext).
type instanceDir struct {
	*atomicfile.Dir
	// owner is the directory's owner and group: the NC's user, whose
	// credentials bound what is read by a path from instance.xml, and who
	// owns what nchookd creates there.
	owner atomicfile.Owner
	roots []string // the instances root it lies below, resolved and as configured
}

// testPause, when set by a test, is called at named points of a pre-boot
// with the instance directory, so a test can act between two steps
// deterministically (no sleep races).
var testPause = func(point, dir string) {}

// openInstanceDir opens dir, which must lie below one of the configured
// instances roots, walking down from the root one directory at a time
// without following symlinks. Every directory from the root down must be
// owned by root or by the one user who owns the instance directory (the
// NC's user) and writable by no one else.
func openInstanceDir(cfg *config.Config, dir string) (*instanceDir, error) {
	if dir == "" {
		return nil, fmt.Errorf("no instance directory given")
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("instance directory %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	for _, root := range cfg.Hook.InstancesRoot {
		for _, r := range rootForms(root) {
			rel, err := filepath.Rel(r, dir)
			if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
				continue
			}
			d, err := walkDown(r, rel, dir)
			if err != nil {
				return nil, err
			}
			d.roots = []string{r, filepath.Clean(root)}
			return d, nil
		}
	}
	return nil, fmt.Errorf("instance directory %s: %w (%s)", dir, ErrOutsideRoot, strings.Join(cfg.Hook.InstancesRoot, ", "))
}

// rootForms is root as configured and with its symlinks resolved (the
// root is the operator's: its own path may hold symlinks).
func rootForms(root string) []string {
	forms := []string{filepath.Clean(root)}
	if r, err := filepath.EvalSymlinks(root); err == nil && r != forms[0] {
		forms = append(forms, r)
	}
	return forms
}

func walkDown(root, rel, dir string) (*instanceDir, error) {
	cur, err := atomicfile.OpenDir(root)
	if err != nil {
		return nil, fmt.Errorf("instances root %s: %w", root, err)
	}
	ncUID := -1 // the first owner other than root on the way down
	// Group-writable is as the NC makes them (0771, group eucalyptus);
	// writable by every user is not.
	check := func(d *atomicfile.Dir) (*unix.Stat_t, error) {
		st, err := d.Stat()
		if err != nil {
			return nil, err
		}
		if st.Mode&0o002 != 0 {
			return nil, fmt.Errorf("instance directory %s: %s is writable by every user: not as the NC lays out its instances", dir, d.Path())
		}
		uid := int(st.Uid)
		if uid != 0 {
			if ncUID == -1 {
				ncUID = uid
			} else if uid != ncUID {
				return nil, fmt.Errorf("instance directory %s: %s is owned by uid %d, not by root or uid %d who owns the directories above: not as the NC lays out its instances", dir, d.Path(), uid, ncUID)
			}
		}
		return st, nil
	}
	if _, err := check(cur); err != nil {
		cur.Close()
		return nil, err
	}
	parts := strings.Split(rel, "/")
	var st *unix.Stat_t
	for _, part := range parts {
		next, err := cur.Sub(part)
		cur.Close()
		if err != nil {
			return nil, fmt.Errorf("instance directory %s: %w", dir, err)
		}
		cur = next
		if st, err = check(cur); err != nil {
			cur.Close()
			return nil, err
		}
	}
	// A root-owned instance directory means files read there and images
	// named there are read as root: a non-root group must not be able
	// to place them (the NC makes its directories as its own user).
	if st.Uid == 0 && st.Gid != 0 && st.Mode&0o020 != 0 {
		cur.Close()
		return nil, fmt.Errorf("instance directory %s: owned by root but writable by group %d: not as the NC lays out its instances", dir, st.Gid)
	}
	return &instanceDir{Dir: cur, owner: atomicfile.Owner{UID: int(st.Uid), GID: int(st.Gid)}}, nil
}

// name is the instance directory's base name (the instance id).
func (d *instanceDir) name() string { return filepath.Base(d.Path()) }

func (d *instanceDir) exists(name string) bool {
	_, err := d.Lstat(name)
	return err == nil
}

// lock takes the instance's exclusive lock so that the daemon and a
// fallback hook never rewrite the same instance at once. The lock file is
// a regular file of mode 0600 owned by the directory's owner: no other
// local user can open it, so no other user can hold it. The wait is
// bounded by ctx (polled: flock has no timeout).
func (d *instanceDir) lock(ctx context.Context) (func(), error) {
	f, err := d.OpenRegular(lockFile, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("instance %s: lock: %w", d.name(), err)
	}
	fail := func(err error) (func(), error) {
		f.Close()
		return nil, fmt.Errorf("instance %s: lock %s: %w", d.name(), filepath.Join(d.Path(), lockFile), err)
	}
	// An older nchookd made it 0644 and root's: narrow it and give it to
	// the NC's user where this process may (best effort: the fallback,
	// running as the NC's user, cannot change root's file).
	// Only a file linked nowhere else: the NC's user may have hard-linked
	// another user's file there as the lock, which root must not narrow
	// nor give away.
	if st, err := f.Stat(); err == nil && st.Sys().(*syscall.Stat_t).Nlink == 1 {
		if st.Mode().Perm() != 0o600 {
			f.Chmod(0o600)
		}
		if os.Geteuid() == 0 && d.owner.UID != 0 {
			f.Chown(d.owner.UID, d.owner.GID)
		}
	}
	bo := wait.Backoff{Initial: time.Millisecond, Max: 50 * time.Millisecond}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return fail(err)
		}
		if err := wait.Sleep(ctx, bo.Next()); err != nil {
			return fail(fmt.Errorf("%w: not had within the hook's time (%v)", ErrLocked, err))
		}
	}
}

// openImage opens a kernel or initrd the rewrite reads (the base of an
// inline kickstart's initrd). An operator's catalog file is read as is.
// Any other path came from the instance (instance.xml or the NC's domain
// XML): it is opened with the instance directory owner's credentials, so
// nchookd reads nothing that user could not, and what it resolves to must
// lie in the instances root or a root listed in hook.image_roots.
func (d *instanceDir) openImage(cfg *config.Config, path string, fromCatalog bool) (*os.File, error) {
	var f *os.File
	var err error
	if fromCatalog {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	} else {
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("%s: not an absolute path", path)
		}
		f, err = atomicfile.OpenAs(path, d.owner.UID, d.owner.GID)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, atomicfile.ErrNotRegular)
	}
	if fromCatalog {
		return f, nil
	}
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	roots := append(append([]string{}, d.roots...), cfg.Hook.ImageRoots...)
	for _, r := range roots {
		for _, form := range rootForms(r) {
			if rel, err := filepath.Rel(form, real); err == nil && rel != "." && !strings.HasPrefix(rel, "../") && rel != ".." {
				return f, nil
			}
		}
	}
	f.Close()
	return nil, fmt.Errorf("%s: resolves to %s, outside the instances root and hook.image_roots: %w", path, real, fs.ErrPermission)
}

// The daemon's follower reads and writes instance directories long after
// the pre-boot; it goes through these, never through path strings, for
// the same reasons as PreBoot.

// inDir returns the name of path inside the instance directory dir, or ""
// when path is not directly in it.
func inDir(dir, path string) string {
	if filepath.Dir(filepath.Clean(path)) != filepath.Clean(dir) {
		return ""
	}
	return filepath.Base(path)
}

// ReplaceInstanceFile replaces the regular file path, which must lie
// directly in the instance directory dir, with data (keeping its owner and
// mode; a new file gets FileMode and the directory's owner). A private file
// (one holding a password) is new 0600 and loses every group and other
// permission bit the old one had.
func ReplaceInstanceFile(cfg *config.Config, dir, path string, data []byte, private bool) error {
	name := inDir(dir, path)
	if name == "" {
		return fmt.Errorf("%s: not in the instance directory %s", path, dir)
	}
	d, err := openInstanceDir(cfg, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if private {
		return d.WriteNarrowed(name, data, 0o600, 0o077, d.owner)
	}
	return d.Write(name, data, FileMode, d.owner)
}

// ReadInstanceFile reads the regular file path, which must lie directly in
// the instance directory dir; a missing file gives an error wrapping
// fs.ErrNotExist.
func ReadInstanceFile(cfg *config.Config, dir, path string, max int64) ([]byte, error) {
	name := inDir(dir, path)
	if name == "" {
		return nil, fmt.Errorf("%s: not in the instance directory %s", path, dir)
	}
	d, err := openInstanceDir(cfg, dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadRegular(name, max)
}

// OpenInstanceLog opens an instance's console log for reading: a regular
// file directly in the instance directory (no symlink followed), or one
// elsewhere (<consoleLogPath>) opened with the directory owner's
// credentials.
func OpenInstanceLog(cfg *config.Config, dir, path string) (*os.File, error) {
	d, err := openInstanceDir(cfg, dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if name := inDir(dir, path); name != "" {
		return d.OpenRegular(name, os.O_RDONLY, 0)
	}
	f, err := atomicfile.OpenAs(path, d.owner.UID, d.owner.GID)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, atomicfile.ErrNotRegular)
	}
	return f, nil
}

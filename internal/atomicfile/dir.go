package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotRegular marks a name that is not a regular file (a symlink, FIFO,
// device, socket or directory) where one is required.
var ErrNotRegular = errors.New("not a regular file")

// Dir is a directory held open: every method takes one file name (no
// slash) and acts inside the directory that was opened, whatever its path
// names later. A directory another user can write is read and written
// through a Dir, never through path strings, so that a rename or a symlink
// swap between two steps changes nothing.
type Dir struct {
	f    *os.File
	path string // for messages only
}

// OpenDir opens the directory at path (following symlinks in the path: it
// is the caller's, e.g. an operator's configured root).
func OpenDir(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// Sub opens the directory name inside d, refusing a symlink.
func (d *Dir) Sub(name string) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(d.path, name)
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP || err == unix.ENOTDIR {
			return nil, fmt.Errorf("%s: not a directory (a symlink or a file)", p)
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &Dir{f: os.NewFile(uintptr(fd), p), path: p}, nil
}

// Path is the path the directory was opened by (for messages).
func (d *Dir) Path() string { return d.path }

// File returns the open directory (for fchown, fstat and the like).
func (d *Dir) File() *os.File { return d.f }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

func (d *Dir) fd() int { return int(d.f.Fd()) }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0) {
		return fmt.Errorf("file name %q: not a plain name", name)
	}
	return nil
}

// Stat returns the directory's own metadata.
func (d *Dir) Stat() (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd(), &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.path, Err: err}
	}
	return &st, nil
}

// Lstat returns the metadata of name itself (a symlink is not followed).
// A missing name gives an error wrapping fs.ErrNotExist.
func (d *Dir) Lstat(name string) (*unix.Stat_t, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: filepath.Join(d.path, name), Err: err}
	}
	return &st, nil
}

// OpenRegular opens name with flag (O_RDONLY, O_RDWR, with O_CREATE and
// perm), never following a symlink and never blocking on a FIFO, and
// refuses anything but a regular file.
func (d *Dir) OpenRegular(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(d.path, name)
	fd, err := unix.Openat(d.fd(), name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, uint32(perm.Perm()))
	if err != nil {
		if err == unix.ELOOP {
			return nil, fmt.Errorf("%s: %w (a symlink)", p, ErrNotRegular)
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", p, ErrNotRegular, st.Mode().Type())
	}
	return f, nil
}

// ReadRegular reads the regular file name, refusing one over max bytes.
func (d *Dir) ReadRegular(name string, max int64) ([]byte, error) {
	f, err := d.OpenRegular(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, max)
}

func readAll(f *os.File, max int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte limit", f.Name(), st.Size(), max)
	}
	buf := make([]byte, st.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return buf[:n], nil
}

// Owner is who a file Dir creates belongs to; -1 keeps the creator's.
type Owner struct{ UID, GID int }

// NoOwner keeps the creating process's uid and gid.
var NoOwner = Owner{-1, -1}

// Replace replaces name with what fill writes: a temporary file in d is
// filled, given the mode and owner of the file it replaces (or mode and
// owner when name does not exist yet), fsynced and renamed over name, and
// the directory is fsynced. On error name is untouched and the temporary
// file is removed.
func (d *Dir) Replace(name string, mode fs.FileMode, owner Owner, fill func(*os.File) error) error {
	return d.replace(name, mode, 0, owner, true, fill)
}

// ReplaceUnsynced is Replace without the two fsyncs (see WriteUnsynced).
func (d *Dir) ReplaceUnsynced(name string, mode fs.FileMode, owner Owner, fill func(*os.File) error) error {
	return d.replace(name, mode, 0, owner, false, fill)
}

// WriteNarrowed is Write that also clears the permission bits clear from
// the mode kept of the file it replaces (e.g. 0o007: no longer readable by
// every user, for content that holds a secret).
func (d *Dir) WriteNarrowed(name string, data []byte, mode, clear fs.FileMode, owner Owner) error {
	return d.replace(name, mode, clear, owner, true, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteUnsynced is WriteNarrowed without the two fsyncs (the new file's
// data before the rename, the directory after it). Readers still see the
// old bytes or the new ones, never a mix; only a crash of the machine
// within the next seconds may leave the old file, or an empty one. For a
// file read at once and worth nothing after a crash: the domain XML the
// NC reads right after its pre-boot hook (a node that crashes loses the
// instance anyway). The fsyncs cost more than the whole rewrite.
func (d *Dir) WriteUnsynced(name string, data []byte, mode, clear fs.FileMode, owner Owner) error {
	return d.replace(name, mode, clear, owner, false, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

func (d *Dir) replace(name string, mode, clear fs.FileMode, owner Owner, sync bool, fill func(*os.File) error) error {
	if err := checkName(name); err != nil {
		return err
	}
	p := filepath.Join(d.path, name)
	if st, err := d.Lstat(name); err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("replace %s: %w", p, ErrNotRegular)
		}
		mode = fs.FileMode(st.Mode & 0o777)
		owner = Owner{int(st.Uid), int(st.Gid)}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", p, err)
	}
	mode &^= clear
	if os.Geteuid() != 0 {
		owner = NoOwner
	}
	tmp, tmpName, err := d.createTemp(name)
	if err != nil {
		return fmt.Errorf("replace %s: %w", p, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			unix.Unlinkat(d.fd(), tmpName, 0)
		}
	}()
	if err := fill(tmp); err != nil {
		return fmt.Errorf("replace %s: %w", p, err)
	}
	if owner != NoOwner {
		if err := tmp.Chown(owner.UID, owner.GID); err != nil {
			return fmt.Errorf("replace %s: chown: %w", p, err)
		}
	}
	// After chown: chown clears set-id bits, and the mode is what is wanted.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("replace %s: chmod: %w", p, err)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("replace %s: fsync: %w", p, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("replace %s: close: %w", p, err)
	}
	if err := unix.Renameat(d.fd(), tmpName, d.fd(), name); err != nil {
		return fmt.Errorf("replace %s: rename: %w", p, err)
	}
	ok = true
	if sync {
		d.f.Sync()
	}
	return nil
}

// Write replaces name with data (see Replace).
func (d *Dir) Write(name string, data []byte, mode fs.FileMode, owner Owner) error {
	return d.Replace(name, mode, owner, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// createTemp creates a fresh file ".NAME.tmp-N" in d, mode 0600.
func (d *Dir) createTemp(name string) (*os.File, string, error) {
	for range 100 {
		tmp := "." + name + ".tmp-" + strconv.FormatUint(uint64(rand.Uint32()), 10)
		fd, err := unix.Openat(d.fd(), tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return os.NewFile(uintptr(fd), filepath.Join(d.path, tmp)), tmp, nil
	}
	return nil, "", fmt.Errorf("no free temporary name")
}

// KeepOriginal makes orig a second name (a hard link) of the regular file
// name, unless orig already exists; when linking is not possible it copies.
// It reports whether it created orig.
func (d *Dir) KeepOriginal(name, orig string) (bool, error) {
	if err := checkName(orig); err != nil {
		return false, err
	}
	if _, err := d.Lstat(orig); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	src, err := d.OpenRegular(name, os.O_RDONLY, 0)
	if err != nil {
		return false, err
	}
	defer src.Close()
	// Link the inode just checked (not whatever name is by now) through
	// /proc's handle of it; without /proc, link the name without following
	// it (linkat never follows a symlink without AT_SYMLINK_FOLLOW).
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(src.Fd())), d.fd(), orig, unix.AT_SYMLINK_FOLLOW)
	if err != nil && err != unix.EEXIST {
		err = unix.Linkat(d.fd(), name, d.fd(), orig, 0)
	}
	if err == nil {
		return true, nil
	}
	if err == unix.EEXIST {
		return false, nil
	}
	st, serr := src.Stat()
	if serr != nil {
		return false, serr
	}
	data, rerr := readAll(src, 64<<20)
	if rerr != nil {
		return false, rerr
	}
	return true, d.Write(orig, data, st.Mode().Perm(), NoOwner)
}

// Remove removes the file name (not a directory).
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: filepath.Join(d.path, name), Err: err}
	}
	return nil
}

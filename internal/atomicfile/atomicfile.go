// Package atomicfile replaces files so that a reader sees either the old
// bytes or the new ones, never a mix, and a crash leaves one of the two.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Option changes how Write writes.
type Option func(*options)

type options struct {
	sync     bool
	uid, gid int         // owner of a new file; -1: the caller
	maxMode  fs.FileMode // permission bits the file may keep at most
}

// NoSync skips both fsyncs (the new file's data before the rename, the
// directory after it). Readers still see the old bytes or the new ones,
// never a mix; only a crash of the machine within the next seconds may
// leave the old file, or an empty one. For a file read at once and worth
// nothing after a crash: the domain XML the NC reads right after its
// pre-boot hook (a node that crashes loses the instance anyway). The
// fsyncs cost more than the whole rewrite.
var NoSync Option = func(o *options) { o.sync = false }

// AtMost narrows the file's permissions to those in max, also for a file
// it replaces (whose mode is otherwise kept): for contents that must not
// stay readable as the old file was, e.g. a password.
func AtMost(max fs.FileMode) Option {
	return func(o *options) { o.maxMode = max }
}

// OwnerIfNew gives a file Write creates (not one it replaces: that keeps
// its owner) the owner uid:gid, before it appears under its name. Only
// root may give a file away; for others it is ignored.
func OwnerIfNew(uid, gid int) Option {
	return func(o *options) {
		if os.Geteuid() == 0 {
			o.uid, o.gid = uid, gid
		}
	}
}

// Write replaces path with data: a temporary file in the same directory is
// written and fsynced, given the mode and (when running as root) the owner of
// the file it replaces, then renamed over path, and the directory is fsynced
// (not with NoSync). When path does not exist, mode is used and the owner is
// the caller. On error path is untouched and the temporary file is removed.
func Write(path string, data []byte, mode fs.FileMode, opts ...Option) error {
	o := options{sync: true, uid: -1, gid: -1, maxMode: fs.ModePerm}
	for _, opt := range opts {
		opt(&o)
	}
	sync := o.sync
	dir := filepath.Dir(path)
	uid, gid := o.uid, o.gid
	if st, err := os.Lstat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("replace %s: not a regular file", path)
		}
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	mode &= o.maxMode
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("replace %s: write: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("replace %s: chmod: %w", path, err)
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("replace %s: chown: %w", path, err)
		}
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("replace %s: fsync: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("replace %s: close: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: rename: %w", path, err)
	}
	ok = true
	if !sync {
		return nil
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// KeepOriginal makes orig a second name for the current contents of path
// (a hard link: no copy, nothing to fsync but the directory, which the next
// Write of path does), unless orig already exists. When linking is not
// possible it copies. It reports whether it created orig.
func KeepOriginal(path, orig string) (bool, error) {
	if _, err := os.Lstat(orig); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Link(path, orig); err == nil {
		return true, nil
	}
	return CopyIfAbsent(path, orig)
}

// CopyIfAbsent copies src to dst atomically (via Write) unless dst already exists.
// It reports whether it wrote dst.
func CopyIfAbsent(src, dst string) (bool, error) {
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	data, err := ReadRegular(src, 64<<20)
	if err != nil {
		return false, err
	}
	st, err := os.Lstat(src)
	if err != nil {
		return false, err
	}
	return true, Write(dst, data, st.Mode().Perm())
}

// ReadRegular reads a regular file, refusing symlinks, devices, FIFOs and
// files over max bytes.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte limit", path, st.Size(), max)
	}
	buf := make([]byte, st.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return buf[:n], nil
}

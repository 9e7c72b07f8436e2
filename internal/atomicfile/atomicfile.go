// Package atomicfile replaces files so that a reader sees either the old
// bytes or the new ones, never a mix, and a crash leaves one of the two.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data: a temporary file in the same directory is
// written and fsynced, given the mode and (when running as root) the owner of
// the file it replaces, then renamed over path, and the directory is fsynced.
// When path does not exist, mode is used and the owner is the caller.
// On error path is untouched and the temporary file is removed.
func Write(path string, data []byte, mode fs.FileMode) error {
	d, err := OpenDir(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	defer d.Close()
	return d.Write(filepath.Base(path), data, mode, NoOwner)
}

// KeepOriginal makes orig a second name for the current contents of path
// (a hard link: no copy, nothing to fsync but the directory, which the next
// Write of path does), unless orig already exists. When linking is not
// possible it copies. It reports whether it created orig.
func KeepOriginal(path, orig string) (bool, error) {
	if filepath.Dir(path) != filepath.Dir(orig) {
		return CopyIfAbsent(path, orig)
	}
	d, err := OpenDir(filepath.Dir(path))
	if err != nil {
		return false, err
	}
	defer d.Close()
	return d.KeepOriginal(filepath.Base(path), filepath.Base(orig))
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
	return readAll(f, max)
}

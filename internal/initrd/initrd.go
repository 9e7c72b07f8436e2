// Package initrd injects files into a Linux initramfs the way Oz, lorax and
// virt-install --initrd-inject do: a gzip-compressed newc cpio archive is
// appended to a copy of the installer's initrd. The kernel unpacks every
// concatenated archive in order, so the appended files land in the root of
// the initramfs (a kickstart as /ks.cfg for inst.ks=file:/ks.cfg).
package initrd

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// File is one file (or directory) to put in an archive.
type File struct {
	Name string // path inside the initramfs, e.g. "ks.cfg"
	Data []byte
	Mode uint32 // permission bits; 0 means 0644 (0755 for a directory)
	Dir  bool   // a directory (Data ignored); list parents before children
}

// WriteCPIO writes files as a gzip'd newc cpio archive with its trailer.
func WriteCPIO(w io.Writer, files []File, mtime time.Time) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	ino := uint32(0x4b530000) // any value: the kernel does not use it for regular files
	for _, f := range files {
		name := strings.TrimPrefix(filepath.Clean("/"+f.Name), "/")
		if name == "" || name == "." {
			return fmt.Errorf("initrd: bad file name %q", f.Name)
		}
		mode, typ, data := f.Mode&0o7777, uint32(0o100000), f.Data
		if f.Dir {
			typ, data = 0o040000, nil
			if mode == 0 {
				mode = 0o755
			}
		} else if mode == 0 {
			mode = 0o644
		}
		ino++
		if err := writeEntry(zw, name, typ|mode, ino, data, mtime); err != nil {
			return err
		}
	}
	if err := writeEntry(zw, "TRAILER!!!", 0, 0, nil, time.Unix(0, 0)); err != nil {
		return err
	}
	return zw.Close()
}

func writeEntry(w io.Writer, name string, mode, ino uint32, data []byte, mtime time.Time) error {
	nlink := uint32(1)
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, uint32(mtime.Unix()), len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+8+len(data)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	buf = pad4(buf)
	_, err := w.Write(buf)
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Inject writes dst as a copy of base followed by a cpio archive of files.
// dst is written through a temporary file in its directory and renamed into
// place, so a failure leaves no partial file.
func Inject(base, dst string, files []File, mtime time.Time) error {
	src, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("initrd %s: %w", base, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("initrd %s: %w", dst, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := Append(tmp, src, files, mtime); err != nil {
		return fmt.Errorf("initrd %s: %w", dst, err)
	}
	// The copy carries a kickstart (a rootpw hash): 0600, owned like the
	// directory it is placed in (the NC's user in an instance directory,
	// the caller in kscloud's build directory); QEMU runs as root or gets
	// it relabelled by libvirt (dynamic_ownership), as the NC's own files.
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if dir, err := os.Stat(filepath.Dir(dst)); err == nil && os.Geteuid() == 0 {
		if sys, ok := dir.Sys().(*syscall.Stat_t); ok {
			if err := tmp.Chown(int(sys.Uid), int(sys.Gid)); err != nil {
				return fmt.Errorf("initrd %s: chown: %w", dst, err)
			}
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("initrd %s: fsync: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("initrd %s: %w", dst, err)
	}
	done = true
	return nil
}

// Append writes to dst a copy of the regular file src (an initrd) followed
// by a cpio archive of files, which the kernel unpacks over it.
func Append(dst, src *os.File, files []File, mtime time.Time) error {
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("initrd %s: %w", src.Name(), err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("initrd %s: not a regular file", src.Name())
	}
	// io.Copy between two *os.File uses copy_file_range: a reflink or an
	// in-kernel copy where the filesystem allows it.
	n, err := io.Copy(dst, src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src.Name(), err)
	}
	if n != st.Size() {
		return fmt.Errorf("copied %d of %d bytes of %s", n, st.Size(), src.Name())
	}
	// The kernel looks for the next archive on a 4-byte boundary.
	if pad := (4 - n%4) % 4; pad != 0 {
		if _, err := dst.Write(make([]byte, pad)); err != nil {
			return err
		}
	}
	return WriteCPIO(dst, files, mtime)
}

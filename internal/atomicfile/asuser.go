package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"

	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenAs opens path read-only with the file-system credentials of uid and
// gid (and uid's supplementary groups) instead of the caller's: a daemon
// running as root reads a file named by another user no further than that
// user could. Symlinks in path are followed as that user would follow
// them. When the caller is not root, or uid is 0, it is a plain open.
// A FIFO does not block the open; the caller checks the file's type.
//
// The credentials change on one locked OS thread (setfsuid, setfsgid and
// setgroups act on the calling thread only when made as raw system calls);
// that thread ends with the goroutine and never runs other Go code.
func OpenAs(path string, uid, gid int) (*os.File, error) {
	return openAs(path, uid, gid, func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	})
}

// OpenAs opens name in d read-only as OpenAs does, refusing a symlink: the
// file is looked up in the directory d holds open, not by a path that may
// since name another.
func (d *Dir) OpenAs(name string, uid, gid int) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return openAs(filepath.Join(d.path, name), uid, gid, func() (int, error) {
		return unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NOFOLLOW, 0)
	})
}

// openAs runs open (one system call, no Go code that may switch threads)
// with uid's file-system credentials; path is for messages.
func openAs(path string, uid, gid int, open func() (int, error)) (*os.File, error) {
	if os.Geteuid() != 0 || uid == 0 {
		fd, err := open()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	groups := []uint32{uint32(gid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.ParseUint(s, 10, 32); err == nil {
					groups = append(groups, uint32(g))
				}
			}
		}
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the runtime ends this thread with the goroutine.
		runtime.LockOSThread()
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(unsafePointer(groups)), 0); e != 0 {
			ch <- result{-1, fmt.Errorf("setgroups: %w", e)}
			return
		}
		unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0)
		unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
		// setfsuid reports the previous value, never an error: check.
		if prev, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0); int(prev) != uid {
			ch <- result{-1, fmt.Errorf("setfsuid %d did not take", uid)}
			return
		}
		fd, err := open()
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: r.err}
	}
	return os.NewFile(uintptr(r.fd), path), nil
}

func unsafePointer(g []uint32) unsafe.Pointer { return unsafe.Pointer(&g[0]) }

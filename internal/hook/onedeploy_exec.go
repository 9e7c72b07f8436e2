package hook

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecOneDeploy runs OpenNebula's own deploy script in place of this
// process (execve), with d.Domain (and d.Rest) on its standard input and
// this process's standard output, standard error and environment: its
// output (the domain name on 5.12, the UUID on 6.0+) and exit status are
// OpenNebula's, byte for byte, with nothing of this process left around
// it. The input is an in-memory file (memfd; an unlinked temporary file
// where memfd is not available), so the original may read it at its own
// pace. It returns only on failure.
func ExecOneDeploy(d *OneDeploy) error {
	f, err := stdinFile()
	if err != nil {
		return fmt.Errorf("deploy input: %w", err)
	}
	if _, err := f.Write(d.Domain); err != nil {
		return fmt.Errorf("deploy input: %w", err)
	}
	if d.Rest != nil {
		if _, err := io.Copy(f, d.Rest); err != nil {
			return fmt.Errorf("deploy input: %w", err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("deploy input: %w", err)
	}
	if err := unix.Dup3(int(f.Fd()), 0, 0); err != nil {
		return fmt.Errorf("deploy input: %w", err)
	}
	argv := append([]string{d.Original}, d.Args...)
	err = syscall.Exec(d.Original, argv, os.Environ())
	return fmt.Errorf("run the original deploy script %s: %w", d.Original, err)
}

func stdinFile() (*os.File, error) {
	if fd, err := unix.MemfdCreate("nchookd-deploy", unix.MFD_CLOEXEC); err == nil {
		return os.NewFile(uintptr(fd), "memfd:nchookd-deploy"), nil
	}
	f, err := os.CreateTemp("", "nchookd-deploy-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

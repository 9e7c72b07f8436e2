package libvirtxml

import "golang.org/x/sys/unix"

// getrandom fills b from the kernel's CSPRNG (getrandom(2), blocking only
// until the pool is first initialised, as crypto/rand does on Linux).
func getrandom(b []byte) error {
	for len(b) > 0 {
		n, err := unix.Getrandom(b, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

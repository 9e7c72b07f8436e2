package libvirt

import (
	"os"
	"syscall"
)

// fileSizes returns a file's apparent size and the bytes its blocks take.
func fileSizes(p string) (size, disk int64) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, 0
	}
	size = st.Size()
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		disk = s.Blocks * 512
	}
	return size, disk
}

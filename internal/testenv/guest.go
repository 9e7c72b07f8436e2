package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/initrd"
)

// miniInit is the /init of the tiny guest: it prints its kernel command
// line on every console, then does what kscloud.test= says: poweroff
// (default), reboot, slowreboot (after 6 s), or hang.
const miniInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
# Only emergencies from the kernel on the console from here on: a late
# printk (e.g. the TSC calibration ~2 s after boot) would otherwise land in
# the middle of the line below on the serial console.
echo 1 > /proc/sys/kernel/printk
cmdline=$(/bin/busybox cat /proc/cmdline)
echo "KSCLOUD-CMDLINE: $cmdline"
case " $cmdline " in
*" kscloud.test=reboot "*) echo "KSCLOUD-ACTION: reboot"; /bin/busybox reboot -f ;;
*" kscloud.test=slowreboot "*) echo "KSCLOUD-ACTION: slowreboot"; /bin/busybox sleep 6; /bin/busybox reboot -f ;;
*" kscloud.test=hang "*) echo "KSCLOUD-ACTION: hang"; while :; do /bin/busybox sleep 3600; done ;;
*) echo "KSCLOUD-ACTION: poweroff"; /bin/busybox poweroff -f ;;
esac
`

// Kernel returns the newest Debian kernel in /boot (package linux-image-amd64).
func Kernel(t testing.TB) string {
	t.Helper()
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		t.Fatal("no kernel in /boot: install linux-image-amd64 (scripts/deps.sh)")
	}
	sort.Strings(ks)
	return ks[len(ks)-1]
}

// MiniInitrd builds a busybox initramfs (package busybox-static) whose
// /init prints "KSCLOUD-CMDLINE: <the kernel command line>" and then powers
// off, reboots or hangs as kscloud.test=poweroff|reboot|hang says.
func MiniInitrd(t testing.TB, dir string) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox: %v (install busybox-static)", err)
	}
	var buf bytes.Buffer
	err = initrd.WriteCPIO(&buf, []initrd.File{
		{Name: "bin", Dir: true},
		{Name: "bin/busybox", Data: bb, Mode: 0o755},
		{Name: "init", Data: []byte(miniInit), Mode: 0o755},
	}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "mini-initrd.img")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

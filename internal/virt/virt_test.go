package virt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/testenv"
)

func domainXML(name, kernel, initrd, cmdline, log, onReboot string) string {
	return fmt.Sprintf(`<domain type="qemu"><name>%s</name><memory unit="MiB">256</memory><vcpu>1</vcpu>
<os><type>hvm</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>%s</cmdline></os>
<features><acpi/></features><on_poweroff>destroy</on_poweroff><on_reboot>%s</on_reboot>
<devices><serial type="file"><source path="%s"/><target port="0"/></serial></devices></domain>`,
		name, kernel, initrd, cmdline, onReboot, log)
}

// TestEventsOnRealLibvirt boots the tiny guest twice and checks which
// events libvirt delivers for a guest power-off and for a guest reboot
// under on_reboot=destroy.
func TestEventsOnRealLibvirt(t *testing.T) {
	uri := testenv.Libvirt(t)
	dir := t.TempDir()
	kernel, ird := testenv.Kernel(t), testenv.MiniInitrd(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Open(ctx, uri, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, action := range []string{"poweroff", "reboot"} {
		t.Run(action, func(t *testing.T) {
			name := fmt.Sprintf("kscloud-virt-test-%s-%d", action, os.Getpid())
			log := filepath.Join(dir, action+".log")
			if err := c.CreateXML(ctx, domainXML(name, kernel, ird, "console=ttyS0 kscloud.test="+action, log, "destroy")); err != nil {
				t.Fatal(err)
			}
			defer c.Destroy(context.Background(), name)
			var kinds []string
			for {
				select {
				case ev := <-c.Events():
					if ev.Domain != name {
						continue
					}
					kinds = append(kinds, string(ev.Kind)+":"+ev.Reason)
					if ev.Kind == Stopped {
						t.Logf("%s: events %v", action, kinds)
						if ev.Reason != "shutdown" {
							t.Fatalf("stopped with reason %q, want shutdown", ev.Reason)
						}
						b, _ := os.ReadFile(log)
						if !strings.Contains(string(b), "KSCLOUD-ACTION: "+action) {
							t.Fatalf("console has no action line:\n%s", b)
						}
						if _, err := c.Info(ctx, name); !IsNotFound(err) {
							t.Fatalf("transient domain still there after stop: %v", err)
						}
						return
					}
				case <-ctx.Done():
					t.Fatalf("no stopped event; got %v", kinds)
				}
			}
		})
	}
}

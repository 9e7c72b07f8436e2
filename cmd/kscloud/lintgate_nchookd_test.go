package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A kickstart ending in reboot is refused on OpenNebula unless the hosts
// run nchookd (--nchookd), as kscloud lint --nchookd decides.
func TestLintGateNchookd(t *testing.T) {
	ks := []byte("cmdline\nlang en_US.UTF-8\nkeyboard us\ntimezone UTC\nrootpw --lock\nautopart\nreboot\n")
	var out bytes.Buffer
	err := lintBeforeLaunch(context.Background(), "ks.cfg", ks, "", "run", false, &out, "opennebula")
	if err == nil || !strings.Contains(out.String(), "power-action-mode") {
		t.Fatalf("without nchookd: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := lintBeforeLaunch(context.Background(), "ks.cfg", ks, "", "run", true, &out, "opennebula"); err != nil || strings.Contains(out.String(), "power-action-mode") {
		t.Fatalf("with nchookd: %v\n%s", err, out.String())
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
)

// TestImagesTextSafe: images list and show print the cloud's names, states
// and tags as the JSON output does: a hostile OpenNebula answer (an image
// NAME with a line break, C1 CSI, a bidi override) adds no line and no
// escape to the terminal.
func TestImagesTextSafe(t *testing.T) {
	bad := "neg\r\nFAKE LINE\u009b]0;TITLE\u202eevil\x1b[2J"
	im := cloud.Image{ID: "img-" + bad, Name: bad, State: bad, Created: time.Unix(0, 0), Description: bad,
		SnapshotID: bad, Path: "/x/" + bad, Tags: cloud.Tags{cloud.TagBuild: bad}}
	var list, show bytes.Buffer
	printImages(&list, []cloud.Image{im})
	printImage(&show, im)
	for name, out := range map[string]string{"list": list.String(), "show": show.String()} {
		if strings.ContainsAny(out, "\r\x1b\u009b\u202e") {
			t.Errorf("images %s prints a control or bidi character: %q", name, out)
		}
		if strings.Contains(out, "\nFAKE LINE") {
			t.Errorf("images %s: the name's line break starts a line: %q", name, out)
		}
	}
	if n := strings.Count(list.String(), "\n"); n != 2 {
		t.Errorf("images list: %d lines, want 2 (header, one image):\n%s", n, list.String())
	}
}

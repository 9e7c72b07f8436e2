package install

import (
	"strings"
	"testing"
)

// TestProvenanceRedacted: a kickstart URL with credentials or a token
// reaches neither the provenance file nor the image description.
func TestProvenanceRedacted(t *testing.T) {
	p := NewProvenance("https://deploy:hunter2@ks.example.com/f40.cfg?token=9f8e7d")
	if d := p.Describe(); strings.Contains(d, "hunter2") || strings.Contains(d, "9f8e7d") || !strings.Contains(d, "src:https://REDACTED@ks.example.com/f40.cfg?token=REDACTED") {
		t.Fatalf("description %q", d)
	}
	if p.KickstartSource != "https://REDACTED@ks.example.com/f40.cfg?token=REDACTED" {
		t.Fatalf("source %q", p.KickstartSource)
	}
	// A provenance made from a raw source (an older build's state) is
	// described redacted as well.
	raw := &Provenance{KickstartSource: "https://deploy:hunter2@ks.example.com/f40.cfg?token=9f8e7d", KscloudVersion: "v1", Build: "ks-1"}
	if d := raw.Describe(); strings.Contains(d, "hunter2") || strings.Contains(d, "9f8e7d") {
		t.Fatalf("description %q", d)
	}
}

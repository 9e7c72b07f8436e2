package install

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/home/u/ks.cfg", "/home/u/ks.cfg"},
		{"http://10.0.0.1/ks.cfg", "http://10.0.0.1/ks.cfg"},
		{"https://user:s3cret@git.example.com/ks/f40.cfg", "https://REDACTED@git.example.com/ks/f40.cfg"},
		{"https://tok3n@host/ks.cfg", "https://REDACTED@host/ks.cfg"},
		{"https://host:8443/ks.cfg?token=abc123&arch=x86_64", "https://host:8443/ks.cfg?token=REDACTED&arch=REDACTED"},
		{"https://b.s3.amazonaws.com/ks.cfg?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=deadbeef", "https://b.s3.amazonaws.com/ks.cfg?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"},
		{"http://h/ks.cfg#access_token=xyz", "http://h/ks.cfg#REDACTED"},
		{"http://u:p@[::1]:80/ks.cfg", "http://REDACTED@[::1]:80/ks.cfg"},
		{"http://u:p%zz@h/ks?k=v", "http://REDACTED@h/ks?REDACTED"},
		// A password with an unencoded '#', '?' or '/' (the URL does not
		// parse): nothing before the last '@' is kept.
		{"http://u:p#s3cret@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
		{"http://u:p?s3cret@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
		{"http://u:p/s3cret@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
	} {
		got := RedactURL(c.in)
		if got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, secret := range []string{"s3cret", "tok3n", "abc123", "deadbeef", "AKIA", "xyz", "u:p"} {
			if strings.Contains(got, secret) {
				t.Errorf("RedactURL(%q) = %q keeps %q", c.in, got, secret)
			}
		}
	}
	line := `kickstart https://u:pw@h/ks.cfg?token=t0k: Get "https://u:***@h/ks.cfg?token=t0k": 404; inst.ks=http://a:b@c/d`
	got := RedactText(line)
	if strings.Contains(got, "pw@") || strings.Contains(got, "t0k") || strings.Contains(got, "a:b") || !strings.Contains(got, "https://REDACTED@h/ks.cfg?token=REDACTED") || !strings.Contains(got, "inst.ks=http://REDACTED@c/d") {
		t.Fatalf("RedactText = %q", got)
	}
}

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

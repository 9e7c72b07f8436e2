package ec2

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoCredentials: with no keys anywhere, New says so in one line that
// names what to set, before any build starts (not a wrapped SDK chain
// error in the middle of one).
func TestNoCredentials(t *testing.T) {
	for _, k := range []string{"EC2_ACCESS_KEY", "EC2_SECRET_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "EUCARC", "EC2_URL"} {
		t.Setenv(k, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", home+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", home+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, sig := range []string{"v4", "v2"} {
		_, err := New(context.Background(), Config{Endpoint: "http://127.0.0.1:1/services/compute", Signature: sig})
		if err == nil || !strings.Contains(err.Error(), "ec2: no credentials: set EC2_ACCESS_KEY and EC2_SECRET_KEY") || strings.Contains(err.Error(), "\n") {
			t.Errorf("signature %s without keys: %v", sig, err)
		}
	}
}

// TestSignatureByPath: without a --signature, a /services/Eucalyptus
// endpoint (Eucalyptus 3.x) is signed with v2, anything else with v4; an
// explicit signature wins.
func TestSignatureByPath(t *testing.T) {
	t.Setenv("EC2_URL", "")
	for _, tc := range []struct{ endpoint, sig, want string }{
		{"http://clc:8773/services/Eucalyptus", "", SignatureV2},
		{"http://clc:8773/services/Eucalyptus/", "", SignatureV2},
		{"http://clc:8773/services/compute", "", SignatureV4},
		{"https://ec2.us-east-1.amazonaws.com", "", SignatureV4},
		{"http://clc:8773/services/Eucalyptus", "v4", SignatureV4},
		{"http://clc:8773/services/compute", "v2", SignatureV2},
	} {
		p, err := New(context.Background(), Config{Endpoint: tc.endpoint, Signature: tc.sig, AccessKey: "AKI", SecretKey: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Effective().Signature; got != tc.want {
			t.Errorf("%s with --signature %q: %s, want %s", tc.endpoint, tc.sig, got, tc.want)
		}
	}
}

// TestEndpointPrecedence: --endpoint, then the eucarc's EC2_URL, then
// $EC2_URL, then AWS; --endpoint aws ignores both EC2_URLs.
func TestEndpointPrecedence(t *testing.T) {
	dir := t.TempDir()
	rc := filepath.Join(dir, "eucarc")
	if err := os.WriteFile(rc, []byte("export EC2_URL=http://rc:8773/services/compute\nexport EC2_ACCESS_KEY=AKI\nexport EC2_SECRET_KEY=s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EC2_URL", "http://env:8773/services/compute")
	t.Setenv("AWS_REGION", "us-east-1")
	for _, tc := range []struct {
		cfg              Config
		endpoint, source string
	}{
		{Config{Endpoint: "http://flag:8773/services/compute", Eucarc: rc}, "http://flag:8773/services/compute", "flag"},
		{Config{Eucarc: rc}, "http://rc:8773/services/compute", "eucarc " + rc},
		{Config{AccessKey: "AKI", SecretKey: "s"}, "http://env:8773/services/compute", "env EC2_URL"},
		{Config{Endpoint: "aws", Eucarc: rc}, "", "aws"},
	} {
		p, err := New(context.Background(), tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if eff := p.Effective(); eff.Endpoint != tc.endpoint || eff.EndpointSource != tc.source {
			t.Errorf("%+v: endpoint %q from %q, want %q from %q", tc.cfg, eff.Endpoint, eff.EndpointSource, tc.endpoint, tc.source)
		}
	}
}

package ec2

import (
	"context"
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

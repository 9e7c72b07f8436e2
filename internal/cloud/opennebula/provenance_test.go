package opennebula

import (
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/install"
)

// A kickstart URL with credentials or a token reaches no image attribute
// (DESCRIPTION and KSCLOUD_KS_SOURCE are readable by whoever may see the
// image), also when the provenance was made from the raw URL.
func TestProvenanceAttributesRedacted(t *testing.T) {
	p := &install.Provenance{KickstartSource: "https://deploy:hunter2@ks.example.com/f40.cfg?token=9f8e7d#frag0", KickstartSHA256: "abc", Build: "ks-1"}
	for _, kv := range Provenance("img", p) {
		for _, secret := range []string{"hunter2", "deploy", "9f8e7d", "frag0"} {
			if strings.Contains(kv[1], secret) {
				t.Errorf("%s = %q keeps %q", kv[0], kv[1], secret)
			}
		}
	}
}

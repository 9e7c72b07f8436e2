package kickstart

import (
	"strings"
	"testing"
)

// TestOpenNebulaPowerAction: on OpenNebula reboot loops the installer in
// both modes (no on_reboot in the KVM driver's domain), poweroff is right
// in both, and a missing action asks for poweroff.
func TestOpenNebulaPowerAction(t *testing.T) {
	base := "text\nlang en_US.UTF-8\nkeyboard us\ntimezone UTC\nrootpw --lock\nzerombr\nclearpart --all\nautopart\n"
	for _, mode := range []Mode{ModeBake, ModeInPlace} {
		for _, tc := range []struct {
			action, rule string
			sev          Severity
			says         string
		}{
			{"reboot\n", "power-action-mode", SeverityError, "loops the installer on OpenNebula"},
			{"", "power-action-missing", SeverityError, "on OpenNebula add 'poweroff'"},
			{"poweroff\n", "", 0, ""},
		} {
			_, fs := Lint(Source{Name: "ks.cfg", Data: []byte(base + tc.action)}, LintOptions{Mode: mode, Provider: "opennebula"})
			var got *Finding
			for i := range fs {
				if strings.HasPrefix(fs[i].Rule, "power-action") {
					got = &fs[i]
				}
			}
			switch {
			case tc.rule == "" && got != nil:
				t.Errorf("%s %q: unexpected %v", mode, tc.action, got)
			case tc.rule != "" && (got == nil || got.Rule != tc.rule || got.Severity != tc.sev || !strings.Contains(got.Message, tc.says)):
				t.Errorf("%s %q: got %v, want %s %s saying %q", mode, tc.action, got, tc.sev, tc.rule, tc.says)
			}
		}
	}
	// Elsewhere in place, reboot stays the advice.
	_, fs := Lint(Source{Name: "ks.cfg", Data: []byte(base + "reboot\n")}, LintOptions{Mode: ModeInPlace})
	for _, f := range fs {
		if strings.HasPrefix(f.Rule, "power-action") {
			t.Errorf("in place reboot without a provider: %v", f)
		}
	}
}

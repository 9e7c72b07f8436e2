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

// TestOpenNebulaNodeHookPowerAction: with nchookd on the hosts (its deploy
// wrapper sets on_reboot=destroy and boots the disk after the installer),
// an in-place reboot is right on OpenNebula, as on Eucalyptus, and a
// missing action asks for what the mode needs there.
func TestOpenNebulaNodeHookPowerAction(t *testing.T) {
	base := "text\nlang en_US.UTF-8\nkeyboard us\ntimezone UTC\nrootpw --lock\nzerombr\nclearpart --all\nautopart\n"
	find := func(data string, mode Mode) *Finding {
		_, fs := Lint(Source{Name: "ks.cfg", Data: []byte(base + data)}, LintOptions{Mode: mode, Provider: "opennebula", NodeHook: true})
		for i := range fs {
			if strings.HasPrefix(fs[i].Rule, "power-action") {
				return &fs[i]
			}
		}
		return nil
	}
	if f := find("reboot\n", ModeInPlace); f != nil {
		t.Errorf("in place reboot with nchookd: %v", f)
	}
	if f := find("poweroff\n", ModeBake); f != nil {
		t.Errorf("bake poweroff with nchookd: %v", f)
	}
	if f := find("", ModeInPlace); f == nil || f.Rule != "power-action-missing" || strings.Contains(f.Message, "OpenNebula") || !strings.Contains(f.Message, "'reboot'") {
		t.Errorf("in place, no action, with nchookd: %v", f)
	}
}

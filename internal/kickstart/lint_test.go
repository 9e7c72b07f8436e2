package kickstart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// good is a kickstart that passes every rule in bake mode on RHEL9 (shared
// with kscloud lint's CLI tests).
var good = func() string {
	b, err := os.ReadFile("testdata/good-bake.ks")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func lintText(t *testing.T, text string, opts LintOptions) []Finding {
	t.Helper()
	_, fs := Lint(Source{Name: "ks.cfg", Data: []byte(text)}, opts)
	return fs
}

func findingKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%d:%s:%s", f.Pos.Line, f.Severity, f.Rule))
	}
	return out
}

func hasKey(fs []Finding, key string) bool {
	for _, k := range findingKeys(fs) {
		if k == key {
			return true
		}
	}
	return false
}

func TestLintGoodKickstartIsClean(t *testing.T) {
	for _, mode := range []Mode{ModeBake, ModeInPlace} {
		fs := lintText(t, good, LintOptions{Mode: mode})
		var unexpected []Finding
		for _, f := range fs {
			// In place, poweroff is accepted with an info.
			if mode == ModeInPlace && f.Rule == "power-action-mode" && f.Severity == SeverityInfo {
				continue
			}
			unexpected = append(unexpected, f)
		}
		if len(unexpected) > 0 {
			t.Errorf("%s: unexpected findings: %v", mode, unexpected)
		}
	}
}

// edit applies line replacements to the good kickstart ("" deletes).
func edit(repl map[string]string) string {
	var out []string
	for _, line := range strings.Split(good, "\n") {
		if r, ok := repl[line]; ok {
			if r == "" {
				continue
			}
			line = r
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func TestLintRules(t *testing.T) {
	cases := []struct {
		name string
		text string
		opts LintOptions
		want []string // findings that must be present
		not  []string // rules that must be absent
	}{
		{"rootpw missing, new release", edit(map[string]string{"rootpw --lock": ""}), LintOptions{}, []string{"1:warning:rootpw-missing"}, nil},
		{"rootpw missing, RHEL6", strings.Replace(edit(map[string]string{"rootpw --lock": "", "cmdline": "text", "timezone UTC --utc": "timezone UTC"}), "#version=RHEL9", "#version=RHEL6", 1), LintOptions{}, []string{"1:error:rootpw-missing"}, nil},
		{"rootpw plaintext", edit(map[string]string{"rootpw --lock": "rootpw hunter2"}), LintOptions{}, []string{"6:info:rootpw-plaintext"}, nil},
		{"rootpw crypted", edit(map[string]string{"rootpw --lock": "rootpw --iscrypted $6$s$h"}), LintOptions{}, nil, []string{"rootpw-plaintext", "rootpw-missing"}},
		{"no power action", edit(map[string]string{"poweroff": ""}), LintOptions{}, []string{"1:error:power-action-missing"}, nil},
		{"reboot in bake", edit(map[string]string{"poweroff": "reboot"}), LintOptions{}, []string{"17:error:power-action-mode"}, nil},
		{"reboot in place", edit(map[string]string{"poweroff": "reboot"}), LintOptions{Mode: ModeInPlace}, nil, []string{"power-action-mode", "power-action-missing"}},
		{"poweroff in place", good, LintOptions{Mode: ModeInPlace}, []string{"17:info:power-action-mode"}, nil},
		{"halt", edit(map[string]string{"poweroff": "halt"}), LintOptions{}, []string{"17:warning:power-action-mode"}, nil},
		{"last power action wins", edit(map[string]string{"poweroff": "reboot\npoweroff"}), LintOptions{}, []string{"18:warning:repeated-command"}, []string{"power-action-mode"}},
		{"swap partition", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "part swap --size=1024"}), LintOptions{}, []string{"12:warning:swap-in-image"}, nil},
		{"swap by fstype", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "part none --fstype=swap --size=1"}), LintOptions{}, []string{"12:warning:swap-in-image"}, nil},
		{"swap in place", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "part swap --size=1024"}), LintOptions{Mode: ModeInPlace}, nil, []string{"swap-in-image"}},
		{"autopart swap", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "", "part / --size=4096 --grow --fstype=xfs": "autopart"}), LintOptions{}, []string{"12:warning:swap-in-image"}, nil},
		{"autopart noswap", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "", "part / --size=4096 --grow --fstype=xfs": "autopart --noswap"}), LintOptions{}, nil, []string{"swap-in-image"}},
		{"network by MAC", edit(map[string]string{"network --bootproto=dhcp --device=link --activate": "network --bootproto=dhcp --device=52:54:00:12:34:56"}), LintOptions{}, []string{"7:warning:hardcoded-mac"}, nil},
		{"HWADDR in post", edit(map[string]string{"restorecon -R /": "echo HWADDR=52:54:00:ab:cd:ef >> /etc/sysconfig/network-scripts/ifcfg-eth0\nrestorecon -R /"}), LintOptions{}, []string{"25:warning:hardcoded-mac"}, nil},
		{"udev rule by MAC", edit(map[string]string{"restorecon -R /": "echo 'SUBSYSTEM==\"net\", ATTR{address}==\"52:54:00:ab:cd:ef\", NAME=\"eth0\"' > /etc/udev/rules.d/70-net.rules\nrestorecon -R /"}), LintOptions{}, []string{"25:warning:hardcoded-mac"}, nil},
		{"RHEL6 bake keeps persistent-net rules", strings.Replace(edit(map[string]string{"rm -f /etc/udev/rules.d/70-persistent-net.rules": "", "cmdline": "text", "timezone UTC --utc": "timezone UTC", "rootpw --lock": "rootpw --iscrypted x", "network --bootproto=dhcp --device=link --activate": "network --bootproto=dhcp", "firstboot --disable": "", "selinux --enforcing": ""}), "#version=RHEL9", "#version=RHEL6", 1), LintOptions{}, []string{"1:warning:persistent-net-rules"}, nil},
		{"relabel not last", edit(map[string]string{"%post": "%post\nrestorecon -R /\n%end\n%post"}), LintOptions{}, []string{"24:warning:selinux-relabel"}, nil},
		{"fixfiles last", edit(map[string]string{"restorecon -R /": "fixfiles -F restore"}), LintOptions{}, nil, []string{"selinux-relabel"}},
		{"autorelabel", edit(map[string]string{"restorecon -R /": "touch /.autorelabel"}), LintOptions{}, []string{"25:warning:selinux-relabel"}, nil},
		{"graphical", edit(map[string]string{"cmdline": "graphical"}), LintOptions{}, []string{"2:warning:display-mode"}, nil},
		{"no display mode", edit(map[string]string{"cmdline": ""}), LintOptions{}, []string{"1:warning:display-mode"}, nil},
		{"text", edit(map[string]string{"cmdline": "text"}), LintOptions{}, []string{"2:info:display-mode"}, nil},
		{"vnc", edit(map[string]string{"cmdline": "cmdline\nvnc --password=secret"}), LintOptions{}, []string{"3:warning:vnc-install"}, nil},
		{"vnc removed in F45", strings.Replace(edit(map[string]string{"cmdline": "cmdline\nvnc"}), "#version=RHEL9", "#version=F45", 1), LintOptions{}, []string{"3:error:removed-command"}, []string{"vnc-install"}},
		{"missing timezone", edit(map[string]string{"timezone UTC --utc": ""}), LintOptions{}, []string{"1:warning:missing-answer"}, nil},
		{"missing partitioning", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "", "part / --size=4096 --grow --fstype=xfs": "", "clearpart --all --initlabel --drives=vdb": ""}), LintOptions{}, []string{"1:error:missing-answer"}, nil},
		{"partitioning from pre", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "%include /tmp/part-include", "part / --size=4096 --grow --fstype=xfs": "", "%packages": "%pre\necho part / --size=1 > /tmp/part-include\n%end\n%packages"}), LintOptions{Resolver: &Loader{}}, []string{"1:info:missing-answer", "12:info:include-generated"}, []string{"include"}},
		{"pre include not read from this machine", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "%include " + os.DevNull, "part / --size=4096 --grow --fstype=xfs": "", "%packages": "%pre\necho part / --size=1 > " + os.DevNull + "\n%end\n%packages"}), LintOptions{Resolver: &Loader{}}, []string{"12:info:include-generated"}, []string{"include"}},
		{"include missing", edit(map[string]string{"selinux --enforcing": "%include /nonexistent/common.cfg"}), LintOptions{Resolver: &Loader{}}, []string{"15:error:include"}, nil},
		{"pre reads tty", edit(map[string]string{"%packages": "%pre\nexec < /dev/tty3 > /dev/tty3\nread -p 'disk? ' DISK\n%end\n%packages"}), LintOptions{}, []string{"20:warning:interactive-script"}, nil},
		{"pre reads a file", edit(map[string]string{"%packages": "%pre\nwhile read line; do echo $line; done < /proc/partitions\n%end\n%packages"}), LintOptions{}, nil, []string{"interactive-script"}},
		{"firstboot enabled", edit(map[string]string{"firstboot --disable": "firstboot --enable"}), LintOptions{}, []string{"16:warning:interactive-script"}, nil},
		{"hash in url", edit(map[string]string{`url --url="https://mirror.example/rhel9/BaseOS/x86_64/os/"`: "url --url=https://mirror.example/os/#latest --proxy=http://proxy:3128"}), LintOptions{}, []string{"8:error:url-hash"}, nil},
		{"hash in rootpw", edit(map[string]string{"rootpw --lock": "rootpw --iscrypted $6$ab#cd"}), LintOptions{}, []string{"6:error:url-hash"}, nil},
		{"comment after space", edit(map[string]string{"rootpw --lock": "rootpw --lock # locked"}), LintOptions{}, nil, []string{"url-hash"}},
		{"removed command", edit(map[string]string{"selinux --enforcing": "install"}), LintOptions{}, []string{"15:error:removed-command"}, nil},
		{"deprecated command", edit(map[string]string{"selinux --enforcing": "autostep"}), LintOptions{}, []string{"15:warning:deprecated"}, nil},
		{"network install without network", edit(map[string]string{"network --bootproto=dhcp --device=link --activate": ""}), LintOptions{}, []string{"7:warning:network-missing"}, nil},
		{"cdrom install without network", edit(map[string]string{"network --bootproto=dhcp --device=link --activate": "", `url --url="https://mirror.example/rhel9/BaseOS/x86_64/os/"`: "cdrom"}), LintOptions{}, nil, []string{"network-missing"}},
		{"no target disk in bake", edit(map[string]string{"ignoredisk --only-use=vdb": "", "clearpart --all --initlabel --drives=vdb": "clearpart --all --initlabel"}), LintOptions{}, []string{"10:warning:target-disk"}, nil},
		{"no target disk in place", edit(map[string]string{"ignoredisk --only-use=vdb": "", "clearpart --all --initlabel --drives=vdb": "clearpart --all --initlabel"}), LintOptions{Mode: ModeInPlace}, nil, []string{"target-disk"}},
		{"duplicate single command", edit(map[string]string{"selinux --enforcing": "selinux --enforcing\nselinux --permissive"}), LintOptions{}, []string{"16:warning:repeated-command"}, nil},
		{"duplicate partition", edit(map[string]string{"part /boot --size=1024 --fstype=xfs": "part / --size=1"}), LintOptions{}, []string{"13:warning:duplicate"}, nil},
		{"parse error", edit(map[string]string{"selinux --enforcing": "selinux --enforcing --bogus"}), LintOptions{}, []string{"15:error:bad-option"}, nil},
		{"missing end stops the rules", "text\n%post\necho\n", LintOptions{}, []string{"3:error:missing-end"}, []string{"power-action-missing"}},
		{"explicit version wins", good, LintOptions{Version: "F45"}, nil, []string{"bad-option"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := lintText(t, c.text, c.opts)
			for _, w := range c.want {
				if !hasKey(fs, w) {
					t.Errorf("missing %s in %v", w, findingKeys(fs))
				}
			}
			for _, r := range c.not {
				for _, f := range fs {
					if f.Rule == r {
						t.Errorf("unexpected %s: %v", r, f)
					}
				}
			}
			for _, f := range fs {
				if _, ok := Rules[f.Rule]; !ok {
					t.Errorf("finding with undocumented rule %q", f.Rule)
				}
			}
		})
	}
}

func TestLintRulesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/kickstart-lint.md")
	if err != nil {
		t.Fatal(err)
	}
	for rule := range Rules {
		if !strings.Contains(string(doc), "`"+rule+"`") {
			t.Errorf("rule %s is not documented in docs/kickstart-lint.md", rule)
		}
	}
}

func TestVersionFromText(t *testing.T) {
	for text, want := range map[string]string{
		"\n\n#version=RHEL8\ntext\n": "RHEL8",
		"text\n#version=DEVEL\n":     "DEVEL",
		"#version=bogus\n":           "",
		"text\n":                     "",
		" #version=F40\n":            "",
	} {
		if got := VersionFromText([]byte(text)); got != want {
			t.Errorf("VersionFromText(%q) = %q, want %q", text, got, want)
		}
	}
}

// TestLintCorpus lints every corpus file with the version ksvalidator used:
// nothing may crash, each problem ksvalidator printed with a line number
// must be a lint error on that line, and the problems it only counted
// (deprecations, duplicates) must be warnings.
func TestLintCorpus(t *testing.T) {
	dir := conformanceDir(t)
	verdicts := loadCorpusVerdicts(t)
	parseRules := map[string]bool{}
	for _, r := range codeRule {
		parseRules[r] = true
	}
	for _, v := range verdicts {
		data, err := os.ReadFile(filepath.Join(dir, "corpus", v.Path))
		if err != nil {
			t.Fatal(err)
		}
		_, fs := Lint(Source{Name: v.Path, Data: data}, LintOptions{Version: v.Version})
		errLines := map[int]bool{}
		parseLines := map[int]Severity{}
		for _, f := range fs {
			if !parseRules[f.Rule] {
				continue
			}
			if f.Severity == SeverityError {
				errLines[f.Pos.Line] = true
			}
			if s, ok := parseLines[f.Pos.Line]; !ok || f.Severity < s {
				parseLines[f.Pos.Line] = f.Severity
			}
		}
		for _, p := range v.Problems {
			if !errLines[p.Line] {
				t.Errorf("%s:%d: ksvalidator: %s; lint has no error there", v.Path, p.Line, p.Message)
			}
		}
		listed := map[int]bool{}
		for _, p := range v.Problems {
			listed[p.Line] = true
		}
		for line, sev := range parseLines {
			if !listed[line] && sev != SeverityWarning {
				t.Errorf("%s:%d: lint error where ksvalidator printed no line-numbered problem (it only counts deprecations and duplicates)", v.Path, line)
			}
		}
		// Lint keeps every parse problem: the lines ksvalidator counts.
		_, diags := Parse(Source{Name: v.Path, Data: data}, Options{Version: v.Version})
		_, diagLines := validatorCount(diags)
		if len(diagLines) != len(parseLines) {
			t.Errorf("%s: parse problems on %d lines, lint reports parse findings on %d", v.Path, len(diagLines), len(parseLines))
		}
		for line := range diagLines {
			if _, ok := parseLines[line]; !ok {
				t.Errorf("%s:%d: parse problem missing from lint", v.Path, line)
			}
		}
	}
	// The other corpus files (Debian, SUSE, Windows answer files in oz/)
	// are not kickstarts, but lint must survive them.
	err := filepath.Walk(filepath.Join(dir, "corpus", "oz"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, fs := Lint(Source{Name: p, Data: data}, LintOptions{})
		if len(fs) == 0 {
			t.Errorf("%s: no findings for a file that is not a kickstart", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

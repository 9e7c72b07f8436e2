package kickstart

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Mode is what the install is for.
type Mode string

const (
	// ModeBake installs onto a volume that becomes an image: the instance
	// must end by itself and the disk must not carry instance-specific state.
	ModeBake Mode = "bake"
	// ModeInPlace installs the instance's own system, which then boots.
	ModeInPlace Mode = "in-place"
)

// LintOptions control Lint.
type LintOptions struct {
	// Version is the syntax version; "" uses the file's "#version=" line
	// if it has one (as pykickstart's versionFromFile), else DefaultVersion.
	Version string
	// Mode is ModeBake (default) or ModeInPlace.
	Mode Mode
	// Resolver follows %include and %ksappend (nil: not followed).
	Resolver Resolver
	// Provider is the cloud the install runs on ("" any); "opennebula"
	// changes the power-action rules (see powerAction).
	Provider string
	// NodeHook: the cloud's hosts run nchookd (on OpenNebula its deploy
	// wrapper), which gives the installer <on_reboot>destroy and boots the
	// installed disk after it: the power action is free again, as on
	// Eucalyptus, and the OpenNebula rules do not apply.
	NodeHook bool
}

// Finding is one lint result.
type Finding struct {
	Pos      Pos
	Severity Severity
	Rule     string
	Message  string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s: %s", f.Pos.File, f.Pos.Line, f.Severity, f.Rule, f.Message)
}

// Rules lists every rule id Lint can report, with a one-line summary;
// docs/kickstart-lint.md explains each.
var Rules = map[string]string{
	"encoding":             "the kickstart is not UTF-8",
	"syntax":               "a line pykickstart cannot split, or an empty kickstart",
	"unknown-command":      "a command this syntax version does not know",
	"unknown-section":      "a %section this syntax version does not know",
	"missing-end":          "a section not closed by %end",
	"bad-option":           "unknown options, missing or extra arguments, invalid values",
	"section-header":       "a bad section header or section content",
	"conflict":             "commands that cannot be used together",
	"removed-command":      "a command removed in this syntax version",
	"deprecated":           "a deprecated command, option or section",
	"duplicate":            "a repeated definition (same mount point, user, repo, network device…)",
	"repeated-command":     "a single command given more than once: only the last one counts",
	"include":              "an %include or %ksappend that cannot be read",
	"include-generated":    "an %include of a file a %pre script writes, not checked",
	"rootpw-missing":       "no rootpw: a passwordless root, or an installer stopped to ask",
	"rootpw-plaintext":     "a clear-text root password",
	"power-action-missing": "no reboot/poweroff/halt/shutdown: the installer waits at the end",
	"power-action-mode":    "a power action that does not suit the mode",
	"swap-in-image":        "swap in an image being baked",
	"hardcoded-mac":        "a MAC address fixed in the kickstart or its scripts",
	"persistent-net-rules": "udev persistent-net rules or HWADDR left in a baked image",
	"selinux-relabel":      "SELinux relabelling not in the last %post, or left to first boot",
	"display-mode":         "a graphical install, or no text/cmdline",
	"vnc-install":          "an install that waits for or serves VNC",
	"missing-answer":       "a required answer missing: the installer stops to ask",
	"interactive-script":   "a script or setting that reads from a terminal",
	"url-hash":             "an unquoted '#' in a value: the rest of the line is a comment",
	"network-missing":      "a network install without a network command",
	"target-disk":          "baking without restricting the install to the target volume",
}

var codeRule = map[string]string{
	CodeEncoding:       "encoding",
	CodeSyntax:         "syntax",
	CodeUnknownCommand: "unknown-command",
	CodeUnknownSection: "unknown-section",
	CodeMissingEnd:     "missing-end",
	CodeOption:         "bad-option",
	CodeRemoved:        "removed-command",
	CodeDeprecated:     "deprecated",
	CodeDuplicate:      "duplicate",
	CodeConflict:       "conflict",
	CodeSection:        "section-header",
	CodeInclude:        "include",
}

var reVersionLine = regexp.MustCompile(`(?m)^#version=(.*)$`)

// VersionFromText returns the version a "#version=" line names, as
// pykickstart's versionFromFile finds it ("" if none or unknown).
func VersionFromText(data []byte) string {
	for _, line := range pySplitLinesKeepEnds(string(data)) {
		if pyStrip(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#version=") {
			v, err := LookupVersion(pyRStrip(line[len("#version="):]))
			if err != nil {
				return ""
			}
			return v.Name
		}
	}
	return ""
}

// Lint parses a kickstart and checks it for the traps of unattended cloud
// installs. The parse problems come first as findings (errors and
// warnings with pykickstart's judgement); the cloud rules follow.
func Lint(src Source, opts LintOptions) (*File, []Finding) {
	if opts.Mode == "" {
		opts.Mode = ModeBake
	}
	version := opts.Version
	if version == "" {
		version = VersionFromText(src.Data)
	}
	resolver := opts.Resolver
	if resolver != nil {
		// A file a %pre script writes exists only in the installer: do not
		// read whatever the checking machine has under that name.
		first, _ := Parse(src, Options{Version: version})
		var pre []string
		for _, s := range first.Sections {
			if s.Kind == "%pre" || s.Kind == "%pre-install" {
				pre = append(pre, s.Text())
			}
		}
		if len(pre) > 0 {
			resolver = preAwareResolver{resolver, pre}
		}
	}
	f, diags := Parse(src, Options{Version: version, Resolver: resolver})
	l := &linter{f: f, mode: opts.Mode, provider: opts.Provider, nodeHook: opts.NodeHook}
	l.v, _ = LookupVersion(f.Version)
	for _, d := range diags {
		rule := codeRule[d.Code]
		if d.Code == CodeInclude && l.generatedByPre(d) {
			l.add(d.Pos, SeverityInfo, "include-generated", "%s: the file exists only during the install, so it was not checked", d.Message)
			continue
		}
		l.add(d.Pos, d.Severity, rule, "%s", d.Message)
		if d.Fatal {
			l.fatal = true
		}
	}
	if !l.fatal {
		l.run()
	}
	l.sort()
	return f, l.out
}

// preAwareResolver refuses the includes a %pre script writes.
type preAwareResolver struct {
	Resolver
	pre []string
}

func (r preAwareResolver) Resolve(from, target string) (Source, error) {
	for _, p := range r.pre {
		if strings.Contains(p, target) {
			return Source{}, fmt.Errorf("written by a %%pre script during the install")
		}
	}
	return r.Resolver.Resolve(from, target)
}

type linter struct {
	f    *File
	v    Version
	mode Mode
	// provider is LintOptions.Provider, nodeHook LintOptions.NodeHook.
	provider string
	nodeHook bool
	out      []Finding
	fatal    bool
}

func (l *linter) add(pos Pos, sev Severity, rule, format string, args ...any) {
	l.out = append(l.out, Finding{Pos: pos, Severity: sev, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (l *linter) sort() {
	order := map[string]int{l.f.Name: 0}
	for _, inc := range l.f.Includes {
		if _, ok := order[inc.Source]; !ok && inc.Source != "" {
			order[inc.Source] = len(order)
		}
	}
	sort.SliceStable(l.out, func(i, j int) bool {
		a, b := l.out[i], l.out[j]
		oa, okA := order[a.Pos.File]
		ob, okB := order[b.Pos.File]
		if !okA {
			oa = len(order)
		}
		if !okB {
			ob = len(order)
		}
		if oa != ob {
			return oa < ob
		}
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		return a.Pos.Line < b.Pos.Line
	})
}

// generatedByPre reports whether an unreadable include names a file some
// %pre script writes (the usual "%include /tmp/part-include" pattern).
func (l *linter) generatedByPre(d Diagnostic) bool {
	for _, inc := range l.f.Includes {
		if inc.Pos != d.Pos || inc.Followed || inc.Target == "" {
			continue
		}
		for _, s := range l.f.Sections {
			if (s.Kind == "%pre" || s.Kind == "%pre-install") && strings.Contains(s.Text(), inc.Target) {
				return true
			}
		}
	}
	return false
}

func (l *linter) run() {
	l.duplicates()
	l.rootpw()
	l.powerAction()
	l.swap()
	l.mac()
	l.selinux()
	l.display()
	l.answers()
	l.scripts()
	l.hashInWord()
	l.network()
	l.targetDisk()
}

func (l *linter) first() Pos {
	return Pos{l.f.Name, 1}
}

// pending reports whether some %include or %ksappend was not read, so a
// command missing from the checked text may still come from it.
func (l *linter) pending() bool {
	for _, inc := range l.f.Includes {
		if !inc.Followed {
			return true
		}
	}
	return false
}

// absent reports a missing command: as an info when unread includes may
// supply it.
func (l *linter) absent(sev Severity, rule, format string, args ...any) {
	if l.pending() {
		l.add(l.first(), SeverityInfo, rule, "%s (unless an %%include that was not read supplies it)", fmt.Sprintf(format, args...))
		return
	}
	l.add(l.first(), sev, rule, format, args...)
}

// has reports whether a command family appears (parsed without error).
func (l *linter) has(key string) bool { return l.f.Last(key) != nil }

func (l *linter) duplicates() {
	seen := map[string]*Command{}
	for _, c := range l.f.Commands {
		if c.Err != "" || c.Status != "ok" {
			continue
		}
		cls := lookupClass(c.Class)
		if cls == nil || cls.Multi {
			continue
		}
		if prev, ok := seen[c.Key]; ok {
			what := c.Name
			if prev.Name != c.Name {
				what = fmt.Sprintf("%s (same command as %s)", c.Name, prev.Name)
			}
			l.add(c.Pos, SeverityWarning, "repeated-command", "%s given again: it replaces the one at %s:%d (the last one wins)", what, prev.Pos.File, prev.Pos.Line)
		}
		seen[c.Key] = c
	}
}

func (l *linter) rootpw() {
	if l.v.CommandStatus("rootpw") == "" {
		return
	}
	rp := l.f.Last("rootpw")
	if rp == nil {
		if len(l.f.All("rootpw")) > 0 {
			return // its error is reported already
		}
		sev := SeverityWarning
		msg := "no rootpw: on this version Anaconda locks root when a kickstart has no rootpw, but image tools that reuse kickstarts (ami-creator, livecd-creator) leave root without a password; say what you mean with 'rootpw --lock' or 'rootpw --iscrypted HASH'"
		if l.v.Num < 26000 { // before F28/RHEL8 the root password is a required answer
			sev = SeverityError
			msg = "no rootpw: Anaconda stops to ask for a root password (an unattended install hangs), and image tools such as ami-creator leave a passwordless root that anyone can log in or su to (seed 000); add 'rootpw --lock' or 'rootpw --iscrypted HASH'"
		}
		l.absent(sev, "rootpw-missing", "%s", msg)
		return
	}
	if pw := rp.Positional; len(pw) > 0 && !rp.Has("--iscrypted") {
		l.add(rp.Pos, SeverityInfo, "rootpw-plaintext", "root password in clear text: anyone who can read the kickstart (or the instance's user-data) has it; use --iscrypted with a SHA-512 hash, or --lock")
	}
}

func (l *linter) powerAction() {
	action := l.f.PowerAction()
	if l.provider == "opennebula" && !l.nodeHook {
		// OpenNebula's KVM driver writes no <on_reboot>: a guest reboot
		// boots the same kernel and initrd, the installer again; the end
		// of an install is the VM reaching POWEROFF, in both modes.
		switch action {
		case "":
			l.absent(SeverityError, "power-action-missing", "no reboot, poweroff, halt or shutdown: at the end Anaconda waits for a key press on a console nobody watches, so the install never ends; on OpenNebula add 'poweroff' (kscloud waits for POWEROFF, then boots the installed disk or saves it)")
		case "reboot":
			l.add(l.f.Last("reboot").Pos, SeverityError, "power-action-mode", "reboot loops the installer on OpenNebula: its KVM driver writes no <on_reboot>, so the VM boots the same installer kernel and initrd again and the install starts over (only nchookd on the node changes that); use poweroff: kscloud then drops the installer and boots the disk (in place) or saves it (bake)")
		case "halt":
			l.add(l.f.Last("reboot").Pos, SeverityWarning, "power-action-mode", "halt stops the CPUs but does not power the VM off: OpenNebula keeps it RUNNING and kscloud waits until its timeout; use poweroff")
		}
		return
	}
	if action == "" {
		l.absent(SeverityError, "power-action-missing", "no reboot, poweroff, halt or shutdown: at the end Anaconda waits for a key press on a console nobody watches, so the instance never finishes; add %s", map[Mode]string{ModeBake: "'poweroff' (bake: the instance must stop so its volume can be snapshotted)", ModeInPlace: "'reboot' (in place: the installed system boots next)"}[l.mode])
		return
	}
	pos := l.f.Last("reboot").Pos
	switch {
	case action == "halt":
		l.add(pos, SeverityWarning, "power-action-mode", "halt stops the CPUs but does not power the machine off: the cloud still sees a running instance and the install is only detected by the inactivity watchdog; use %s", map[Mode]string{ModeBake: "poweroff", ModeInPlace: "reboot"}[l.mode])
	case l.mode == ModeBake && action == "reboot":
		l.add(pos, SeverityError, "power-action-mode", "reboot in a bake boots the freshly installed system, which then changes the disk before it is snapshotted (first-boot services, cloud-init, machine-id, SSH host keys); use poweroff")
	case l.mode == ModeInPlace && (action == "poweroff" || action == "shutdown"):
		l.add(pos, SeverityInfo, "power-action-mode", "%s in place: accepted (the instance is started again from its disk), but 'reboot' boots the installed system without a stop/start cycle", action)
	}
}

func isSwap(c *Command) bool {
	if len(c.Positional) > 0 && c.Positional[0] == "swap" {
		return true
	}
	if o, ok := c.Opt("--fstype"); ok && o.Value() == "swap" {
		return true
	}
	return false
}

func (l *linter) swap() {
	if l.mode != ModeBake {
		return
	}
	for _, c := range l.f.Commands {
		if c.Err != "" {
			continue
		}
		switch c.Key {
		case "partition", "logvol", "raid":
			if isSwap(c) {
				l.add(c.Pos, SeverityWarning, "swap-in-image", "swap in a baked image: every instance inherits it whatever its memory size, and swap belongs on a separate disk added at deployment (seed 003); drop it from the image")
			}
		case "autopart":
			switch {
			case c.Has("--noswap") || c.Status != "ok":
			case contains(l.v.Options("autopart"), "--noswap"):
				l.add(c.Pos, SeverityWarning, "swap-in-image", "autopart creates a swap partition in the baked image (seed 003); add --noswap")
			default:
				l.add(c.Pos, SeverityWarning, "swap-in-image", "autopart creates a swap partition in the baked image (seed 003) and this release has no --noswap; lay the disk out with part commands instead")
			}
		}
	}
}

var (
	reMAC          = regexp.MustCompile(`(?i)\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b`)
	reHWADDR       = regexp.MustCompile(`(?i)\b(HWADDR|MACADDR)\s*=\s*["']?[0-9a-f]{2}(:[0-9a-f]{2}){5}`)
	reUdevMAC      = regexp.MustCompile(`ATTR\{address\}\s*==`)
	rePersistent   = regexp.MustCompile(`70-persistent-net\.rules`)
	reRemovesRules = regexp.MustCompile(`\brm\b[^\n]*70-persistent-net\.rules|>\s*/etc/udev/rules\.d/70-persistent-net\.rules`)
)

func (l *linter) mac() {
	for _, c := range l.f.Commands {
		if c.Key != "network" || c.Err != "" {
			continue
		}
		if o, ok := c.Opt("--device"); ok && reMAC.MatchString(o.Value()) {
			l.add(c.Pos, SeverityWarning, "hardcoded-mac", "network --device=%s names a MAC address: a new instance (or every instance of a baked image) has another one, so this configuration does not apply and the interface stays down (seeds 001, 003); use --device=link or an interface name", o.Value())
		}
		if o, ok := c.Opt("--bindto"); ok && o.Value() == "mac" && l.mode == ModeBake {
			l.add(c.Pos, SeverityWarning, "hardcoded-mac", "network --bindto=mac ties the connection profile to this instance's MAC: instances of the image have other MACs (seeds 001, 003)")
		}
	}
	removes := false
	for _, s := range l.f.Sections {
		if t := s.Text(); s.Kind == "%post" && strings.Contains(t, "70-persistent-net") && reRemovesRules.MatchString(t) {
			removes = true
		}
	}
	for _, s := range l.f.Sections {
		if !s.IsScript() || s.Kind != "%post" {
			continue
		}
		for _, ln := range s.Body {
			if !strings.Contains(strings.ToUpper(ln.Text), "ADDR") && !strings.Contains(ln.Text, "70-persistent-net") {
				continue // the cheap test first: regexps are the linter's main cost
			}
			switch {
			case reHWADDR.MatchString(ln.Text):
				l.add(ln.Pos, SeverityWarning, "hardcoded-mac", "a %%post script writes a fixed MAC address (HWADDR/MACADDR): the next instance has another MAC and the interface is not brought up (seeds 001, 003)")
			case reUdevMAC.MatchString(ln.Text) && !strings.Contains(ln.Text, "rm "):
				l.add(ln.Pos, SeverityWarning, "hardcoded-mac", "a %%post script writes a udev rule matching a MAC address: other instances get renamed interfaces (eth0 becomes eth1, seed 001)")
			case rePersistent.MatchString(ln.Text) && !reRemovesRules.MatchString(ln.Text) && l.mode == ModeBake:
				l.add(ln.Pos, SeverityWarning, "persistent-net-rules", "a %%post script keeps or writes 70-persistent-net.rules: the image remembers this instance's MAC (seed 003); delete the file instead")
			}
		}
	}
	// RHEL 6 and older: anaconda copies the installer's persistent-net rules
	// and HWADDR into the target; a bake must remove them (seed 003).
	if l.mode == ModeBake && l.v.Num < verRHEL7 && !removes {
		l.add(l.first(), SeverityWarning, "persistent-net-rules", "this release records the installer's MAC in /etc/udev/rules.d/70-persistent-net.rules and HWADDR= in ifcfg files; without a %%post that removes them, instances of the image come up without network (seed 003)")
	}
}

var (
	reRelabel     = regexp.MustCompile(`\bfixfiles\b|\brestorecon\s+(-\w*\s+)*-\w*[rR]\w*\s+(\S+\s+)*/(\s|$)|\bsetfiles\b`)
	reAutorelabel = regexp.MustCompile(`/\.autorelabel\b`)
)

func (l *linter) selinux() {
	posts := l.f.Scripts("%post")
	for i, s := range posts {
		for _, ln := range s.Body {
			if !strings.Contains(ln.Text, "files") && !strings.Contains(ln.Text, "restorecon") && !strings.Contains(ln.Text, "autorelabel") {
				continue
			}
			if reRelabel.MatchString(ln.Text) && i != len(posts)-1 {
				last := posts[len(posts)-1]
				l.add(ln.Pos, SeverityWarning, "selinux-relabel", "SELinux relabel in a %%post that is not the last one (the last starts at %s:%d): files the later scripts create stay unlabelled and are denied at boot (seed 000); move the relabel to the last %%post", last.Pos.File, last.Pos.Line)
				break
			}
			if reAutorelabel.MatchString(ln.Text) && !strings.Contains(ln.Text, "rm ") {
				sev := SeverityWarning
				if l.mode == ModeInPlace {
					sev = SeverityInfo
				}
				l.add(ln.Pos, sev, "selinux-relabel", "/.autorelabel makes the first boot relabel the whole file system and reboot — in a baked image, every instance does it; relabel in the last %%post instead (restorecon -R / or setfiles)")
				break
			}
		}
	}
}

func (l *linter) display() {
	dm := l.f.Last("displaymode")
	switch {
	case dm == nil:
		l.absent(SeverityWarning, "display-mode", "neither text nor cmdline: Anaconda starts its graphical interface; an instance has no display, so it falls back to asking on the console whether to use VNC or text mode; add 'cmdline' (or 'text')")
	case dm.Name == "graphical":
		l.add(dm.Pos, SeverityWarning, "display-mode", "graphical install on an instance without a display: Anaconda cannot start X and asks on the console whether to use VNC; use 'cmdline' or 'text'")
	case dm.Name == "text":
		l.add(dm.Pos, SeverityInfo, "display-mode", "text mode stops and waits on the console when an answer is missing; 'cmdline' fails instead, which an unattended install reports sooner")
	}
	for _, c := range l.f.Commands {
		if c.Name == "vnc" && c.Err == "" && c.Status != "removed" {
			l.add(c.Pos, SeverityWarning, "vnc-install", "vnc makes the installer serve (or connect out to) a VNC console; nothing in the cloud watches it, and unless --password is set anyone who reaches the port controls the install; use cmdline, and kscloud.vnc=yes when an operator allows a console")
		}
		if c.Key == "ignoredisk" && c.Has("--interactive") {
			l.add(c.Pos, SeverityError, "interactive-script", "ignoredisk --interactive lets the user choose disks: an unattended install waits forever")
		}
		if c.Key == "firstboot" && c.Err == "" && (c.Has("--enable") || c.Has("--reconfig")) {
			sev := SeverityWarning
			l.add(c.Pos, sev, "interactive-script", "firstboot/initial-setup runs on the console at the first boot and waits for answers — on every instance of a baked image; use 'firstboot --disable'")
		}
	}
}

func (l *linter) answers() {
	for _, name := range []string{"lang", "keyboard", "timezone"} {
		if l.v.CommandStatus(name) != "ok" || len(l.f.All(name)) > 0 {
			continue
		}
		l.absent(SeverityWarning, "missing-answer", "no %s: pykickstart documents it as required; without it Anaconda stops on the console to ask (text or graphical mode) instead of installing", name)
	}
	partitioning := false
	for _, k := range []string{"autopart", "partition", "logvol", "volgroup", "raid", "btrfs", "mount", "reqpart"} {
		if len(l.f.All(k)) > 0 {
			partitioning = true
		}
	}
	if !partitioning {
		l.absent(SeverityError, "missing-answer", "no partitioning (autopart, part, logvol, …): Anaconda stops at Installation Destination and waits for someone to choose the disks")
	}
	if l.v.Num < verRHEL7 && l.v.CommandStatus("zerombr") == "ok" && partitioning && len(l.f.All("zerombr")) == 0 {
		l.add(l.first(), SeverityWarning, "missing-answer", "no zerombr: a fresh cloud volume has no partition table, and this release asks before initializing it; add zerombr")
	}
}

var (
	reTTYInput = regexp.MustCompile(`<\s*/dev/(tty\d*|console)\b|\bexec\s+<`)
	reReadCmd  = regexp.MustCompile(`(^|[;&|({]|\bthen|\bdo|\belse)\s*read\b`)
	reDialog   = regexp.MustCompile(`\b(chvt|whiptail|dialog)\b`)
)

// readsTerminal reports a shell line that waits for someone at a terminal:
// input redirected from a tty, "read -p", a bare "read" with no input of
// its own, or a dialog program.
func readsTerminal(line string) bool {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return false
	}
	if (strings.Contains(t, "/dev/") || strings.Contains(t, "exec")) && reTTYInput.MatchString(t) {
		return true
	}
	if (strings.Contains(t, "chvt") || strings.Contains(t, "whiptail") || strings.Contains(t, "dialog")) && reDialog.MatchString(t) {
		return true
	}
	if strings.Contains(t, "read") && reReadCmd.MatchString(t) {
		// "while read x; do … done < file" and "cmd | read x" read a file.
		return strings.Contains(t, "read -p") || !(strings.Contains(t, "<") || strings.Contains(t, "|") || strings.HasPrefix(t, "while"))
	}
	return false
}

func (l *linter) scripts() {
	for _, s := range l.f.Sections {
		if !s.IsScript() || !strings.HasSuffix(s.Interpreter, "sh") {
			continue
		}
		for _, ln := range s.Body {
			if readsTerminal(ln.Text) {
				l.add(ln.Pos, SeverityWarning, "interactive-script", "this %s line reads from a terminal: an unattended install has nobody at the console and waits forever", s.Kind)
				break
			}
		}
	}
}

// hashInWord finds command and section lines where '#' glued to a word
// started a comment: "url --url=http://h/os#frag --proxy=p" loses --proxy.
func (l *linter) hashInWord() {
	report := func(pos Pos, line, what string) {
		_, cut, err := splitLine(line, true)
		if err != nil || cut.At < 0 || !cut.InWord {
			return
		}
		sev := SeverityWarning
		if strings.HasPrefix(what, "url") || strings.HasPrefix(what, "repo") || strings.HasPrefix(what, "rootpw") || strings.HasPrefix(what, "liveimg") || strings.HasPrefix(what, "ostree") {
			sev = SeverityError
		}
		l.add(pos, sev, "url-hash", "'#' inside an unquoted word starts a comment: pykickstart reads only %q; quote the value (e.g. --url=\"…#…\")", strings.TrimSpace(line[:cut.At]))
	}
	for _, c := range l.f.Commands {
		report(c.Pos, c.Line, c.Name)
	}
	for _, s := range l.f.Sections {
		if s.Header != "" {
			report(s.Pos, s.Header, s.Kind)
		}
	}
}

func networkURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "ftp", "nfs":
		return true
	}
	return false
}

func (l *linter) network() {
	if len(l.f.All("network")) > 0 {
		return
	}
	var why string
	var pos Pos
	for _, c := range l.f.Commands {
		if c.Err != "" {
			continue
		}
		switch c.Name {
		case "nfs":
			why, pos = "installs over NFS", c.Pos
		case "url", "repo", "liveimg", "ostreesetup", "ostreecontainer":
			for _, o := range c.Opts {
				if (o.Name == "--url" || o.Name == "--baseurl" || o.Name == "--mirrorlist" || o.Name == "--metalink") && networkURL(o.Value()) {
					why, pos = fmt.Sprintf("%s fetches %s", c.Name, o.Value()), c.Pos
				}
			}
		}
		if why != "" {
			break
		}
	}
	if why == "" {
		for _, inc := range l.f.Includes {
			if IsURL(inc.Target) {
				why, pos = fmt.Sprintf("%s %s is read over the network", inc.Directive, inc.Target), inc.Pos
				break
			}
		}
	}
	if why != "" {
		l.add(pos, SeverityWarning, "network-missing", "%s but there is no network command: the installer's network then depends on the kernel command line (ip=, inst.ks=http…) and DHCP on whatever interface comes first; add 'network --bootproto=dhcp --device=link --activate'", why)
	}
}

func (l *linter) targetDisk() {
	if l.mode != ModeBake {
		return
	}
	if id := l.f.Last("ignoredisk"); id != nil && id.Has("--only-use") {
		return
	}
	if cp := l.f.Last("clearpart"); cp != nil && cp.Has("--drives") {
		return
	}
	partitioning := false
	for _, k := range []string{"autopart", "partition", "logvol", "volgroup", "raid", "btrfs", "reqpart", "clearpart"} {
		if len(l.f.All(k)) > 0 {
			partitioning = true
		}
	}
	if !partitioning {
		return
	}
	pos := l.first()
	if cp := l.f.Last("clearpart"); cp != nil {
		pos = cp.Pos
	}
	l.add(pos, SeverityWarning, "target-disk", "baking onto an attached volume with no 'ignoredisk --only-use=DISK' or 'clearpart --drives=DISK': Anaconda uses every disk it sees, including the builder's own, and clearpart --all would wipe them")
}

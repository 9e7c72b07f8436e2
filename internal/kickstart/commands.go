package kickstart

import (
	"fmt"
	"strings"
)

// This file holds the per-command checks pykickstart makes after argparse
// has parsed a command line (the parse() methods of its command classes),
// re-expressed in Go. Which variant applies is decided by the handler
// class of the syntax version, through its ancestry (cls.is), exactly as
// Python's method resolution does.

// obj is a pykickstart object's attributes (a command or a data object).
type obj map[string]any

func (o obj) str(k string) string {
	s, _ := o[k].(string)
	return s
}

func (o obj) list(k string) []any {
	l, _ := o[k].([]any)
	return l
}

func (o obj) truthy(k string) bool { return truthy(o[k]) }

func (o obj) clone() obj {
	c := make(obj, len(o))
	for k, v := range o {
		c[k] = v
	}
	return c
}

// setFrom is pykickstart's set_to_obj: every namespace value that is not
// None is copied onto the object.
func (o obj) setFrom(ns map[string]any) {
	for k, v := range ns {
		if v != nil {
			o[k] = v
		}
	}
}

// parseError is a KickstartParseError (or any other exception a command's
// parse raises: pykickstart's callers count them all as errors).
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

func errorf(format string, args ...any) error { return &parseError{fmt.Sprintf(format, args...)} }

type warnKind int

const (
	warnDeprecated warnKind = iota // KickstartDeprecationWarning
	warnDuplicate                  // a KickstartParseWarning about a repeated definition
)

type cmdWarning struct {
	kind warnKind
	msg  string
}

// fileState is what a pykickstart handler carries from one command line to
// the next: the command objects' attributes, the data lists of
// multi-instance commands, and which commands were seen.
type fileState struct {
	objs   map[string]obj   // class name -> command attributes
	lists  map[string][]obj // class name -> data objects parsed successfully
	seen   map[string]bool  // class name -> seen
	mpaths []mpath          // multipath's own bookkeeping
}

type mpath struct {
	name  string
	paths []obj
}

func newFileState() *fileState {
	return &fileState{objs: map[string]obj{}, lists: map[string][]obj{}, seen: map[string]bool{}}
}

func (fs *fileState) object(c *classInfo) obj {
	o, ok := fs.objs[c.Name]
	if !ok {
		o = obj(c.State).clone()
		fs.objs[c.Name] = o
	}
	return o
}

// cmdCtx is one command line being checked.
type cmdCtx struct {
	v     Version
	cls   *classInfo
	cmd   string   // the command name as written (pykickstart's currentCmd)
	line  string   // the whole line (currentLine)
	args  []string // the words after the command name
	fs    *fileState
	self  obj // the command object's attributes
	warns []cmdWarning
	res   *argResult // the last argparse result
	data  obj        // the data object a multi-instance command produced
}

func (c *cmdCtx) warn(kind warnKind, format string, args ...any) {
	c.warns = append(c.warns, cmdWarning{kind, fmt.Sprintf(format, args...)})
}

func (c *cmdCtx) noteDeprecatedOptions(res *argResult) {
	for _, o := range res.deprecated {
		c.warn(warnDeprecated, "The %s option has been deprecated and no longer has any effect. It may be removed from future releases, which will result in a fatal error from kickstart. Please modify your kickstart file to remove this option.", o)
	}
}

// parse is the command's self.op.parse_args(args).
func (c *cmdCtx) parse() (map[string]any, error) {
	if c.cls.parser == nil {
		return map[string]any{}, nil
	}
	res, err := c.cls.parser.parseKnownArgs(c.args, c.convert)
	if res != nil {
		c.res = res
		c.noteDeprecatedOptions(res)
	}
	if err != nil {
		return nil, err
	}
	if len(res.extras) > 0 {
		return nil, errorf("unrecognized arguments: %s", strings.Join(res.extras, " "))
	}
	return res.ns, nil
}

// parseKnown is self.op.parse_known_args(args).
func (c *cmdCtx) parseKnown() (map[string]any, []string, error) {
	if c.cls.parser == nil {
		return map[string]any{}, c.args, nil
	}
	res, err := c.cls.parser.parseKnownArgs(c.args, c.convert)
	if res != nil {
		c.res = res
		c.noteDeprecatedOptions(res)
	}
	if err != nil {
		return nil, nil, err
	}
	return res.ns, res.extras, nil
}

func (c *cmdCtx) newData() obj { return obj(c.cls.DataDefaults).clone() }

// dataList is the command's list of data objects parsed so far.
func (c *cmdCtx) dataList() []obj { return c.fs.lists[c.cls.Name] }

// contains is Python's "d in dataList()", with the data class's __eq__.
func (c *cmdCtx) contains(d obj, keys ...string) bool {
	for _, e := range c.dataList() {
		eq := true
		for _, k := range keys {
			if !pyEqual(d[k], e[k]) {
				eq = false
				break
			}
		}
		if eq {
			return true
		}
	}
	return false
}

func unexpected(command string, extra []string) error {
	return errorf("Unexpected arguments to %s command: %s", command, pyRepr(strList(extra)))
}

func strList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func anyDash(extra []string) bool {
	for _, a := range extra {
		if strings.HasPrefix(a, "-") {
			return true
		}
	}
	return false
}

func toStrings(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// convert applies an action's type function (argparse's type=).
func (c *cmdCtx) convert(a *action, s string) (any, error) {
	switch a.Type {
	case "":
		return s, nil
	case "int":
		n, err := pyInt(s)
		if err != nil {
			return nil, &typeError{}
		}
		return n, nil
	case "float":
		f, err := pyFloat(s)
		if err != nil {
			return nil, &typeError{}
		}
		return f, nil
	case "ksboolean":
		b, ok := ksBoolean(s)
		if !ok {
			return nil, &typeError{msg: "invalid boolean value: " + pyRepr(s)}
		}
		return b, nil
	case "commaSplit":
		return commaSplit(s), nil
	case "mountpoint":
		if strings.HasPrefix(s, "/") {
			return pyNormPath(s), nil
		}
		return s, nil
	case "part_cb":
		return strings.TrimPrefix(s, "/dev/"), nil
	case "firewall_port_cb":
		var out []any
		for _, p := range strings.Split(s, ",") {
			p = pyStrip(p)
			if !strings.Contains(p, ":") {
				p += ":tcp"
			}
			out = append(out, p)
		}
		return out, nil
	case "_device_cb":
		if !c.cls.is("F43_Raid") && strings.HasPrefix(s, "md") {
			return s[2:], nil
		}
		return s, nil
	case "level_cb": // btrfs
		if v, ok := c.mapLookup("levelMap", strings.ToLower(s)); ok {
			return v, nil
		}
		return nil, &typeError{ksErr: "Invalid btrfs level: " + s}
	case "_level_cb": // raid
		if v, ok := c.mapLookup("levelMap", strings.ToUpper(s)); ok {
			return v, nil
		}
		return nil, &typeError{ksErr: "Invalid raid level: " + s}
	case "_type_cb": // autopart
		if v, ok := c.mapLookup("typeMap", strings.ToLower(s)); ok {
			return v, nil
		}
		return nil, &typeError{ksErr: "Invalid autopart type: " + s}
	case "_when_cb": // snapshot
		if v, ok := c.mapLookup("whenMap", strings.ToLower(s)); ok {
			return v, nil
		}
		return nil, &typeError{ksErr: "Invalid parameter to --when= argument: " + s}
	case "_teamslaves_cb":
		return teamSlaves(s), nil
	}
	return s, nil
}

func (c *cmdCtx) mapLookup(attr, key string) (any, bool) {
	m, _ := c.cls.State[attr].(map[string]any)
	v, ok := m[key]
	return v, ok
}

// teamSlaves is network's --teamslaves parser: "eth1,eth2'{json}',eth3".
func teamSlaves(value string) []any {
	out := []any{}
	if value == "" {
		return out
	}
	parts := strings.Split(value, "'")
	if len(parts)%2 == 1 {
		if parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		} else {
			parts = append(parts, "")
		}
	}
	for i := 0; i+1 < len(parts); i += 2 {
		devs := strings.Split(strings.Trim(parts[i], ","), ",")
		for _, d := range devs[:len(devs)-1] {
			out = append(out, []any{d, ""})
		}
		out = append(out, []any{devs[len(devs)-1], parts[i+1]})
	}
	return out
}

// rootClass is the first pykickstart class of the command's family.
func (ci *classInfo) rootClass() string {
	root := ""
	for _, m := range ci.MRO {
		switch m {
		case "KickstartCommand", "DeprecatedCommand", "RemovedCommand":
			continue
		}
		root = m
	}
	return root
}

// run is the command's parse(): it returns the first error pykickstart would
// raise; warnings are collected in c.warns. Data objects of multi-instance
// commands end up in c.data.
func (c *cmdCtx) run() error {
	switch c.cls.Status {
	case "removed":
		return errorf("%s has been removed.", c.cmd)
	case "deprecated":
		c.warn(warnDeprecated, "The %s command has been deprecated and no longer has any effect.  It may be removed from future releases, which will result in a fatal error from kickstart.  Please modify your kickstart file to remove this command.", c.cmd)
		return nil
	}
	switch c.cls.rootClass() {
	case "FC3_Authconfig":
		if c.cls.is("F28_Authconfig") {
			c.warn(warnDeprecated, "The authconfig command will be deprecated, use authselect instead.")
		}
		return nil
	case "F28_Authselect", "FC3_DeviceProbe":
		return nil
	case "FC3_AutoPart":
		return c.autopart()
	case "FC3_Bootloader":
		return c.bootloader()
	case "F17_BTRFS":
		return c.btrfs()
	case "FC3_Cdrom", "RHEL7_Hmc":
		if len(c.args) > 0 {
			return errorf("Kickstart command %s does not take any arguments", c.cmd)
		}
		return nil
	case "FC3_Device":
		return c.device()
	case "FC3_DisplayMode":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		if c.cls.is("F26_DisplayMode") && c.cmd == "cmdline" && c.self.truthy("nonInteractive") {
			return errorf("Kickstart command cmdline does not support --non-interactive parameter")
		}
		return nil
	case "FC6_DmRaid":
		return c.dmraid()
	case "FC3_DriverDisk":
		return c.driverdisk()
	case "F20_Eula":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		if len(extra) > 0 {
			return errorf("Kickstart command eula does not take any arguments")
		}
		if !c.self.truthy("agreed") {
			return errorf("Kickstart command eula expects the --agreed option")
		}
		return nil
	case "F12_Fcoe":
		return c.simpleData("nic", "A FCOE device with the name %s has already been defined.")
	case "F12_Group":
		return c.simpleData("name", "A group with the name %s has already been defined.")
	case "FC6_User":
		return c.simpleData("name", "A user with the name %s has already been defined.")
	case "FC6_Iscsi":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.data = c.newData()
		c.data.setFrom(ns)
		return nil
	case "FC3_HardDrive":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		if !c.cls.is("F33_HardDrive") {
			bp, pt := c.self["biospart"], c.self["partition"]
			if (bp == nil && pt == nil) || (bp != nil && pt != nil) {
				return errorf("One of biospart or partition options must be specified.")
			}
		}
		return nil
	case "FC3_IgnoreDisk":
		return c.ignoredisk()
	case "FC3_Upgrade":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		if c.cls.is("F11_Upgrade") {
			if s, ok := ns["root_device"].(string); ok && s == "" {
				return errorf("Kickstart command %s does not accept empty parameter %s", "upgrade", "--root-device")
			}
		}
		return nil
	case "FC6_IscsiName":
		_, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if len(extra) > 0 {
			return unexpected("iscsiname", extra)
		}
		return nil
	case "RHEL5_Key":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		switch {
		case c.self.truthy("skip"):
		case len(extra) != 1:
			return errorf("Kickstart command %s requires one argument", "key")
		case anyDash(extra):
			return unexpected("key", extra)
		}
		return nil
	case "FC3_Keyboard":
		return c.keyboard()
	case "FC3_Lang":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if len(extra) > 0 {
			return unexpected("lang", extra)
		}
		c.self.setFrom(ns)
		return nil
	case "FC3_LangSupport":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if anyDash(extra) {
			return unexpected("langsupport", extra)
		}
		c.self.setFrom(ns)
		return nil
	case "FC6_Logging":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		if c.self.truthy("port") && !c.self.truthy("host") {
			return errorf("Can't specify --port without --host.")
		}
		return nil
	case "FC3_LogVol":
		return c.logvol()
	case "FC3_Method":
		// pykickstart's method class has no parse(): using it is a TypeError.
		return errorf("parse() not implemented for KickstartCommand")
	case "F29_Module":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if len(extra) > 0 {
			return errorf("The enable module command does not take position arguments!")
		}
		c.data = c.newData()
		c.data.setFrom(ns)
		return nil
	case "F27_Mount":
		return c.mount()
	case "RHEL3_Mouse":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if len(extra) != 1 {
			return errorf("Kickstart command %s requires one argument", "mouse")
		}
		if anyDash(extra) {
			return unexpected("mouse", extra)
		}
		c.self.setFrom(ns)
		return nil
	case "FC6_MultiPath":
		return c.multipath()
	case "FC3_Network":
		return c.network()
	case "F28_Nvdimm":
		return c.nvdimm()
	case "F21_OSTreeSetup":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		url := c.self.str("url")
		if !(strings.HasPrefix(url, "file:") || strings.HasPrefix(url, "http:") || strings.HasPrefix(url, "https:")) {
			return errorf("ostree repos must use file, HTTP or HTTPS protocol.")
		}
		return nil
	case "FC3_Partition":
		return c.partition()
	case "FC3_Raid":
		return c.raid()
	case "F19_Realm":
		return c.realm()
	case "FC3_Reboot":
		if !c.cls.is("FC6_Reboot") {
			return nil
		}
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		return nil
	case "FC6_Repo":
		return c.repo()
	case "F10_Rescue":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		if truthy(ns["nomount"]) && truthy(ns["romount"]) {
			return errorf("Only one of --nomount and --romount may be specified for rescue command.")
		}
		c.self.setFrom(ns)
		return nil
	case "RHEL8_RHSM":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		keys, ok := ns["activation_keys"].([]any)
		if !ok {
			return errorf("'NoneType' object is not iterable")
		}
		for _, k := range keys {
			if s, _ := k.(string); s == "" {
				return errorf("Empty string is not a valid activation key.")
			}
		}
		c.self.setFrom(ns)
		return nil
	case "FC3_RootPw":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		ok := truthy(ns["password"])
		if c.cls.is("F18_RootPw") {
			ok = ok || truthy(ns["lock"])
		}
		if !ok {
			return errorf("A single argument is expected for the %s command", "rootpw")
		}
		if len(extra) > 0 {
			return unexpected("rootpw", extra)
		}
		c.self.setFrom(ns)
		return nil
	case "FC6_Services":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		if !(c.self.truthy("disabled") || c.self.truthy("enabled")) {
			return errorf("One of --disabled or --enabled must be provided.")
		}
		return nil
	case "F26_Snapshot":
		return c.snapshot()
	case "F22_SshKey":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if len(extra) > 0 {
			return unexpected("sshkey", extra)
		}
		d := c.newData()
		d.setFrom(ns)
		c.data = d
		if c.contains(d, "username") {
			c.warn(warnDuplicate, "An ssh user with the name %s has already been defined.", d.str("username"))
		}
		return nil
	case "F13_SshPw":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if !truthy(ns["password"]) {
			return errorf("A single argument is expected for the %s command", "sshpw")
		}
		if len(extra) > 0 {
			return unexpected("sshpw", extra)
		}
		d := c.newData()
		d.setFrom(ns)
		c.data = d
		if c.contains(d, "username") {
			c.warn(warnDuplicate, "An ssh user with the name %s has already been defined.", d.str("username"))
		}
		return nil
	case "RHEL8_Syspurpose":
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if len(extra) > 0 {
			return errorf("The syspurpose command does not take positional arguments!")
		}
		c.self.setFrom(ns)
		return nil
	case "F33_Timesource":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		d := c.newData()
		d.setFrom(ns)
		c.data = d
		return c.exclusiveOptions(ns, true, "timesource")
	case "FC3_Timezone":
		return c.timezone()
	case "F7_Updates":
		if c.cls.is("F34_Updates") {
			ns, err := c.parse()
			if err != nil {
				return err
			}
			c.self.setFrom(ns)
			return nil
		}
		ns, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if upd, _ := ns["updates"].([]any); len(upd) > 1 {
			return errorf("Kickstart command %s only takes one argument", "updates")
		}
		if len(extra) > 0 {
			return unexpected("updates", extra)
		}
		return nil
	case "FC3_Url":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		if c.cls.is("F18_Url") {
			return c.exclusiveOptions(ns, true, "url")
		}
		return nil
	case "FC3_VolGroup":
		return c.volgroup()
	case "FC3_ZeroMbr":
		if c.cls.is("F9_ZeroMbr") {
			_, err := c.parse()
			return err
		}
		_, extra, err := c.parseKnown()
		if err != nil {
			return err
		}
		if len(extra) > 0 {
			c.warn(warnDeprecated, "The zerombr command no longer takes any options.  In future releases, this will result in a fatal error from kickstart.  Please modify your kickstart file to remove any options.")
		}
		return nil
	case "FC3_ZFCP":
		ns, err := c.parse()
		if err != nil {
			return err
		}
		d := c.newData()
		d.setFrom(ns)
		c.data = d
		keys := []string{"devnum", "wwpn", "fcplun"}
		if c.cls.Data == "FC3_ZFCPData" {
			keys = append(keys, "scsiid", "scsilun")
		}
		if c.contains(d, keys...) {
			c.warn(warnDuplicate, "A zfcp with this information has already been defined.")
		}
		if c.cls.is("F37_ZFCP") {
			dev, wwpn, lun := d.truthy("devnum"), d.truthy("wwpn"), d.truthy("fcplun")
			if !((dev && !wwpn && !lun) || (dev && wwpn && lun)) {
				return errorf("Only --devnum or --devnum with --wwpn and --fcplun are allowed.")
			}
		}
		return nil
	}
	// Every other command: parse_args and keep the values (autostep,
	// bootc, clearpart, firewall, firstboot, interactive, liveimg,
	// lilocheck, mediacheck, monitor, nfs, ostreecontainer, rdp, reqpart,
	// selinux, skipx, unsupported_hardware, vnc, xconfig, zipl).
	ns, err := c.parse()
	if err != nil {
		return err
	}
	c.self.setFrom(ns)
	return nil
}

// simpleData is parse_args into a data object with a duplicate check on one
// attribute.
func (c *cmdCtx) simpleData(key, dupMsg string) error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	d := c.newData()
	d.setFrom(ns)
	c.data = d
	if c.contains(d, key) {
		c.warn(warnDuplicate, dupMsg, d.str(key))
	}
	return nil
}

// exclusiveOptions is the "one of --a, --b must be given" check of url,
// repo and timesource.
func (c *cmdCtx) exclusiveOptions(ns map[string]any, required bool, command string) error {
	var all, used []string
	for _, pair := range c.self.list("exclusive_required_options") {
		p, _ := pair.([]any)
		if len(p) != 2 {
			continue
		}
		attr, _ := p[0].(string)
		opt, _ := p[1].(string)
		all = append(all, opt)
		if truthy(ns[attr]) {
			used = append(used, opt)
		}
	}
	if required && len(used) == 0 {
		return errorf("One of -%s options must be specified for %s command.", strings.Join(all, ", "), command)
	}
	if len(used) > 1 {
		return errorf("Only one of %s options may be specified for %s command.", strings.Join(used, ", "), command)
	}
	return nil
}

func (c *cmdCtx) autopart() error {
	if !c.cls.is("F9_AutoPart") {
		if len(c.args) > 0 {
			return errorf("Kickstart command %s does not take any arguments", "autopart")
		}
		return nil
	}
	ns, err := c.parse()
	if err != nil {
		return err
	}
	c.self.setFrom(ns)
	isBtrfs := func() bool {
		typeMap, _ := c.cls.State["typeMap"].(map[string]any)
		// _typeAsStr: the first key (in the map's definition order, where
		// "btrfs" precedes the aliases) whose value is the type.
		b, ok := typeMap["btrfs"]
		return ok && c.self["type"] != nil && pyEqual(c.self["type"], b)
	}
	if c.cls.is("F21_AutoPart") {
		if c.self.str("fstype") == "btrfs" {
			return errorf("autopart --fstype=btrfs is not valid fstype, use --type=btrfs instead")
		}
		if isBtrfs() && c.self.truthy("fstype") {
			return errorf("autopart --fstype cannot be used with --type=btrfs")
		}
	}
	if c.cls.is("F29_AutoPart") && c.self.truthy("pbkdf_time") && c.self.truthy("pbkdf_iterations") {
		return errorf("Only one of --pbkdf-time and --pbkdf-iterations can be specified.")
	}
	if c.cls.is("F38_AutoPart") && c.self.truthy("hibernation") && c.self.truthy("noswap") {
		return errorf("Only one of --noswap and --hibernation can be specified.")
	}
	if c.cls.is("F41_AutoPart") && c.self.truthy("hw_passphrase") && (!c.self.truthy("encrypted") || !strings.HasPrefix(c.self.str("luks_version"), "luks2-")) {
		return errorf("hw-passphrase may be specified only with LUKSv2 HW-OPAL encrypted devices")
	}
	if (c.cls.is("RHEL8_AutoPart") || c.cls.is("RHEL10_AutoPart")) && isBtrfs() {
		return errorf("autopart --type=btrfs is not supported")
	}
	return nil
}

func (c *cmdCtx) bootloader() error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	if truthy(ns["_md5pass"]) {
		ns["password"] = ns["_md5pass"]
		ns["isCrypted"] = true
		delete(ns, "_md5pass")
	}
	c.self.setFrom(ns)
	if c.cls.is("F17_Bootloader") && strings.Contains(c.self.str("bootDrive"), ",") {
		return errorf("--boot-drive accepts only one argument")
	}
	if c.cls.is("F39_Bootloader") && c.self.truthy("sdboot") && c.self.truthy("extlinux") {
		return errorf("Only one of --sdboot and --extlinux may be specified for bootloader command.")
	}
	return nil
}

func (c *cmdCtx) btrfs() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	d := c.newData()
	d.setFrom(ns)
	if !d.truthy("format") {
		d["preexist"] = true
	} else if d.truthy("preexist") {
		d["format"] = false
	}
	if len(extra) == 0 {
		return errorf("btrfs must be given a mountpoint")
	}
	if anyDash(extra) {
		return unexpected("btrfs", extra)
	}
	mp := extra[0]
	if strings.HasPrefix(mp, "/") {
		mp = pyNormPath(mp)
	}
	d["mountpoint"] = mp
	d["devices"] = strList(extra[1:])
	c.data = d
	if len(extra) == 1 && !d.truthy("subvol") {
		return errorf("btrfs must be given a list of partitions")
	}
	if len(extra) == 1 {
		return errorf("btrfs subvol requires specification of parent volume")
	}
	if d.truthy("subvol") && !d.truthy("name") {
		return errorf("btrfs subvolume requires a name")
	}
	if c.contains(d, "mountpoint") {
		c.warn(warnDuplicate, "A btrfs volume with the mountpoint %s has already been defined.", mp)
	}
	if c.cls.is("F23_BTRFS") && (d.truthy("preexist") || !d.truthy("format")) && d.truthy("mkfsopts") {
		return errorf("--mkfsoptions with --noformat or --useexisting has no effect.")
	}
	return nil
}

func (c *cmdCtx) device() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	if !c.cls.is("F8_Device") {
		if len(extra) != 2 {
			return errorf("device command requires two arguments: module type and name")
		}
		if anyDash(extra) {
			return unexpected("device", extra)
		}
		c.self.setFrom(ns)
		return nil
	}
	if len(extra) != 1 {
		return errorf("%s command requires a single argument: %s", "device", "module name")
	}
	if anyDash(extra) {
		return unexpected("device", extra)
	}
	d := c.newData()
	d.setFrom(ns)
	d["moduleName"] = extra[0]
	c.data = d
	if c.contains(d, "moduleName") {
		c.warn(warnDuplicate, "A module with the name %s has already been defined.", extra[0])
	}
	return nil
}

func (c *cmdCtx) dmraid() error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	d := c.newData()
	d.setFrom(ns)
	name := d.str("name")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	d["name"] = name
	c.data = d
	if c.contains(d, "name", "devices") {
		c.warn(warnDuplicate, "A DM RAID device with the name %s and devices %s has already been defined.", name, pyRepr(d["devices"]))
	}
	return nil
}

func (c *cmdCtx) driverdisk() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	parts, _ := ns["partition"].([]any)
	if len(parts) > 1 {
		return errorf("Only one partition may be specified for driverdisk command.")
	}
	if len(extra) > 0 {
		return unexpected("driverdisk", extra)
	}
	part, src := len(parts) > 0, truthy(ns["source"])
	if !c.cls.is("FC4_DriverDisk") {
		if part && src {
			return errorf("Only one of --source and partition may be specified for driverdisk command.")
		}
		if !part && !src {
			return errorf("One of --source or partition must be specified for driverdisk command.")
		}
	} else {
		bios := truthy(ns["biospart"])
		switch {
		case part && src:
			return errorf("Only one of --source and partition may be specified for driverdisk command.")
		case part && bios:
			return errorf("Only one of --biospart and partition may be specified for driverdisk command.")
		case src && bios:
			return errorf("Only one of --biospart and --source may be specified for driverdisk command.")
		}
		if !part && !src && !bios {
			return errorf("One of --source, --biospart, or partition must be specified for driverdisk command.")
		}
	}
	d := c.newData()
	d.setFrom(ns)
	if part {
		d["partition"] = parts[0]
	}
	c.data = d
	return nil
}

func (c *cmdCtx) ignoredisk() error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	c.self.setFrom(ns)
	if !c.cls.is("F8_IgnoreDisk") {
		return nil
	}
	n := 0
	if c.self.truthy("ignoredisk") {
		n++
	}
	if c.self.truthy("onlyuse") {
		n++
	}
	if c.cls.is("RHEL6_IgnoreDisk") && !c.cls.is("F29_IgnoreDisk") {
		if c.self.truthy("interactive") {
			n++
		}
		if n != 1 {
			return errorf("One of --drives , --only-use , or --interactive must be specified for ignoredisk command.")
		}
		if c.self.truthy("interactive") {
			c.self["ignoredisk"] = []any{}
		}
		return nil
	}
	if n != 1 {
		return errorf("One of --drives or --only-use must be specified for ignoredisk command.")
	}
	return nil
}

func (c *cmdCtx) keyboard() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	kbd, _ := ns["kbd"].([]any)
	if !c.cls.is("F18_Keyboard") {
		if len(kbd) != 1 {
			return errorf("Kickstart command %s requires one argument", "keyboard")
		}
		if len(extra) > 0 {
			return unexpected("keyboard", extra)
		}
		c.self["keyboard"] = kbd[0]
		return nil
	}
	c.self.setFrom(ns)
	if len(kbd) > 1 {
		return errorf("A single argument is expected for the %s command", "keyboard")
	}
	if len(extra) > 0 {
		return unexpected("keyboard", extra)
	}
	if len(kbd) == 0 && !c.self.truthy("vc_keymap") && !c.self.truthy("x_layouts") {
		return errorf("One of --xlayouts, --vckeymap options with value(s) or argument is expected for the keyboard command")
	}
	return nil
}

func (c *cmdCtx) logvol() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		return unexpected("logvol", extra)
	}
	d := c.newData()
	d.setFrom(ns)
	if mp, ok := ns["mntpoint"].([]any); ok && len(mp) > 0 {
		d["mountpoint"] = mp[0]
	}
	if !d.truthy("format") {
		d["preexist"] = true
	}
	c.data = d
	if c.contains(d, "vgname", "name") {
		c.warn(warnDuplicate, "A logical volume with the name %s has already been defined in volume group %s.", d.str("name"), d.str("vgname"))
	}
	thinChecks := func() error {
		if d.truthy("thin_volume") && d.truthy("thin_pool") {
			return errorf("--thin and --thinpool cannot both be specified for the same logvol")
		}
		if d.truthy("thin_volume") && !d.truthy("pool_name") {
			return errorf("--thin requires --poolname to specify pool name")
		}
		if (d.truthy("chunk_size") || d.truthy("metadata_size")) && !d.truthy("thin_pool") {
			return errorf("--chunksize and --metadatasize are for thin pools only")
		}
		return nil
	}
	if c.cls.is("RHEL6_LogVol") {
		return thinChecks()
	}
	if c.cls.is("F17_LogVol") {
		if d.truthy("resize") && !d.truthy("preexist") {
			return errorf("--resize can only be used in conjunction with --useexisting")
		}
		if d.truthy("resize") && !d.truthy("size") {
			return errorf("--resize requires --size to indicate new size")
		}
	}
	if c.cls.is("F20_LogVol") {
		if err := thinChecks(); err != nil {
			return err
		}
		if !d.truthy("preexist") && !d.truthy("percent") && !d.truthy("size") && !d.truthy("recommended") && !d.truthy("hibernation") {
			return errorf("No size given for logical volume. Use one of --useexisting, --noformat, --size, --percent, or --hibernation.")
		}
		if p, ok := d["percent"].(int64); ok && (p < 0 || p > 100) {
			return errorf("Percentage must be between 0 and 100.")
		}
	}
	if c.cls.is("F21_LogVol") && d.truthy("size") && d.truthy("percent") {
		return errorf("--size and --percent cannot both be specified for the same logvol")
	}
	if c.cls.is("F23_LogVol") && (d.truthy("cache_size") || d.truthy("cache_mode") || d.truthy("cache_pvs")) {
		if d.truthy("preexist") {
			return errorf("Adding a cache to an existing logical volume is not supported")
		}
		if d.truthy("thin_volume") {
			return errorf("Thin volumes cannot be cached")
		}
		if !d.truthy("cache_pvs") {
			return errorf("Cache needs to have a list of (fast) PVs specified")
		}
		if !d.truthy("cache_size") {
			return errorf("Cache needs to have size specified")
		}
		if m := d.str("cache_mode"); m != "" && m != "writeback" && m != "writethrough" {
			return errorf("Invalid cache mode given: %s", m)
		}
	}
	if c.cls.is("RHEL7_LogVol") || c.cls.is("F23_LogVol") {
		if !d.truthy("format") && d.truthy("mkfsopts") {
			return errorf("--mkfsoptions with --noformat has no effect.")
		}
		if d.truthy("fsprofile") && d.truthy("mkfsopts") {
			return errorf("--mkfsoptions and --fsprofile cannot be used together.")
		}
	}
	if c.cls.is("F29_LogVol") && d.truthy("pbkdf_time") && d.truthy("pbkdf_iterations") {
		return errorf("Only one of --pbkdf-time and --pbkdf-iterations can be specified.")
	}
	if c.cls.is("RHEL8_LogVol") && d.str("fstype") == "btrfs" {
		return errorf("Btrfs file system is not supported")
	}
	return nil
}

func (c *cmdCtx) mount() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		return unexpected("mount", extra)
	}
	d := c.newData()
	d.setFrom(ns)
	if l, ok := ns["device"].([]any); ok && len(l) > 0 {
		d["device"] = l[0]
	}
	mp := ""
	if l, ok := ns["mntpoint"].([]any); ok && len(l) > 0 {
		mp, _ = l[0].(string)
	}
	d["mount_point"] = mp
	c.data = d
	if strings.ToLower(mp) != "none" && !strings.HasPrefix(mp, "/") {
		return errorf("Invalid mount point '%s' given", mp)
	}
	if r, ok := d["reformat"].(bool); ok && !r && d.truthy("mkfs_opts") {
		return errorf("'--mkfsoptions' requires --reformat")
	}
	return nil
}

func (c *cmdCtx) multipath() error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	d := c.newData()
	d.setFrom(ns)
	name := d.str("name")
	dev := name
	if i := strings.LastIndex(dev, "/"); i >= 0 {
		dev = dev[i+1:]
	}
	parent := -1
	for i, mp := range c.fs.mpaths {
		for _, p := range mp.paths {
			if pyEqual(p["device"], d["device"]) {
				return errorf("Device '%s' is already used in multipath '%s'", p.str("device"), p.str("mpdev"))
			}
		}
		if mp.name == dev {
			parent = i
		}
	}
	d["mpdev"] = dev
	// pykickstart tests "if not parent", so the first multipath (index 0)
	// always starts a new group.
	if parent <= 0 {
		c.fs.mpaths = append(c.fs.mpaths, mpath{name: name, paths: []obj{d}})
	} else {
		c.fs.mpaths[parent].paths = append(c.fs.mpaths[parent].paths, d)
	}
	return nil
}

// validateInterfaceName is network's validate_network_interface_name.
func validateInterfaceName(name string) string {
	vlanID, haveID := int64(0), false
	if i := strings.Index(name, "."); i >= 0 {
		if name[:i] == "vlan" {
			return "When using the <prefix>.<vlan id> interface name notation, <prefix> can't be equal to 'vlan'."
		}
		n, err := pyInt(name[i+1:])
		if err != nil {
			return "If network --interfacename contains a '.', valid vlan id should follow."
		}
		vlanID, haveID = n, true
	}
	if strings.HasPrefix(name, "vlan") {
		n, err := pyInt(name[len("vlan"):])
		if err != nil {
			return "If network --interfacename starts with 'vlan', valid vlan id should follow."
		}
		vlanID, haveID = n, true
	}
	if haveID && (vlanID < 0 || vlanID > 4095) {
		return "The vlan id is out of the 0-4095 vlan id range."
	}
	return ""
}

func (c *cmdCtx) network() error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	d := c.newData()
	d.setFrom(ns)
	c.data = d
	if c.contains(d, "device") {
		if d.str("device") == "" {
			c.warn(warnDuplicate, "A network device with the name  has already been defined (neither line has --device, so pykickstart sees the same device twice).")
		} else {
			c.warn(warnDuplicate, "A network device with the name %s has already been defined.", d.str("device"))
		}
	}
	if c.cls.is("RHEL7_Network") {
		if msg := validateInterfaceName(d.str("interfacename")); msg != "" {
			return errorf("%s", msg)
		}
	}
	if c.cls.is("F22_Network") || c.cls.is("RHEL7_Network") {
		if d.truthy("bridgeopts") {
			if !d.truthy("bridgeslaves") {
				return errorf("Option --bridgeopts requires --bridgeslaves to be specified")
			}
			for _, opt := range strings.Split(d.str("bridgeopts"), ",") {
				_, value, _ := strings.Cut(opt, "=")
				if value == "" || strings.Contains(value, "=") {
					return errorf("Bad format of --bridgeopts, expecting key=value options separated by ','")
				}
			}
		}
	}
	if c.cls.is("F24_Network") && d.truthy("noipv4") {
		d["bootProto"] = ""
	}
	if c.cls.is("F27_Network") || c.cls.is("RHEL7_Network") {
		if d.str("bindto") == "mac" && d.truthy("vlanid") && !d.truthy("bondopts") {
			return errorf("--bindto=%s is not supported for this type of device", "mac")
		}
	}
	if c.cls.is("F39_Network") && !d.truthy("device") {
		for _, o := range []struct{ attr, opt string }{
			{"ipv4_dns_search", "--ipv4-dns-search"},
			{"ipv6_dns_search", "--ipv6-dns-search"},
			{"ipv4_ignore_auto_dns", "--ipv4-ignore-auto-dns"},
			{"ipv6_ignore_auto_dns", "--ipv6-ignore-auto-dns"},
		} {
			if d.truthy(o.attr) {
				return errorf("Option %s requires --device to be specified", o.opt)
			}
		}
	}
	return nil
}

func (c *cmdCtx) nvdimm() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		return errorf("Unexpected arguments to nvdimm command: %s", pyRepr(strList(extra)))
	}
	d := c.newData()
	d.setFrom(ns)
	action := ""
	if l, ok := ns["action"].([]any); ok && len(l) > 0 {
		action, _ = l[0].(string)
	}
	d["action"] = action
	c.data = d
	if d.truthy("namespace") && d.truthy("blockdevs") {
		return errorf("Only one of --namespace and --blockdevs device specifications can be used")
	}
	if c.contains(d, "action", "namespace", "blockdevs") {
		// pykickstart raises these as KickstartParseWarning: errors for
		// ksvalidator and for its own tests.
		if d.truthy("namespace") {
			return errorf("An action %s on namespace %s has already been defined.", action, d.str("namespace"))
		}
		if d.truthy("blockdevs") {
			return errorf("An action %s on devices %s has already been defined.", action, pyRepr(d["blockdevs"]))
		}
	}
	switch action {
	case "reconfigure":
		if !d.truthy("namespace") {
			return errorf("Action %s requires --namespace argument to be set", action)
		}
		if d.str("mode") == "sector" && !d.truthy("sectorsize") {
			return errorf("Action %s with mode %s requires --sectorsize argument to be set", action, "sector")
		}
	case "use":
		if !d.truthy("namespace") && !d.truthy("blockdevs") {
			return errorf("Action %s requires --namespace or --blockdevs argument to be set", action)
		}
	}
	return nil
}

func (c *cmdCtx) partition() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		return unexpected("partition", extra)
	}
	d := c.newData()
	d.setFrom(ns)
	mp := ""
	if l, ok := ns["mntpoint"].([]any); ok && len(l) > 0 {
		mp, _ = l[0].(string)
	}
	d["mountpoint"] = mp
	c.data = d
	if mp != "swap" && c.contains(d, "mountpoint") {
		c.warn(warnDuplicate, "A partition with the mountpoint %s has already been defined.", mp)
	}
	if c.cls.is("F17_Partition") {
		if d.truthy("resize") && !d.truthy("onPart") {
			return errorf("--resize can only be used in conjunction with --onpart")
		}
		if d.truthy("resize") && !d.truthy("size") {
			return errorf("--resize requires --size to specify new size")
		}
	}
	if c.cls.is("F20_Partition") && d.str("fstype") == "tmpfs" {
		if d.truthy("grow") || !pyEqual(d["maxSizeMB"], int64(0)) {
			return errorf("The --fstype=tmpfs option can't be used together with --grow or --maxsize")
		}
	}
	if c.cls.is("F23_Partition") {
		if !d.truthy("format") && d.truthy("mkfsopts") {
			return errorf("--mkfsoptions with --noformat has no effect.")
		}
		if d.truthy("fsprofile") && d.truthy("mkfsopts") {
			return errorf("--mkfsoptions and --fsprofile cannot be used together.")
		}
	}
	if c.cls.is("F29_Partition") && d.truthy("pbkdf_time") && d.truthy("pbkdf_iterations") {
		return errorf("Only one of --pbkdf-time and --pbkdf-iterations can be specified.")
	}
	if c.cls.is("F41_Partition") && d.truthy("hw_passphrase") && (!d.truthy("encrypted") || !strings.HasPrefix(d.str("luks_version"), "luks2-")) {
		return errorf("hw-passphrase may be specified only with LUKSv2 HW-OPAL encrypted devices")
	}
	if c.cls.is("RHEL8_Partition") || c.cls.is("RHEL9_Partition") || c.cls.is("RHEL11_Partition") {
		if strings.HasPrefix(mp, "btrfs.") || d.str("fstype") == "btrfs" {
			return errorf("Btrfs file system is not supported")
		}
	}
	return nil
}

func (c *cmdCtx) raid() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	if anyDash(extra) {
		return unexpected("raid", extra)
	}
	if !truthy(ns["partitions"]) && len(extra) > 0 {
		ns["partitions"] = strList(extra)
	}
	if !truthy(ns["format"]) {
		ns["preexist"] = true
	}
	parts := truthy(ns["partitions"])
	if !parts && !truthy(ns["preexist"]) {
		return errorf("Partitions required for %s", "raid")
	}
	if parts && truthy(ns["preexist"]) {
		return errorf("Members may not be specified for preexisting RAID device")
	}
	d := c.newData()
	d.setFrom(ns)
	if !c.cls.is("F19_Raid") {
		// Before F19 --device was a minor number: int(device).
		s, ok := d["device"].(string)
		if !ok {
			return errorf("int() argument must be a string, a bytes-like object or a real number, not 'NoneType'")
		}
		n, err := pyInt(s)
		if err != nil {
			return errorf("invalid literal for int() with base 10: %s", pyRepr(s))
		}
		d["device"] = n
	}
	if l, ok := ns["mntpoint"].([]any); ok && len(l) > 0 {
		d["mountpoint"] = l[0]
	}
	if parts {
		d["members"] = ns["partitions"]
	}
	c.data = d
	if c.contains(d, "device") {
		c.warn(warnDuplicate, "A RAID device with the name %s has already been defined.", fmt.Sprint(d["device"]))
	}
	if !d.truthy("preexist") && !d.truthy("level") {
		return errorf("RAID Partition defined without RAID level")
	}
	if d.truthy("preexist") && pyEqual(d["device"], "") {
		return errorf("Device required for preexisting RAID device")
	}
	if c.cls.is("F23_Raid") {
		if !d.truthy("format") && d.truthy("mkfsopts") {
			return errorf("--mkfsoptions with --noformat has no effect.")
		}
		if d.truthy("fsprofile") && d.truthy("mkfsopts") {
			return errorf("--mkfsoptions and --fsprofile cannot be used together.")
		}
	}
	if c.cls.is("F29_Raid") && d.truthy("pbkdf_time") && d.truthy("pbkdf_iterations") {
		return errorf("Only one of --pbkdf-time and --pbkdf-iterations can be specified.")
	}
	if c.cls.is("RHEL8_Raid") && d.str("fstype") == "btrfs" {
		return errorf("Btrfs file system is not supported")
	}
	return nil
}

// realm parses "realm join [options] REALM" with Python getopt's rules.
func (c *cmdCtx) realm() error {
	if c.self.truthy("join_realm") {
		return errorf("The realm command 'join' should only be specified once")
	}
	// currentLine[len(currentCmd):].strip(), counted in characters.
	rest := ""
	if r := []rune(c.line); len(r) > len([]rune(c.cmd)) {
		rest = pyStrip(string(r[len([]rune(c.cmd)):]))
	}
	args, err := SplitLine(rest, false)
	if err != nil {
		return errorf("%s", err.Error())
	}
	if len(args) == 0 {
		return errorf("Missing realm command arguments")
	}
	if args[0] != "join" {
		return errorf("Unsupported realm '%s' command", args[0])
	}
	longopts := []string{"client-software=", "server-software=", "membership-software=", "one-time-password=", "no-password", "computer-ou="}
	remaining, err := getoptLong(args[1:], longopts)
	if err != nil {
		return errorf("Invalid realm arguments: %s", err.Error())
	}
	if len(remaining) != 1 {
		return errorf("Specify only one realm to join")
	}
	c.self["join_realm"] = remaining[0]
	return nil
}

// getoptLong is Python's getopt.getopt(args, "", longopts): options end at
// the first non-option; long options may be abbreviated to a unique prefix.
func getoptLong(args []string, longopts []string) ([]string, error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		if args[0] == "--" {
			return args[1:], nil
		}
		if !strings.HasPrefix(args[0], "--") {
			return nil, fmt.Errorf("option -%s not recognized", string([]rune(args[0])[1]))
		}
		opt := args[0][2:]
		var optarg *string
		if i := strings.Index(opt, "="); i >= 0 {
			v := opt[i+1:]
			opt, optarg = opt[:i], &v
		}
		args = args[1:]
		var poss []string
		for _, o := range longopts {
			if strings.HasPrefix(o, opt) {
				poss = append(poss, o)
			}
		}
		if len(poss) == 0 {
			return nil, fmt.Errorf("option --%s not recognized", opt)
		}
		hasArg := false
		switch {
		case contains(poss, opt):
		case contains(poss, opt+"="):
			hasArg = true
		case len(poss) > 1:
			return nil, fmt.Errorf("option --%s not a unique prefix", opt)
		default:
			hasArg = strings.HasSuffix(poss[0], "=")
			opt = strings.TrimSuffix(poss[0], "=")
		}
		if hasArg {
			if optarg == nil {
				if len(args) == 0 {
					return nil, fmt.Errorf("option --%s requires argument", opt)
				}
				args = args[1:]
			}
		} else if optarg != nil {
			return nil, fmt.Errorf("option --%s must not have an argument", opt)
		}
	}
	return args, nil
}

func contains(l []string, s string) bool { return indexOf(l, s) >= 0 }

func (c *cmdCtx) repo() error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	if err := c.exclusiveOptions(ns, !c.cls.is("F15_Repo"), "repo"); err != nil {
		return err
	}
	d := c.newData()
	d.setFrom(ns)
	c.data = d
	if c.contains(d, "name") {
		c.warn(warnDuplicate, "A repo with the name %s has already been defined.", d.str("name"))
	}
	return nil
}

func (c *cmdCtx) snapshot() error {
	ns, err := c.parse()
	if err != nil {
		return err
	}
	d := c.newData()
	d.setFrom(ns)
	for _, e := range c.dataList() {
		if pyEqual(e["name"], d["name"]) {
			return errorf("Snapshot with the name %s has been already defined!", d.str("name"))
		}
	}
	if d["when"] == nil {
		return errorf("Snapshot \"when\" parameter must be specified!")
	}
	groups := strings.Split(d.str("origin"), "/")
	if len(groups) != 2 || groups[0] == "" || groups[1] == "" {
		return errorf("Snapshot origin %s must be specified by VG/LV!", d.str("origin"))
	}
	c.data = d
	return nil
}

func (c *cmdCtx) timezone() error {
	// RHEL7, F25 and later: the timezone argument is optional, but the
	// command needs at least one argument or option.
	if c.cls.is("RHEL7_Timezone") || c.cls.is("F25_Timezone") {
		ns, err := c.parse()
		if err != nil {
			return err
		}
		c.self.setFrom(ns)
		if len(c.args) == 0 {
			return errorf("At least one option and/or an argument are expected for the %s command", "timezone")
		}
		tz, _ := ns["timezone"].([]any)
		if len(tz) == 1 {
			c.self["timezone"] = tz[0]
		} else if len(tz) > 1 {
			return errorf("One or zero arguments are expected for the %s command", "timezone")
		}
		if !c.cls.is("RHEL10_Timezone") && c.self.truthy("ntpservers") && c.self.truthy("nontp") {
			return errorf("Options --nontp and --ntpservers are mutually exclusive")
		}
		if c.cls.is("F32_Timezone") && !c.cls.is("F40_Timezone") && contains(c.args, "--isUtc") {
			c.warn(warnDeprecated, "The option --isUtc will be deprecated in future releases. Please modify your kickstart file to replace this option with its preferred alias --utc.")
		}
		if c.cls.is("F33_Timezone") && !c.cls.is("F40_Timezone") {
			if c.self.truthy("ntpservers") {
				c.warn(warnDeprecated, "The option --ntpservers will be deprecated in future releases. Please modify your kickstart file to replace this option with timesource --ntp-server <server hostname> command invocation, one per NTP server.")
			}
			if c.self.truthy("nontp") {
				c.warn(warnDeprecated, "The option --nontp will be deprecated in future releases. Please modify your kickstart file to replace this option with timesource --ntp-disable command invocation.")
			}
		}
		return nil
	}
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	c.self.setFrom(ns)
	if len(extra) > 0 {
		return unexpected("timezone", extra)
	}
	if tz, _ := ns["timezone"].([]any); len(tz) > 0 {
		c.self["timezone"] = tz[0]
	}
	if c.cls.is("F18_Timezone") && c.self.truthy("ntpservers") && c.self.truthy("nontp") {
		return errorf("Options --nontp and --ntpservers are mutually exclusive")
	}
	return nil
}

func (c *cmdCtx) volgroup() error {
	ns, extra, err := c.parseKnown()
	if err != nil {
		return err
	}
	names, _ := ns["name"].([]any)
	if !truthy(ns["partitions"]) {
		if len(extra) > 0 {
			ns["partitions"] = strList(extra)
		} else if len(names) > 0 {
			ns["partitions"] = append([]any(nil), names[1:]...)
			names = names[:1]
			ns["name"] = names
		}
	}
	if !truthy(ns["format"]) {
		ns["preexist"] = true
	}
	d := c.newData()
	d.setFrom(ns)
	if len(names) == 0 {
		return errorf("volgroup must be given a VG name")
	}
	parts, pre := truthy(ns["partitions"]), truthy(ns["preexist"])
	if !parts && !pre {
		return errorf("volgroup must be given a list of partitions")
	}
	if parts && pre {
		return errorf("Members may not be specified for preexisting volgroup")
	}
	d["vgname"] = names[0]
	if parts {
		d["physvols"] = ns["partitions"]
	}
	c.data = d
	if c.contains(d, "vgname") {
		c.warn(warnDuplicate, "A volgroup with the name %s has already been defined.", d.str("vgname"))
	}
	if c.cls.is("F16_VolGroup") {
		if n, ok := d["reserved_space"].(int64); ok && n < 0 {
			return errorf("Volume group reserved space must be a positive integer.")
		}
		if n, ok := d["reserved_percent"].(int64); ok && !(0 < n && n < 100) {
			return errorf("Volume group reserved space percentage must be between 1 and 99.")
		}
	}
	return nil
}

package kickstart

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Pos is a place in a kickstart: the source's name and a 1-based line.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Severity of a diagnostic.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
	SeverityInfo
)

func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	}
	return "info"
}

// Diagnostic codes the parser reports.
const (
	CodeEncoding       = "encoding"        // the source is not UTF-8
	CodeSyntax         = "syntax"          // a line shlex cannot split
	CodeUnknownCommand = "unknown-command" // no such command in this version
	CodeUnknownSection = "unknown-section" // %foo is not a section
	CodeMissingEnd     = "missing-end"     // a section is not closed by %end
	CodeOption         = "option"          // bad options or arguments
	CodeRemoved        = "removed"         // the command was removed in this version
	CodeDeprecated     = "deprecated"      // deprecated command or option
	CodeDuplicate      = "duplicate"       // a repeated definition (same mountpoint, user…)
	CodeConflict       = "conflict"        // commands that cannot be used together
	CodeSection        = "section"         // a bad section header or body
	CodeInclude        = "include"         // %include / %ksappend that cannot be followed
)

// Diagnostic is one problem found while parsing.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Code     string
	Message  string
	// Fatal is set when pykickstart stops at this problem: nothing after
	// it was parsed.
	Fatal bool
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", d.Pos, d.Severity, d.Code, d.Message)
}

// Command is one command line.
type Command struct {
	Name string   // as written: "part", "poweroff", "auth"
	Args []string // the words after the name, as shlex split them
	// Opts are the options pykickstart recognised, in order, with
	// abbreviations expanded ("--only" → "--only-use").
	Opts []Opt
	// Positional are the words that are neither options nor option values.
	Positional []string
	Pos        Pos
	Line       string // the raw line, without its line ending
	// Key names the command family: every name of one pykickstart command
	// shares it ("reboot" for reboot/poweroff/halt/shutdown, "displaymode"
	// for text/graphical/cmdline, "partition" for part/partition). Unknown
	// commands use their name.
	Key string
	// Status is "ok", "deprecated", "removed", or "unknown".
	Status string
	// Class is pykickstart's handler class for the version ("" if unknown).
	Class string
	// Err is the error pykickstart reports for this line, if any.
	Err string
}

// Opt returns the last occurrence of an option, looked up by any of its
// spellings (on part, "--type" finds "--fstype": they are one option).
func (c *Command) Opt(name string) (Opt, bool) {
	names := []string{name}
	if cls := lookupClass(c.Class); cls != nil && cls.parser != nil {
		if a, ok := cls.parser.byOpt[name]; ok {
			names = a.Opts
		}
	}
	for i := len(c.Opts) - 1; i >= 0; i-- {
		if contains(names, c.Opts[i].Name) {
			return c.Opts[i], true
		}
	}
	return Opt{}, false
}

// Has reports whether the option was given.
func (c *Command) Has(name string) bool {
	_, ok := c.Opt(name)
	return ok
}

func lookupClass(name string) *classInfo {
	if name == "" {
		return nil
	}
	return loadSpec().Classes[name]
}

// Line is one line of a section body.
type Line struct {
	Pos  Pos
	Text string // without the line ending
}

// Section is one %section … %end block.
type Section struct {
	Kind   string   // "%post", "%packages", …
	Header string   // the raw header line, without its line ending
	Args   []string // the header's words after the kind
	Opts   []Opt    // the header options recognised
	Body   []Line
	Pos    Pos // the header line
	EndPos Pos // the %end line; zero when the section was not closed
	Err    string

	// Script sections (%pre, %pre-install, %post, %onerror, %traceback).
	Interpreter string // "/bin/sh" unless --interpreter
	NoChroot    bool   // %post --nochroot
	ErrorOnFail bool
	Log         string
}

// IsScript reports whether the section is a script.
func (s *Section) IsScript() bool {
	switch s.Kind {
	case "%pre", "%pre-install", "%post", "%onerror", "%traceback":
		return true
	}
	return false
}

// Include is one %include or %ksappend.
type Include struct {
	Pos       Pos
	Directive string // "%include" or "%ksappend"
	Target    string // as written
	Source    string // the name of what was loaded ("" if not followed)
	Err       error  // why it could not be followed
	Followed  bool
}

// File is a parsed kickstart.
type File struct {
	Name     string // the source's name
	Version  string // the syntax version it was parsed with
	Commands []*Command
	Sections []*Section
	Includes []*Include
	// Lines is the number of lines of the main source.
	Lines int
}

// Source is kickstart text and the name it is known by (a path or URL);
// includes resolve relative to the name.
type Source struct {
	Name string
	Data []byte
}

// Resolver loads what an %include or %ksappend names. from is the name of
// the source that contains the directive.
type Resolver interface {
	Resolve(from, target string) (Source, error)
}

// Options control Parse.
type Options struct {
	// Version is the syntax version ("" = DefaultVersion).
	Version string
	// Resolver follows %include and %ksappend; nil leaves them unread,
	// as ksvalidator does by default.
	Resolver Resolver
	// MaxIncludeDepth bounds nested includes (default 8).
	MaxIncludeDepth int
	// MaxTotalBytes bounds the text read through includes (default 16 MiB).
	MaxTotalBytes int64
	// MaxIncludes bounds how many includes are read in all (default 100):
	// a file that includes several others, each including it back under
	// another name, would otherwise grow exponentially with the depth.
	MaxIncludes int
}

// Parse parses a kickstart the way pykickstart's KickstartParser does for
// ksvalidator, and reports each problem pykickstart would report, with the
// same notion of error: after a fatal problem (an unknown section, a
// section without %end, a line shlex cannot split) nothing more is parsed.
// Deprecations and repeated definitions are warnings.
func Parse(src Source, opts Options) (*File, []Diagnostic) {
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.MaxIncludeDepth == 0 {
		opts.MaxIncludeDepth = 8
	}
	if opts.MaxTotalBytes == 0 {
		opts.MaxTotalBytes = 16 << 20
	}
	if opts.MaxIncludes == 0 {
		opts.MaxIncludes = 100
	}
	f := &File{Name: src.Name, Version: opts.Version}
	v, err := LookupVersion(opts.Version)
	if err != nil {
		return f, []Diagnostic{{Pos: Pos{src.Name, 0}, Severity: SeverityError, Code: CodeOption, Message: err.Error(), Fatal: true}}
	}
	f.Version = v.Name
	p := &parser{v: v, opts: opts, f: f, fs: newFileState(), open: map[string]*Section{}}
	p.total = int64(len(src.Data))
	lines, ok := p.preprocess(src)
	if !ok {
		return f, p.diags
	}
	empty := true
	for _, l := range lines {
		// bytes.strip(): ASCII whitespace only.
		if strings.Trim(l.text, " \t\n\r\v\f") != "" {
			empty = false
			break
		}
	}
	if empty {
		// ksvalidator refuses a file with nothing but (ASCII) whitespace.
		p.fail(Pos{src.Name, max(1, len(lines))}, CodeSyntax, "the kickstart is empty")
		return f, p.diags
	}
	for _, l := range lines {
		if l.pos.File == src.Name && l.pos.Line > f.Lines {
			f.Lines = l.pos.Line
		}
	}
	p.chain = []string{src.Name}
	p.stateMachine(newLineIter(lines))
	return f, p.diags
}

type rawLine struct {
	text string // with its line ending; "" is the end-of-source sentinel
	pos  Pos
}

type lineIter struct {
	lines []rawLine
	i     int
	back  *rawLine
	last  Pos
}

func newLineIter(lines []rawLine) *lineIter {
	// pykickstart appends "" so that the end of the text is seen as a line.
	end := Pos{}
	if len(lines) > 0 {
		end = lines[len(lines)-1].pos
	}
	return &lineIter{lines: append(lines, rawLine{"", end})}
}

func (it *lineIter) next() (rawLine, bool) {
	if it.back != nil {
		l := *it.back
		it.back = nil
		return l, true
	}
	if it.i >= len(it.lines) {
		return rawLine{}, false
	}
	l := it.lines[it.i]
	it.i++
	if l.text != "" {
		it.last = l.pos
	}
	return l, true
}

func (it *lineIter) put(l rawLine) { it.back = &l }

type parser struct {
	v     Version
	opts  Options
	f     *File
	fs    *fileState
	diags []Diagnostic
	fatal bool

	state        string // "" while reading commands, else the open section's kind
	includeDepth int
	open         map[string]*Section // per section kind, the one being read
	chain        []string            // the include chain, for cycle detection
	total        int64
	loads        int  // includes read
	overBudget   bool // an include budget was exhausted (reported once)

	droppedReported bool
}

func (p *parser) report(pos Pos, sev Severity, code, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{Pos: pos, Severity: sev, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) fail(pos Pos, code, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{Pos: pos, Severity: SeverityError, Code: code, Message: fmt.Sprintf(format, args...), Fatal: true})
	p.fatal = true
}

// splitSource decodes a source into lines with positions.
func splitSource(name string, data []byte) ([]rawLine, error) {
	if !utf8.Valid(data) {
		line := 1
		for i := 0; i < len(data); {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			if r == '\n' {
				line++
			}
			i += size
		}
		return nil, &posError{Pos{name, line}, "not valid UTF-8 (pykickstart reads kickstarts as UTF-8)"}
	}
	parts := pySplitLinesKeepEnds(string(data))
	out := make([]rawLine, len(parts))
	for i, t := range parts {
		out[i] = rawLine{t, Pos{name, i + 1}}
	}
	return out, nil
}

type posError struct {
	pos Pos
	msg string
}

func (e *posError) Error() string { return e.msg }

// preprocess expands %ksappend lines (pykickstart does this over the raw
// text before parsing: the appended text replaces the line verbatim).
func (p *parser) preprocess(src Source) ([]rawLine, bool) {
	lines, err := splitSource(src.Name, src.Data)
	if err != nil {
		pe := err.(*posError)
		p.fail(pe.pos, CodeEncoding, "%s", pe.msg)
		return nil, false
	}
	hasAppend := false
	for _, l := range lines {
		if strings.HasPrefix(pyStrip(l.text), "%ksappend") {
			hasAppend = true
			break
		}
	}
	if !hasAppend {
		return lines, true
	}
	// Rebuild the text with the appended sources spliced in, remembering
	// where each piece came from, then split it again: an appended file
	// without a final newline joins the next line, as in pykickstart.
	type piece struct {
		text string
		pos  Pos // position of the piece's first line
	}
	var pieces []piece
	for _, l := range lines {
		ll := pyStrip(l.text)
		if !strings.HasPrefix(ll, "%ksappend") {
			pieces = append(pieces, piece{l.text, l.pos})
			continue
		}
		fields := strings.Split(ll, " ")
		inc := &Include{Pos: l.pos, Directive: "%ksappend"}
		p.f.Includes = append(p.f.Includes, inc)
		if len(fields) < 2 {
			p.fail(l.pos, CodeInclude, "Illegal url for %%ksappend: %s", ll)
			return nil, false
		}
		inc.Target = fields[1]
		if p.opts.Resolver == nil {
			continue
		}
		if err := p.spend(); err != nil {
			inc.Err = err
			p.fail(l.pos, CodeInclude, "%%ksappend %s: %v", inc.Target, err)
			return nil, false
		}
		s, err := p.load(src.Name, inc.Target)
		if err != nil {
			inc.Err = err
			p.fail(l.pos, CodeInclude, "Unable to open %%ksappend file %s: %v", inc.Target, err)
			return nil, false
		}
		inc.Source, inc.Followed = s.Name, true
		if !utf8.Valid(s.Data) {
			p.fail(l.pos, CodeEncoding, "%%ksappend file %s is not valid UTF-8", s.Name)
			return nil, false
		}
		pieces = append(pieces, piece{string(s.Data), Pos{s.Name, 1}})
	}
	var out []rawLine
	carry := ""
	var carryPos Pos
	for _, pc := range pieces {
		parts := pySplitLinesKeepEnds(pc.text)
		for i, t := range parts {
			pos := Pos{pc.pos.File, pc.pos.Line + i}
			if carry != "" {
				t, pos = carry+t, carryPos
				carry = ""
			}
			if i == len(parts)-1 && !endsWithBreak(t) {
				carry, carryPos = t, pos
				continue
			}
			out = append(out, rawLine{t, pos})
		}
	}
	if carry != "" {
		out = append(out, rawLine{carry, carryPos})
	}
	return out, true
}

func endsWithBreak(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isLineBreak(r)
}

var errBudget = errors.New("include budget exhausted")

// spend counts one include against the budget; the first include over it
// gets an error that says so, the later ones errBudget (not reported).
func (p *parser) spend() error {
	if p.overBudget {
		return errBudget
	}
	if p.loads >= p.opts.MaxIncludes {
		p.overBudget = true
		return fmt.Errorf("more than %d includes: %w", p.opts.MaxIncludes, errBudget)
	}
	p.loads++
	return nil
}

// load resolves an include target with the resolver, within the byte budget.
func (p *parser) load(from, target string) (Source, error) {
	s, err := p.opts.Resolver.Resolve(from, target)
	if err != nil {
		return Source{}, err
	}
	p.total += int64(len(s.Data))
	if p.total > p.opts.MaxTotalBytes {
		p.overBudget = true
		return Source{}, fmt.Errorf("included text exceeds %d bytes: %w", p.opts.MaxTotalBytes, errBudget)
	}
	return s, nil
}

func isBlankOrComment(line string) bool {
	if line == "" || pyStrIsSpace(line) {
		return true
	}
	return strings.HasPrefix(pyLStrip(line), "#")
}

func validSection(kind string) bool {
	switch kind {
	case "%pre", "%pre-install", "%post", "%onerror", "%traceback", "%packages", "%certificate", "%addon", "%anaconda":
		return true
	}
	return false
}

// stateMachine is KickstartParser._stateMachine.
func (p *parser) stateMachine(it *lineIter) {
	for !p.fatal {
		l, ok := it.next()
		if !ok || l.text == "" {
			return
		}
		if isBlankOrComment(l.text) {
			continue
		}
		args, err := SplitLine(l.text, true)
		if err != nil {
			p.fail(l.pos, CodeSyntax, "%s", err)
			return
		}
		if len(args) == 0 || args[0] == "" {
			// pykickstart indexes args[0][0] and fails.
			p.fail(l.pos, CodeSyntax, "empty command name")
			return
		}
		if args[0] == "%include" {
			if len(args) == 1 || args[1] == "" {
				p.fail(l.pos, CodeInclude, "%%include needs a file name")
				return
			}
			p.include(l.pos, args[1])
			continue
		}
		switch {
		case p.state == "":
			if args[0] == "%ksappend" {
				continue
			}
			if strings.HasPrefix(args[0], "%") {
				kind := args[0]
				if !validSection(kind) {
					p.fail(l.pos, CodeUnknownSection, "Unknown kickstart section: %s", kind)
					return
				}
				p.state = kind
				p.header(kind, args, l)
				p.readSection(it)
			} else {
				p.command(args, l)
			}
		case p.includeDepth > 0:
			it.put(l)
			p.readSection(it)
		default:
			// A section opened in an included file and never closed:
			// pykickstart silently drops the rest of the including file.
			if !p.droppedReported {
				p.droppedReported = true
				p.report(l.pos, SeverityError, CodeSection, "this and the following lines are ignored: the %s section opened in an included file was not closed there", p.state)
			}
		}
	}
}

// readSection is KickstartParser._readSection.
func (p *parser) readSection(it *lineIter) {
	kind := p.state
	for !p.fatal {
		l, ok := it.next()
		if !ok {
			return
		}
		if l.text == "" {
			if p.includeDepth == 0 {
				if p.v.Num >= verF8 {
					p.fail(it.last, CodeMissingEnd, "Section %s does not end with %%end.", kind)
					return
				}
				p.finalize(kind, Pos{})
			}
			continue
		}
		if isBlankOrComment(l.text) && !allLines(kind) {
			continue
		}
		if strings.HasPrefix(pyLStrip(l.text), "%") {
			first := pySplitWS(l.text)[0]
			if !validSection(first) && first != "%end" && first != "%include" {
				p.bodyLine(kind, l)
				continue
			}
			args, err := SplitLine(l.text, false)
			if err != nil {
				p.fail(l.pos, CodeSyntax, "%s", err)
				return
			}
			switch {
			case len(args) > 0 && args[0] == "%end":
				p.finalize(kind, l.pos)
				return
			case len(args) > 0 && args[0] == "%include":
				if len(args) == 1 || args[1] == "" {
					p.fail(l.pos, CodeInclude, "%%include needs a file name")
					return
				}
				p.include(l.pos, args[1])
			case len(args) > 0 && args[0] == "%ksappend":
			case len(args) > 0 && validSection(args[0]):
				if p.v.Num >= verF8 {
					p.fail(l.pos, CodeMissingEnd, "Section %s does not end with %%end.", kind)
					return
				}
				it.put(l)
				p.finalize(kind, Pos{})
				return
			}
			continue
		}
		p.bodyLine(kind, l)
	}
}

func allLines(kind string) bool { return kind != "%packages" }

func (p *parser) bodyLine(kind string, l rawLine) {
	s := p.open[kind]
	if s == nil {
		// Lines reach a section object whose header was consumed by an
		// earlier %end (an %include quirk); keep them under a header-less
		// section like pykickstart's reset script object.
		s = &Section{Kind: kind, Pos: l.pos, Interpreter: "/bin/sh"}
		p.open[kind] = s
	}
	if kind == "%packages" {
		h, _, _ := strings.Cut(l.text, "#")
		if pyStrip(h) == "-" {
			p.fail(l.pos, CodeSection, "%%packages line \"-\" names nothing (pykickstart fails: string index out of range)")
			return
		}
	}
	s.Body = append(s.Body, Line{l.pos, strings.TrimRightFunc(l.text, isLineBreak)})
}

func (p *parser) finalize(kind string, end Pos) {
	s := p.open[kind]
	delete(p.open, kind)
	p.state = ""
	if s == nil {
		s = &Section{Kind: kind, Pos: end, Interpreter: "/bin/sh"}
	}
	s.EndPos = end
	p.f.Sections = append(p.f.Sections, s)
	if kind == "%certificate" {
		empty := true
		for _, b := range s.Body {
			if pyStrip(b.Text) != "" {
				empty = false
			}
		}
		if empty {
			pos := end
			if pos.Line == 0 {
				pos = s.Pos
			}
			p.fail(pos, CodeSection, "The %%certificate section is empty")
		}
	}
}

// header handles a section's opening line (Section.handleHeader).
func (p *parser) header(kind string, args []string, l rawLine) {
	s := &Section{Kind: kind, Header: strings.TrimRightFunc(l.text, isLineBreak), Args: args[1:], Pos: l.pos, Interpreter: "/bin/sh"}
	p.open[kind] = s
	if kind == "%addon" || kind == "%anaconda" {
		return
	}
	sp := p.v.sectionParser(kind)
	if sp == nil {
		return
	}
	plain := func(a *action, s string) (any, error) { return s, nil }
	res, err := sp.parseArgs(args[1:], plain)
	if res != nil {
		s.Opts = res.opts
		for _, o := range res.deprecated {
			p.report(l.pos, SeverityWarning, CodeDeprecated, "The %s option of %s has been deprecated and no longer has any effect.", o, kind)
		}
	}
	if err != nil {
		s.Err = err.Error()
		p.report(l.pos, SeverityError, CodeSection, "%s: %s", kind, err)
		return
	}
	ns := res.ns
	if s.IsScript() {
		s.Interpreter, _ = ns["interpreter"].(string)
		s.Log, _ = ns["log"].(string)
		s.ErrorOnFail = truthy(ns["errorOnFail"])
		s.NoChroot = truthy(ns["nochroot"])
		if kind == "%traceback" && p.v.Num >= verF34 {
			p.report(l.pos, SeverityWarning, CodeDeprecated, "The %%traceback section has been deprecated. It may be removed in the future, which will result in a fatal error from kickstart. Please modify your kickstart file to use the %%onerror section instead.")
		}
		return
	}
	switch kind {
	case "%certificate":
		if !truthy(ns["dir"]) && !truthy(ns["type"]) {
			s.Err = "One of --dir or --type must be specified for %certificate"
			p.report(l.pos, SeverityError, CodeSection, "%s", s.Err)
		}
	case "%packages":
		v := p.v.Num
		if v < verRHEL6 {
			return
		}
		if truthy(ns["defaultPackages"]) && truthy(ns["nobase"]) {
			s.Err = "--default and --nobase cannot be used together"
			p.report(l.pos, SeverityError, CodeSection, "%s", s.Err)
			return
		}
		if v < verF21 {
			return
		}
		if truthy(ns["defaultPackages"]) && truthy(ns["nocore"]) {
			s.Err = "--default and --nocore cannot be used together"
			p.report(l.pos, SeverityError, CodeSection, "%s", s.Err)
			return
		}
		if v < verF32 || v >= verF40 {
			return
		}
		for _, alias := range [][2]string{{"--instLangs", "--inst-langs"}, {"--excludeWeakdeps", "--exclude-weakdeps"}} {
			for _, a := range args {
				if a == alias[0] || strings.HasPrefix(a, alias[0]+"=") {
					p.report(l.pos, SeverityWarning, CodeDeprecated, "The %s option will be deprecated in future releases; use its alias %s.", alias[0], alias[1])
					return
				}
			}
		}
	}
}

// command dispatches a command line (BaseHandler.dispatcher).
func (p *parser) command(args []string, l rawLine) {
	cmd := &Command{
		Name: args[0], Args: args[1:], Pos: l.pos,
		Line: strings.TrimRightFunc(l.text, isLineBreak),
		Key:  args[0], Status: "unknown",
	}
	p.f.Commands = append(p.f.Commands, cmd)
	cls := p.v.commandClass(args[0])
	if cls == nil {
		cmd.Err = "Unknown command: " + args[0]
		p.report(l.pos, SeverityError, CodeUnknownCommand, "%s", cmd.Err)
		return
	}
	cmd.Class, cmd.Status, cmd.Key = cls.Name, cls.Status, familyKey(cls)
	cmd.Positional = cmd.Args
	p.fs.seen[cls.Name] = true
	for _, other := range cls.Conflicts {
		oc := p.v.commandClass(other)
		if oc != nil && p.fs.seen[oc.Name] {
			cmd.Err = fmt.Sprintf("The %s and %s commands can't be used at the same time.", args[0], other)
			p.report(l.pos, SeverityError, CodeConflict, "%s", cmd.Err)
			return
		}
	}
	c := &cmdCtx{v: p.v, cls: cls, cmd: args[0], line: l.text, args: args[1:], fs: p.fs, self: p.fs.object(cls)}
	err := c.run()
	if c.res != nil {
		cmd.Opts = c.res.opts
		cmd.Positional = c.res.positional
	}
	for _, w := range c.warns {
		code := CodeDeprecated
		if w.kind == warnDuplicate {
			code = CodeDuplicate
		}
		p.report(l.pos, SeverityWarning, code, "%s", w.msg)
	}
	if err != nil {
		cmd.Err = err.Error()
		code := CodeOption
		if cls.Status == "removed" {
			code = CodeRemoved
		}
		p.report(l.pos, SeverityError, code, "%s", cmd.Err)
		return
	}
	if c.data != nil && len(c.warns) == 0 {
		p.fs.lists[cls.Name] = append(p.fs.lists[cls.Name], c.data)
	}
}

// familyKey names a command family after its first pykickstart class:
// FC3_Reboot → "reboot", FC3_DisplayMode → "displaymode".
func familyKey(cls *classInfo) string {
	root := cls.rootClass()
	if i := strings.IndexByte(root, '_'); i >= 0 {
		root = root[i+1:]
	}
	return strings.ToLower(root)
}

// include follows an %include.
func (p *parser) include(pos Pos, target string) {
	inc := &Include{Pos: pos, Directive: "%include", Target: target}
	p.f.Includes = append(p.f.Includes, inc)
	if p.opts.Resolver == nil {
		return
	}
	if err := p.spend(); err != nil {
		inc.Err = err
		if err != errBudget {
			p.report(pos, SeverityError, CodeInclude, "%%include %s: %v", target, err)
		}
		return
	}
	if p.includeDepth >= p.opts.MaxIncludeDepth {
		inc.Err = fmt.Errorf("includes nested deeper than %d", p.opts.MaxIncludeDepth)
		p.report(pos, SeverityError, CodeInclude, "%%include %s: %v", target, inc.Err)
		return
	}
	from := pos.File
	src, err := p.load(from, target)
	if err != nil {
		inc.Err = err
		p.report(pos, SeverityError, CodeInclude, "%%include %s: %v", target, err)
		return
	}
	for _, name := range p.chain {
		if name == src.Name {
			inc.Err = fmt.Errorf("include cycle through %s", src.Name)
			p.report(pos, SeverityError, CodeInclude, "%%include %s: %v", target, inc.Err)
			return
		}
	}
	inc.Source, inc.Followed = src.Name, true
	lines, err := splitSource(src.Name, src.Data)
	if err != nil {
		pe := err.(*posError)
		inc.Err = err
		p.report(pe.pos, SeverityError, CodeEncoding, "%s", pe.msg)
		return
	}
	p.chain = append(p.chain, src.Name)
	p.includeDepth++
	p.stateMachine(newLineIter(lines))
	p.includeDepth--
	p.chain = p.chain[:len(p.chain)-1]
}

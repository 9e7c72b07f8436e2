package kickstart

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// This file emulates the part of Python's argparse (3.11) that pykickstart
// relies on to parse command options: abbreviations of long options,
// "--opt=value", "--", nargs, interleaved positionals (with argparse's
// greedy matching), type conversion, choices, required arguments, and the
// "unrecognized arguments" of parse_args.

// Opt is one option as written on a command or section line, resolved to
// the option string it stands for (abbreviations are expanded).
type Opt struct {
	Name   string   // the full option string, e.g. "--only-use"
	Dest   string   // pykickstart's attribute name, e.g. "onlyuse"
	Values []string // the argument strings given (none for flags)
	Given  string   // the word as written, e.g. "--only=sda" or "--only"
}

// Value returns the option's single argument ("" for flags).
func (o Opt) Value() string {
	if len(o.Values) == 0 {
		return ""
	}
	return o.Values[0]
}

// argError is an error argparse reports through parser.error(); pykickstart
// turns it into a KickstartParseError.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

// typeError is what a type function raises: an ArgumentTypeError carries its
// own message (msg), a ValueError gets argparse's "invalid <type> value".
type typeError struct {
	msg   string // ArgumentTypeError text, or "" for ValueError/TypeError
	ksErr string // a KickstartParseError raised directly by a callback
}

func (e *typeError) Error() string { return e.msg }

// converter converts one argument string for an action.
type converter func(a *action, s string) (any, error)

type argResult struct {
	ns         map[string]any
	extras     []string
	opts       []Opt
	deprecated []string // deprecated option strings used, in order
	seenDest   map[string]bool
	positional []string // words not taken by a known option (the "--" marker excluded)
}

var reNegativeNumber = regexp.MustCompile(`^-\p{Nd}+$|^-\p{Nd}*\.\p{Nd}+$`)

type optTuple struct {
	a        *action
	opt      string
	explicit *string
	given    string
}

// parseOptional is argparse's _parse_optional. It returns nil for a
// positional argument, a tuple with a nil action for an unknown option.
func (p *parserSpec) parseOptional(arg string) (*optTuple, error) {
	if arg == "" || arg[0] != '-' {
		return nil, nil
	}
	if a, ok := p.byOpt[arg]; ok {
		return &optTuple{a: a, opt: arg, given: arg}, nil
	}
	if len([]rune(arg)) == 1 {
		return nil, nil
	}
	if i := strings.IndexByte(arg, '='); i >= 0 {
		if a, ok := p.byOpt[arg[:i]]; ok {
			v := arg[i+1:]
			return &optTuple{a: a, opt: arg[:i], explicit: &v, given: arg}, nil
		}
	}
	tuples := p.optionTuples(arg)
	if len(tuples) > 1 {
		names := make([]string, len(tuples))
		for i, t := range tuples {
			names[i] = t.opt
		}
		return nil, &argError{fmt.Sprintf("ambiguous option: %s could match %s", arg, strings.Join(names, ", "))}
	}
	if len(tuples) == 1 {
		return &tuples[0], nil
	}
	if reNegativeNumber.MatchString(arg) {
		return nil, nil
	}
	if strings.Contains(arg, " ") {
		return nil, nil
	}
	return &optTuple{opt: arg, given: arg}, nil
}

// optionTuples is argparse's _get_option_tuples with allow_abbrev.
func (p *parserSpec) optionTuples(arg string) []optTuple {
	var out []optTuple
	r := []rune(arg)
	if len(r) >= 2 && r[1] == '-' {
		prefix := arg
		var explicit *string
		if i := strings.IndexByte(arg, '='); i >= 0 {
			prefix = arg[:i]
			v := arg[i+1:]
			explicit = &v
		}
		for _, o := range p.optList {
			if strings.HasPrefix(o, prefix) {
				out = append(out, optTuple{a: p.byOpt[o], opt: o, explicit: explicit, given: arg})
			}
		}
		return out
	}
	short := string(r[:2])
	shortArg := string(r[2:])
	for _, o := range p.optList {
		if o == short {
			v := shortArg
			out = append(out, optTuple{a: p.byOpt[o], opt: o, explicit: &v, given: arg})
		} else if strings.HasPrefix(o, arg) {
			out = append(out, optTuple{a: p.byOpt[o], opt: o, given: arg})
		}
	}
	return out
}

// parseKnownArgs is ArgumentParser.parse_known_args.
func (p *parserSpec) parseKnownArgs(args []string, conv converter) (*argResult, error) {
	res := &argResult{ns: map[string]any{}, seenDest: map[string]bool{}}
	for _, a := range p.actions {
		if a.Orphan {
			continue
		}
		if _, ok := res.ns[a.Dest]; !ok {
			res.ns[a.Dest] = a.def
		}
	}

	// Classify every argument: 'O' option, 'A' argument, '-' for "--".
	pattern := make([]byte, 0, len(args))
	optAt := map[int]*optTuple{}
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			pattern = append(pattern, '-')
			for i++; i < len(args); i++ {
				pattern = append(pattern, 'A')
			}
			break
		}
		t, err := p.parseOptional(args[i])
		if err != nil {
			return nil, err
		}
		if t == nil {
			pattern = append(pattern, 'A')
			continue
		}
		if t.a != nil && t.a.Deprecated {
			res.deprecated = append(res.deprecated, t.a.Opts[0])
		}
		optAt[i] = t
		pattern = append(pattern, 'O')
	}

	seen := map[*action]bool{}
	takeAction := func(a *action, argStrings []string, optString, given string) error {
		seen[a] = true
		val, err := p.getValues(a, argStrings, conv)
		if err != nil {
			return err
		}
		res.seenDest[a.Dest] = true
		switch a.Kind {
		case "store":
			res.ns[a.Dest] = val
		case "store_const", "store_true", "store_false":
			res.ns[a.Dest] = a.cnst
		case "append":
			res.ns[a.Dest] = append(copyList(res.ns[a.Dest]), val)
		case "append_const":
			res.ns[a.Dest] = append(copyList(res.ns[a.Dest]), a.cnst)
		case "count":
			n, _ := res.ns[a.Dest].(int64)
			res.ns[a.Dest] = n + 1
		case "extend":
			if cur := res.ns[a.Dest]; cur != nil {
				res.ns[a.Dest] = pyAdd(cur, val)
			} else {
				res.ns[a.Dest] = val
			}
		case "extend_const":
			if cur := res.ns[a.Dest]; cur != nil {
				res.ns[a.Dest] = pyAdd(a.cnst, val)
			} else {
				res.ns[a.Dest] = a.cnst
			}
		}
		if optString != "" {
			vals := append([]string(nil), argStrings...)
			res.opts = append(res.opts, Opt{Name: optString, Dest: a.Dest, Values: vals, Given: given})
		}
		return nil
	}

	var extras []string
	optionWord := make([]bool, len(args))
	consumeOptional := func(start int) (int, error) {
		t := optAt[start]
		if t.a == nil {
			extras = append(extras, args[start])
			return start + 1, nil
		}
		a := t.a
		if t.explicit != nil {
			n := matchCount(a.pattern, "A")
			switch {
			case n == 1:
				optionWord[start] = true
				return start + 1, takeAction(a, []string{*t.explicit}, t.opt, t.given)
			case n == 0 && len([]rune(t.opt)) > 1 && []rune(t.opt)[1] != '-' && *t.explicit != "":
				// Combined single-dash flags; pykickstart defines none.
				return 0, &argError{fmt.Sprintf("argument %s: ignored explicit argument %s", a.name(), pyRepr(*t.explicit))}
			case n < 0:
				return 0, &argError{fmt.Sprintf("argument %s: %s", a.name(), nargsError(a))}
			default:
				return 0, &argError{fmt.Sprintf("argument %s: ignored explicit argument %s", a.name(), pyRepr(*t.explicit))}
			}
		}
		n := matchCount(a.pattern, string(pattern[start+1:]))
		if n < 0 {
			return 0, &argError{fmt.Sprintf("argument %s: %s", a.name(), nargsError(a))}
		}
		stop := start + 1 + n
		for i := start; i < stop; i++ {
			optionWord[i] = true
		}
		return stop, takeAction(a, append([]string(nil), args[start+1:stop]...), t.opt, t.given)
	}

	positionals := []*action{}
	for _, a := range p.actions {
		if a.positional() && !a.Orphan {
			positionals = append(positionals, a)
		}
	}
	consumePositionals := func(start int) (int, error) {
		counts := matchPartial(positionals, string(pattern[start:]))
		for i, n := range counts {
			if err := takeAction(positionals[i], append([]string(nil), args[start:start+n]...), "", ""); err != nil {
				return 0, err
			}
			start += n
		}
		positionals = positionals[len(counts):]
		return start, nil
	}

	maxOpt := -1
	for i := range optAt {
		if i > maxOpt {
			maxOpt = i
		}
	}
	start := 0
	for start <= maxOpt {
		next := -1
		for i := range optAt {
			if i >= start && (next < 0 || i < next) {
				next = i
			}
		}
		if start != next {
			end, err := consumePositionals(start)
			if err != nil {
				return nil, err
			}
			if end > start {
				start = end
				continue
			}
			start = end
		}
		if _, ok := optAt[start]; !ok {
			extras = append(extras, args[start:next]...)
			start = next
		}
		var err error
		if start, err = consumeOptional(start); err != nil {
			return nil, err
		}
	}
	stop, err := consumePositionals(start)
	if err != nil {
		return nil, err
	}
	extras = append(extras, args[stop:]...)

	var missing []string
	for _, a := range p.actions {
		if a.Orphan || seen[a] {
			continue
		}
		if a.Required {
			missing = append(missing, a.name())
			continue
		}
		if s, ok := a.def.(string); ok && a.Type != "" {
			if cur, ok := res.ns[a.Dest].(string); ok && cur == s {
				v, err := p.getValue(a, s, conv)
				if err != nil {
					return nil, err
				}
				res.ns[a.Dest] = v
			}
		}
	}
	if len(missing) > 0 {
		return nil, &argError{"the following arguments are required: " + strings.Join(missing, ", ")}
	}
	res.extras = extras
	dashDash := indexOf(args, "--")
	for i, w := range args {
		if !optionWord[i] && i != dashDash {
			res.positional = append(res.positional, w)
		}
	}
	return res, nil
}

// parseArgs is ArgumentParser.parse_args: extras are an error.
func (p *parserSpec) parseArgs(args []string, conv converter) (*argResult, error) {
	res, err := p.parseKnownArgs(args, conv)
	if err != nil {
		return nil, err
	}
	if len(res.extras) > 0 {
		return res, &argError{"unrecognized arguments: " + strings.Join(res.extras, " ")}
	}
	return res, nil
}

func nargsError(a *action) string {
	switch a.nargs {
	case nargsNone:
		return "expected one argument"
	case nargsOptional:
		return "expected at most one argument"
	case nargsPlus:
		return "expected at least one argument"
	}
	if a.count == 1 {
		return "expected 1 argument"
	}
	return fmt.Sprintf("expected %d arguments", a.count)
}

// matchCount is _match_argument: the number of arguments the action takes
// from the front of the pattern, or -1 when it cannot match.
func matchCount(re *regexp.Regexp, pattern string) int {
	m := re.FindStringSubmatch(pattern)
	if m == nil {
		return -1
	}
	return len(m[1])
}

// matchPartial is _match_arguments_partial: as many positionals as can match
// the front of the pattern, with Python's backtracking (leftmost-first)
// choice of group lengths, which Go's regexp reproduces.
func matchPartial(acts []*action, pattern string) []int {
	for i := len(acts); i > 0; i-- {
		var b strings.Builder
		b.WriteString("^")
		for _, a := range acts[:i] {
			b.WriteString(a.nargsPattern())
		}
		re := cachedRegexp(b.String())
		if m := re.FindStringSubmatch(pattern); m != nil {
			out := make([]int, i)
			for j := range out {
				out[j] = len(m[j+1])
			}
			return out
		}
	}
	return nil
}

var regexpCache sync.Map // pattern string -> *regexp.Regexp

func cachedRegexp(expr string) *regexp.Regexp {
	if re, ok := regexpCache.Load(expr); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile(expr)
	regexpCache.Store(expr, re)
	return re
}

// getValues is argparse's _get_values.
func (p *parserSpec) getValues(a *action, argStrings []string, conv converter) (any, error) {
	if i := indexOf(argStrings, "--"); i >= 0 {
		argStrings = append(argStrings[:i:i], argStrings[i+1:]...)
	}
	switch {
	case len(argStrings) == 0 && a.nargs == nargsOptional:
		v := a.def
		if !a.positional() {
			v = a.cnst
		}
		if s, ok := v.(string); ok {
			cv, err := p.getValue(a, s, conv)
			if err != nil {
				return nil, err
			}
			if err := checkChoice(a, cv); err != nil {
				return nil, err
			}
			v = cv
		}
		return v, nil
	case len(argStrings) == 0 && a.nargs == nargsStar && a.positional():
		var v any = []any{}
		if a.def != nil {
			v = a.def
		}
		return v, checkChoice(a, v)
	case len(argStrings) == 1 && (a.nargs == nargsNone || a.nargs == nargsOptional):
		v, err := p.getValue(a, argStrings[0], conv)
		if err != nil {
			return nil, err
		}
		return v, checkChoice(a, v)
	}
	out := make([]any, 0, len(argStrings))
	for _, s := range argStrings {
		v, err := p.getValue(a, s, conv)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	for _, v := range out {
		if err := checkChoice(a, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *parserSpec) getValue(a *action, s string, conv converter) (any, error) {
	v, err := conv(a, s)
	if err == nil {
		return v, nil
	}
	te, ok := err.(*typeError)
	if !ok {
		return nil, err
	}
	if te.ksErr != "" {
		return nil, &argError{te.ksErr}
	}
	if te.msg != "" {
		return nil, &argError{fmt.Sprintf("argument %s: %s", a.name(), te.msg)}
	}
	return nil, &argError{fmt.Sprintf("argument %s: invalid %s value: %s", a.name(), a.Type, pyRepr(s))}
}

func checkChoice(a *action, v any) error {
	if a.choices == nil {
		return nil
	}
	for _, c := range a.choices {
		if pyEqual(c, v) {
			return nil
		}
	}
	reprs := make([]string, len(a.choices))
	for i, c := range a.choices {
		reprs[i] = pyRepr(c)
	}
	return &argError{fmt.Sprintf("argument %s: invalid choice: %s (choose from %s)", a.name(), pyRepr(v), strings.Join(reprs, ", "))}
}

func copyList(v any) []any {
	l, _ := v.([]any)
	return append([]any(nil), l...)
}

// pyAdd is Python's + for the values extend actions combine.
func pyAdd(a, b any) any {
	la, okA := a.([]any)
	lb, okB := b.([]any)
	if okA && okB {
		return append(append([]any(nil), la...), lb...)
	}
	sa, okA := a.(string)
	sb, okB := b.(string)
	if okA && okB {
		return sa + sb
	}
	return b
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}

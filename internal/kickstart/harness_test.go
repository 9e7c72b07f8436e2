package kickstart

import "strings"

// checkCommandCase runs one command line the way pykickstart's own command
// tests do (tests/baseclass.py CommandTest): a fresh handler of the version,
// the command object looked up by the first space-separated word, the line
// split with shlex (comments on), parse() called directly; deprecation
// warnings are ignored, every other warning or exception is a failure.
// It returns "" for success or the error text.
func checkCommandCase(version, input string) (string, bool) {
	v, err := LookupVersion(version)
	if err != nil {
		return err.Error(), false
	}
	name, _, _ := strings.Cut(input, " ")
	cls := v.commandClass(name)
	if cls == nil {
		return "no such command in " + version, false
	}
	args, err := SplitLine(input, true)
	if err != nil {
		return err.Error(), true
	}
	fs := newFileState()
	c := &cmdCtx{v: v, cls: cls, cmd: name, line: input, args: args[1:], fs: fs, self: fs.object(cls)}
	if err := c.run(); err != nil {
		return err.Error(), true
	}
	for _, w := range c.warns {
		if w.kind != warnDeprecated {
			return w.msg, true
		}
	}
	return "", true
}

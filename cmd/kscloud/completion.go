package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// cmdCompletion prints a shell completion script. The words come from the
// real command tree: the commands() table and what each command's -h prints
// (its flag set's PrintDefaults and its usage line), and each sub-word's
// -h (images export has flags of its own), so a new command or flag is
// completed without editing this file. "kscloud help" completes the
// commands.
func cmdCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh" && args[0] != "fish") {
		fmt.Fprintln(stderr, "usage: kscloud completion bash|zsh|fish")
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	tree := completionTree()
	switch args[0] {
	case "bash":
		writeBash(stdout, tree)
	case "zsh":
		writeZsh(stdout, tree)
	case "fish":
		writeFish(stdout, tree)
	}
	return 0
}

// compCmd is one command as completion sees it.
type compCmd struct {
	name, summary string
	subs          []string // sub-words such as images list|show|rm
	flags         []compFlag
	// subFlags are the flags of the sub-words whose flag set is not the
	// command's (images export|import), in groups sharing one.
	subFlags []subGroup
}

type subGroup struct {
	subs  []string
	flags []compFlag
}

type compFlag struct {
	name    string
	value   bool // takes a value
	file    bool // the value is a file
	summary string
}

// helpSummary is the summary of "kscloud help", completed with the
// commands though not one of them.
const helpSummary = "print the usage and flags of a command"

// flagLine matches the first line flag.PrintDefaults prints for a flag:
// "  -name", "  -name type" or, for one-letter names, "  -v\tusage".
var flagLine = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9-]*)(?: (\S+))?(?:\t(.*))?$`)

// stringDefault is what flag.PrintDefaults appends for a string flag's
// default. The scripts are generated where the packages are built: a
// default taken from that machine's environment or user ($LIBVIRT_DEFAULT_URI,
// $EUCARC, the state directory) is no default of the machine they are
// installed on, so descriptions leave it out.
var stringDefault = regexp.MustCompile(` \(default "(?:[^"\\]|\\.)*"\)$`)

func completionTree() []compCmd {
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var tree []compCmd
	for _, n := range names {
		c := compCmd{name: n, summary: cmds[n].summary}
		if n == "completion" {
			c.subs = []string{"bash", "fish", "zsh"}
			tree = append(tree, c)
			continue
		}
		var usage string
		usage, c.flags = commandHelp(cmds[n], nil)
		c.subs = subWords(usage, n)
		for _, sub := range c.subs {
			_, flags := commandHelp(cmds[n], []string{sub})
			if slices.Equal(flags, c.flags) {
				continue
			}
			if i := slices.IndexFunc(c.subFlags, func(g subGroup) bool { return slices.Equal(g.flags, flags) }); i >= 0 {
				c.subFlags[i].subs = append(c.subFlags[i].subs, sub)
			} else {
				c.subFlags = append(c.subFlags, subGroup{subs: []string{sub}, flags: flags})
			}
		}
		tree = append(tree, c)
	}
	return tree
}

// commandHelp runs a command's -h after the words given and returns its
// usage line and the flags its flag set printed.
func commandHelp(cmd command, words []string) (string, []compFlag) {
	var help bytes.Buffer
	cmd.run(append(append([]string{}, words...), "-h"), io.Discard, &help)
	lines := strings.Split(help.String(), "\n")
	var flags []compFlag
	for i, l := range lines {
		m := flagLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := compFlag{name: m[1], value: m[2] != "", summary: m[3]}
		if f.summary == "" && i+1 < len(lines) {
			f.summary = strings.TrimSpace(lines[i+1])
		}
		f.summary = stringDefault.ReplaceAllString(f.summary, "")
		switch strings.ToLower(m[2]) {
		case "file", "file|url", "path", "dir":
			f.file = true
		default:
			f.file = f.value && strings.HasSuffix(f.name, "-dir")
		}
		flags = append(flags, f)
	}
	return lines[0], flags
}

// subWords returns the sub-commands of a usage line such as
// "usage: kscloud images list | show NAME|ID | rm NAME|ID": the first words
// of its alternatives when every one is a lowercase word.
func subWords(usage, name string) []string {
	_, rest, ok := strings.Cut(usage, "kscloud "+name+" ")
	if !ok {
		return nil
	}
	var subs []string
	for _, alt := range strings.Split(rest, " | ") {
		w, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
		if !regexp.MustCompile(`^[a-z]+$`).MatchString(w) {
			return nil
		}
		subs = append(subs, w)
	}
	if len(subs) < 2 {
		return nil
	}
	return subs
}

func commandNames(tree []compCmd) string {
	var n []string
	for _, c := range tree {
		n = append(n, c.name)
	}
	return strings.Join(n, " ")
}

// bashFlags is the assignment of a flag set's words in the bash script.
func bashFlags(flags []compFlag) string {
	var all, files, values []string
	for _, f := range flags {
		all = append(all, "--"+f.name)
		if f.file {
			files = append(files, "--"+f.name)
		} else if f.value {
			values = append(values, "--"+f.name)
		}
	}
	return fmt.Sprintf("flags=%q files=%q values=%q", strings.Join(all, " "), strings.Join(files, " "), strings.Join(values, " "))
}

func writeBash(w io.Writer, tree []compCmd) {
	fmt.Fprintf(w, `# bash completion for kscloud (kscloud completion bash)
_kscloud() {
	local cur prev cmd sub i ci
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd= ci=0
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; ci=$i; break ;; esac
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W %q -- "$cur"))
		fi
		return
	fi
	if [[ $cmd == help ]]; then
		if ((COMP_CWORD == ci + 1)); then
			COMPREPLY=($(compgen -W %q -- "$cur"))
		fi
		return
	fi
	# The word after the command, when the cursor is past it: its sub-word.
	sub=
	if ((ci + 1 < COMP_CWORD)); then
		sub=${COMP_WORDS[ci+1]}
	fi
	local flags= files= values= subs=
	case $cmd in
`, commandNames(tree)+" help", commandNames(tree))
	for _, c := range tree {
		if len(c.subFlags) == 0 {
			fmt.Fprintf(w, "\t%s) %s subs=%q ;;\n", c.name, bashFlags(c.flags), strings.Join(c.subs, " "))
			continue
		}
		fmt.Fprintf(w, "\t%s)\n\t\tsubs=%q\n\t\tcase $sub in\n", c.name, strings.Join(c.subs, " "))
		for _, g := range c.subFlags {
			fmt.Fprintf(w, "\t\t%s) %s ;;\n", strings.Join(g.subs, "|"), bashFlags(g.flags))
		}
		fmt.Fprintf(w, "\t\t*) %s ;;\n\t\tesac\n\t\t;;\n", bashFlags(c.flags))
	}
	fmt.Fprint(w, `	esac
	if [[ " $files " == *" $prev "* ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	if [[ " $values " == *" $prev "* ]]; then
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	elif [[ -n $subs && -z $sub ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _kscloud kscloud
`)
}

// zshArguments writes an _arguments call for a flag set; subs, when given,
// completes the first word.
func zshArguments(w io.Writer, indent, name string, flags []compFlag, subs []string) {
	fmt.Fprintf(w, "%s_arguments -s", indent)
	for _, f := range flags {
		spec := "--" + f.name + "[" + zshBracket(f.summary) + "]"
		if f.file {
			spec += ":" + f.name + ":_files"
		} else if f.value {
			spec += ":" + f.name + ": "
		}
		fmt.Fprintf(w, " \\\n%s\t%s", indent, zshQuote(spec))
	}
	if len(subs) > 0 {
		fmt.Fprintf(w, " \\\n%s\t%s", indent, zshQuote("1:"+name+":("+strings.Join(subs, " ")+")"))
	}
	fmt.Fprintf(w, " \\\n%s\t'*:file:_files'\n", indent)
}

func writeZsh(w io.Writer, tree []compCmd) {
	fmt.Fprint(w, `#compdef kscloud
# zsh completion for kscloud (kscloud completion zsh)
_kscloud() {
	local -a cmds
	cmds=(
`)
	for _, c := range tree {
		fmt.Fprintf(w, "\t\t%s\n", zshQuote(c.name+":"+c.summary))
	}
	fmt.Fprintf(w, "\t\t%s\n", zshQuote("help:"+helpSummary))
	fmt.Fprint(w, `	)
	if (( CURRENT == 2 )); then
		_describe -t commands 'kscloud command' cmds
		return
	fi
	local cmd=${words[2]}
	shift words
	(( CURRENT-- ))
	case $cmd in
	help)
		local -a names
		names=(${cmds[1,-2]})
		(( CURRENT == 2 )) && _describe -t commands 'kscloud command' names
		;;
`)
	for _, c := range tree {
		fmt.Fprintf(w, "\t%s)\n", c.name)
		if len(c.subFlags) == 0 {
			zshArguments(w, "\t\t", c.name, c.flags, c.subs)
			fmt.Fprint(w, "\t\t;;\n")
			continue
		}
		fmt.Fprint(w, "\t\tcase ${words[2]} in\n")
		for _, g := range c.subFlags {
			fmt.Fprintf(w, "\t\t%s)\n", strings.Join(g.subs, "|"))
			zshArguments(w, "\t\t\t", c.name, g.flags, nil)
			fmt.Fprint(w, "\t\t\t;;\n")
		}
		fmt.Fprint(w, "\t\t*)\n")
		zshArguments(w, "\t\t\t", c.name, c.flags, c.subs)
		fmt.Fprint(w, "\t\t\t;;\n\t\tesac\n\t\t;;\n")
	}
	fmt.Fprint(w, `	esac
}
_kscloud "$@"
`)
}

func writeFish(w io.Writer, tree []compCmd) {
	fmt.Fprint(w, `# fish completion for kscloud (kscloud completion fish)
# __kscloud_words: the words before the cursor that are no flags, less
# "kscloud"; __kscloud_at CMD [SUB...]: the command is CMD and, with SUBs,
# the word after it one of them.
function __kscloud_words
	for t in (commandline -opc)[2..-1]
		string match -q -- '-*' $t; or echo $t
	end
end
function __kscloud_at
	set -l w (__kscloud_words)
	test "$w[1]" = "$argv[1]"; or return 1
	test (count $argv) -eq 1; and return 0
	contains -- "$w[2]" $argv[2..-1]
end
function __kscloud_first
	test (count (__kscloud_words)) -eq 1
end
complete -c kscloud -f
complete -c kscloud -n __fish_use_subcommand -l help -s h -d 'print the usage'
complete -c kscloud -n __fish_use_subcommand -l version -d 'print the version'
`)
	for _, c := range tree {
		fmt.Fprintf(w, "complete -c kscloud -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	fmt.Fprintf(w, "complete -c kscloud -n __fish_use_subcommand -a help -d %s\n", fishQuote(helpSummary))
	for _, c := range tree {
		fmt.Fprintf(w, "complete -c kscloud -n %s -a %s -d %s\n", fishQuote("__kscloud_at help; and __kscloud_first"), c.name, fishQuote(c.summary))
	}
	flags := func(cond string, fl []compFlag) {
		for _, f := range fl {
			opt := ""
			switch {
			case f.file:
				opt = " -r -F"
			case f.value:
				opt = " -x"
			}
			fmt.Fprintf(w, "complete -c kscloud -n %s -l %s%s -d %s\n", fishQuote(cond), f.name, opt, fishQuote(f.summary))
		}
	}
	for _, c := range tree {
		at := "__kscloud_at " + c.name
		for _, s := range c.subs {
			fmt.Fprintf(w, "complete -c kscloud -n %s -a %s\n", fishQuote(at+"; and __kscloud_first"), s)
		}
		own := at
		for _, g := range c.subFlags {
			sub := at + " " + strings.Join(g.subs, " ")
			flags(sub, g.flags)
			own += "; and not " + sub
		}
		flags(own, c.flags)
	}
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshBracket escapes what _arguments treats specially inside [...].
func zshBracket(s string) string {
	r := strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`)
	return r.Replace(s)
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// cmdCompletion prints a shell completion script. The words come from the
// real command tree: the commands() table and what each command's -h prints
// (its flag set's PrintDefaults and its usage line), so a new command or
// flag is completed without editing this file.
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
}

type compFlag struct {
	name    string
	value   bool // takes a value
	file    bool // the value is a file
	summary string
}

// flagLine matches the first line flag.PrintDefaults prints for a flag:
// "  -name", "  -name type" or, for one-letter names, "  -v\tusage".
var flagLine = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9-]*)(?: (\S+))?(?:\t(.*))?$`)

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
		var help bytes.Buffer
		cmds[n].run([]string{"-h"}, io.Discard, &help)
		lines := strings.Split(help.String(), "\n")
		if len(lines) > 0 {
			c.subs = subWords(lines[0], n)
		}
		for i, l := range lines {
			m := flagLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			f := compFlag{name: m[1], value: m[2] != "", summary: m[3]}
			if f.summary == "" && i+1 < len(lines) {
				f.summary = strings.TrimSpace(lines[i+1])
			}
			switch strings.ToLower(m[2]) {
			case "file", "file|url", "path", "dir":
				f.file = true
			default:
				f.file = f.value && strings.HasSuffix(f.name, "-dir")
			}
			c.flags = append(c.flags, f)
		}
		tree = append(tree, c)
	}
	return tree
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

func writeBash(w io.Writer, tree []compCmd) {
	fmt.Fprintf(w, `# bash completion for kscloud (kscloud completion bash)
_kscloud() {
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W %q -- "$cur"))
		fi
		return
	fi
	local flags= files= values= subs=
	case $cmd in
`, commandNames(tree))
	for _, c := range tree {
		var flags, files, values []string
		for _, f := range c.flags {
			flags = append(flags, "--"+f.name)
			if f.file {
				files = append(files, "--"+f.name)
			} else if f.value {
				values = append(values, "--"+f.name)
			}
		}
		fmt.Fprintf(w, "\t%s) flags=%q files=%q values=%q subs=%q ;;\n", c.name,
			strings.Join(flags, " "), strings.Join(files, " "), strings.Join(values, " "), strings.Join(c.subs, " "))
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
	elif [[ -n $subs ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _kscloud kscloud
`)
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
	fmt.Fprint(w, `	)
	if (( CURRENT == 2 )); then
		_describe -t commands 'kscloud command' cmds
		return
	fi
	local cmd=${words[2]}
	shift words
	(( CURRENT-- ))
	case $cmd in
`)
	for _, c := range tree {
		fmt.Fprintf(w, "\t%s)\n\t\t_arguments -s", c.name)
		for _, f := range c.flags {
			spec := "--" + f.name + "[" + zshBracket(f.summary) + "]"
			if f.file {
				spec += ":" + f.name + ":_files"
			} else if f.value {
				spec += ":" + f.name + ": "
			}
			fmt.Fprintf(w, " \\\n\t\t\t%s", zshQuote(spec))
		}
		if len(c.subs) > 0 {
			fmt.Fprintf(w, " \\\n\t\t\t%s", zshQuote("1:"+c.name+":("+strings.Join(c.subs, " ")+")"))
		}
		fmt.Fprint(w, " \\\n\t\t\t'*:file:_files'\n\t\t;;\n")
	}
	fmt.Fprint(w, `	esac
}
_kscloud "$@"
`)
}

func writeFish(w io.Writer, tree []compCmd) {
	fmt.Fprintf(w, "# fish completion for kscloud (kscloud completion fish)\ncomplete -c kscloud -f\n")
	fmt.Fprintf(w, "complete -c kscloud -n __fish_use_subcommand -l help -s h -d 'print the usage'\n")
	fmt.Fprintf(w, "complete -c kscloud -n __fish_use_subcommand -l version -d 'print the version'\n")
	for _, c := range tree {
		fmt.Fprintf(w, "complete -c kscloud -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range tree {
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		for _, s := range c.subs {
			fmt.Fprintf(w, "complete -c kscloud -n %s -a %s\n", cond, s)
		}
		for _, f := range c.flags {
			opt := ""
			switch {
			case f.file:
				opt = " -r -F"
			case f.value:
				opt = " -x"
			}
			fmt.Fprintf(w, "complete -c kscloud -n %s -l %s%s -d %s\n", cond, f.name, opt, fishQuote(f.summary))
		}
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

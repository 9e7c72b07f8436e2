// Command kscloud launches kickstart installs on libvirt and private clouds,
// bakes them into images, and checks kickstarts before anything boots.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/kscloud/kscloud/internal/buildinfo"
)

// A command is one kscloud subcommand. run gets the arguments after the
// subcommand name and returns the process exit code; results go to stdout,
// messages for people to stderr. A command's flag set prints its usage on
// the stderr it is given; run answers -h/--help by giving it stdout.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"lint":           {"check kickstart files before anything boots", cmdLint},
		"run":            {"install a machine in place from a kickstart, or boot a baked image", cmdRun},
		"bake":           {"install a kickstart onto a fresh volume and register it as an image", cmdBake},
		"version":        {"print the version", cmdVersion},
		"images":         {"list, show or remove baked images", cmdImages},
		"status":         {"show builds and what they left", cmdStatus},
		"cleanup":        {"remove what a build (or nobody's build) left behind", cmdCleanup},
		"vnc":            {"where an install's VNC console is", cmdVNC},
		"userdata":       {"render user-data for a launch on a cloud with nchookd", cmdUserdata},
		"completion":     {"print a bash, zsh or fish completion script", cmdCompletion},
		"uninstall-host": {"remove the storage pools and empty directories kscloud set up on this libvirt host", cmdUninstallHost},
	}
}

// version is set by the Makefile with -ldflags "-X main.version=…"; a
// plain go build or go install gets it from the module's build info.
var version = "dev"

func init() { version = buildinfo.Version(version) }

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "[--output text|json]", stderr)
	output := outputFlag(fs)
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		return usageError(fs, err)
	}
	if err := checkOutput(*output); err != nil {
		fmt.Fprintf(stderr, "kscloud version: %v\n", err)
		return 2
	}
	if *output == "json" {
		printJSON(stdout, versionInfo("kscloud", version))
		return 0
	}
	fmt.Fprintln(stdout, "kscloud", version)
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kscloud COMMAND [flags] [args]")
	fmt.Fprintln(w, "       kscloud --version | --help")
	fmt.Fprintln(w, "\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'kscloud COMMAND -h' (or 'kscloud help COMMAND') for a command's flags.")
}

func main() {
	// kscloud bake … | head: a reader that goes away must not kill a
	// build. With SIGPIPE notified, a write to the closed pipe fails with
	// EPIPE instead (the runtime kills a program writing to a broken
	// stdout or stderr otherwise); output ignores it, the build goes on.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		args = []string{args[1], "-h"}
	case "-version", "--version":
		args[0] = "version"
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kscloud: unknown command %q (run 'kscloud help')\n", args[0])
		return 2
	}
	if words, ok := helpWanted(args[1:]); ok {
		// The command's flag set prints its usage where it prints usage
		// errors: here that is stdout, and asking is no error.
		cmd.run(append(words, "-h"), io.Discard, stdout)
		return 0
	}
	return cmd.run(args[1:], stdout, stderr)
}

// helpWanted reports whether args ask for help (-h, -help, --help before
// any "--"), and the words before the first flag ("images export -h" is
// the help of images export).
func helpWanted(args []string) ([]string, bool) {
	var words []string
	flags := false
	for _, a := range args {
		switch {
		case a == "--":
			return nil, false
		case a == "-h" || a == "-help" || a == "--help" || a == "--h":
			return words, true
		case len(a) > 1 && a[0] == '-':
			flags = true
		case !flags:
			words = append(words, a)
		}
	}
	return nil, false
}

// usageError is the exit status of a command line its flag set refused
// (the flag package has printed why and the usage) or whose arguments do
// not fit (printed here).
func usageError(fs *flag.FlagSet, err error) int {
	if err == nil {
		fs.Usage()
	}
	return 2
}

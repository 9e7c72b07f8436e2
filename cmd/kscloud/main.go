// Command kscloud launches kickstart installs on libvirt and private clouds,
// bakes them into images, and checks kickstarts before anything boots.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// A command is one kscloud subcommand. run gets the arguments after the
// subcommand name and returns the process exit code; results go to stdout,
// messages for people to stderr.
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

// version is set by the Makefile with -ldflags "-X main.version=…".
var version = "dev"

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stdout, "kscloud", version)
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kscloud COMMAND [flags] [args]")
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
	fmt.Fprintln(w, "\nRun 'kscloud COMMAND -h' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kscloud: unknown command %q (run 'kscloud help')\n", args[0])
		return 2
	}
	return cmd.run(args[1:], stdout, stderr)
}

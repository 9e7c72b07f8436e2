// Command nchookd is the node-controller daemon of kscloud: it rewrites
// launching instances' domain XML so they boot an installer with the
// command line from their user-data, and follows the installs to their end.
//
//	nchookd serve   [--config FILE]           run the daemon
//	nchookd check   [--config FILE] [--print] [--output text|json]
//	                                          validate the configuration and catalog
//	nchookd rewrite --instance-xml FILE --domain-xml FILE [--config FILE]
//	nchookd status  [--output text|json] [INSTANCE]  what the daemon knows
//	nchookd hook    EVENT EUCA_HOME [DIR]     what the Eucalyptus hook runs
//	nchookd version [--output text|json]      (also nchookd --version)
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kscloud/kscloud/internal/buildinfo"
)

// version is set by the Makefile; a plain go build gets it from the
// module's build info.
var version = "dev"

func init() { version = buildinfo.Version(version) }

func main() {
	// nchookd status | head: writes to a closed pipe fail with EPIPE
	// instead of killing the process (as kscloud does).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage: nchookd COMMAND [flags]
       nchookd --version | --help

commands:
  serve     run the daemon (systemd: Type=notify, socket activation)
  check     validate the configuration and the installer catalog
  rewrite   print the domain XML a launch would boot (offline dry run)
  status    show the installs the daemon follows
  hook      run the Eucalyptus hook logic: hook EVENT EUCA_HOME [INSTANCE_DIR]
  version   print the version

Run 'nchookd COMMAND -h' (or 'nchookd help COMMAND') for a command's flags.
`

const hookUsage = `usage: nchookd hook EVENT EUCA_HOME [INSTANCE_DIR]

The Eucalyptus node controller runs this (through the nc-hooks dispatcher)
for every hook event; it asks the daemon to rewrite the instance's domain
XML before it boots, and rewrites it itself when the daemon does not answer.
Events other than euca-nc-pre-boot and euca-nc-pre-clean return at once.
Environment: NCHOOKD_CONFIG, NCHOOKD_SOCKET, NCHOOKD_TIMEOUT (nchookd(8)).
`

// commands maps each command to its function. A command's flag set prints
// its usage on the stderr it is given; run answers -h/--help by giving it
// stdout.
func commands() map[string]func(args []string, stdout, stderr io.Writer) int {
	return map[string]func(args []string, stdout, stderr io.Writer) int{
		"serve":   func(args []string, _, stderr io.Writer) int { return cmdServe(args, stderr) },
		"check":   cmdCheck,
		"rewrite": cmdRewrite,
		"status":  cmdStatus,
		"hook":    cmdHook,
		"version": cmdVersion,
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return 0
	case "help":
		if len(args) == 1 {
			fmt.Fprint(stdout, usageText)
			return 0
		}
		args = []string{args[1], "-h"}
	case "-version", "--version":
		args[0] = "version"
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nchookd: unknown command %q\n%s", args[0], usageText)
		return 2
	}
	if helpWanted(args[1:]) {
		if args[0] == "hook" {
			fmt.Fprint(stdout, hookUsage)
			return 0
		}
		cmd([]string{"-h"}, io.Discard, stdout)
		return 0
	}
	return cmd(args[1:], stdout, stderr)
}

// helpWanted reports whether args ask for help: -h, -help or --help
// before any "--". The hook's arguments come from the NC (an event name
// first), never a flag.
func helpWanted(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stderr, "[--output text|json]")
	output := outputFlag(fs)
	if !parseOutput(fs, args, 0, output, stderr) {
		return 2
	}
	if *output == "json" {
		printJSON(stdout, buildinfo.Get("nchookd", version))
		return 0
	}
	fmt.Fprintln(stdout, "nchookd", version)
	return 0
}

// Command nchookd is the node-controller daemon of kscloud: it rewrites
// launching instances' domain XML so they boot an installer with the
// command line from their user-data, and follows the installs to their end.
//
//	nchookd serve   [--config FILE]           run the daemon
//	nchookd check   [--config FILE] [--print] validate the configuration and catalog
//	nchookd rewrite --instance-xml FILE --domain-xml FILE [--config FILE]
//	nchookd status  [--json] [INSTANCE]       what the daemon knows
//	nchookd hook    EVENT EUCA_HOME [DIR]     what the Eucalyptus hook runs
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set by the Makefile.
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage: nchookd COMMAND [flags]

commands:
  serve     run the daemon (systemd: Type=notify, socket activation)
  check     validate the configuration and the installer catalog
  rewrite   print the domain XML a launch would boot (offline dry run)
  status    show the installs the daemon follows
  hook      run the Eucalyptus hook logic: hook EVENT EUCA_HOME [INSTANCE_DIR]
  version   print the version

Run 'nchookd COMMAND -h' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "rewrite":
		return cmdRewrite(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "hook":
		return cmdHook(args[1:], stderr)
	case "version":
		fmt.Fprintln(stdout, "nchookd", version)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	}
	fmt.Fprintf(stderr, "nchookd: unknown command %q\n%s", args[0], usageText)
	return 2
}

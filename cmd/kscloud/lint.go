package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kscloud/kscloud/internal/kickstart"
)

// cmdLint is "kscloud lint [--version V] [--for bake|in-place]
// [--format text|json] FILE|URL…": it checks kickstarts with pykickstart's
// rules and the traps of unattended cloud installs (docs/kickstart-lint.md).
// Exit status: 0 no errors, 1 errors found, 2 usage or unreadable input.
func cmdLint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kscloud lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "kickstart syntax version, e.g. RHEL9, F40 (default: the file's #version= line, else "+kickstart.DefaultVersion+")")
	mode := fs.String("for", string(kickstart.ModeBake), "what the install is for: bake (an image) or in-place (the instance itself)")
	format := fs.String("format", "text", "output format: text or json")
	provider := fs.String("provider", "", "the cloud the install runs on: libvirt, ec2 or opennebula (on OpenNebula a kickstart must end with poweroff in both modes: reboot loops the installer)")
	nchookd := fs.Bool("nchookd", false, "the cloud's hosts run nchookd (on OpenNebula: its deploy wrapper gives the installer on_reboot=destroy and boots the installed disk after it, so reboot ends an install as on Eucalyptus)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kscloud lint [--version V] [--for bake|in-place] [--provider P] [--nchookd] [--format text|json] FILE|URL…")
		fs.PrintDefaults()
	}

	// Flags may follow the files: "kscloud lint ks.cfg --for in-place".
	var inputs []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return kickstart.ExitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		if used := len(args) - fs.NArg(); used > 0 && args[used-1] == "--" {
			inputs = append(inputs, fs.Args()...) // after "--" everything is a file
			break
		}
		inputs = append(inputs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(inputs) == 0 {
		fmt.Fprintln(stderr, "kscloud lint: no kickstart given (FILE or URL)")
		fs.Usage()
		return kickstart.ExitUsage
	}
	m, err := kickstart.ParseMode(*mode)
	if err != nil {
		fmt.Fprintf(stderr, "kscloud lint: %v\n", err)
		return kickstart.ExitUsage
	}
	const maxBytes = 1 << 20
	run := kickstart.LintRun{
		Version:  *version,
		Mode:     m,
		Provider: *provider,
		NodeHook: *nchookd,
		Format:   *format,
		Fetch:    kickstart.HTTPFetcher(30*time.Second, maxBytes),
		MaxBytes: maxBytes,
	}
	return run.Run(inputs, stdout, stderr)
}

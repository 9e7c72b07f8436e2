package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/kickstart"
)

// Exit statuses of kscloud lint.
const (
	lintClean  = 0 // no errors
	lintErrors = 1 // at least one error finding
	lintUsage  = 2 // usage error, or an input that cannot be read
)

// cmdLint is "kscloud lint [--version V] [--for bake|in-place]
// [--output text|json] FILE|URL…": it checks kickstarts with pykickstart's
// rules and the traps of unattended cloud installs (docs/kickstart-lint.md).
// Exit status: 0 no errors, 1 errors found, 2 usage or unreadable input.
func cmdLint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kscloud lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "kickstart syntax version, e.g. RHEL9, F40 (default: the file's #version= line, else "+kickstart.DefaultVersion+")")
	mode := fs.String("for", string(kickstart.ModeBake), "what the install is for: bake (an image) or in-place (the instance itself)")
	output := outputFlag(fs)
	deprecatedOutput(fs, output, "format", "", "kscloud lint", stderr)
	provider := fs.String("provider", "", "the cloud the install runs on: libvirt, ec2 or opennebula (on OpenNebula a kickstart must end with poweroff in both modes: reboot loops the installer)")
	nchookd := fs.Bool("nchookd", false, "the cloud's hosts run nchookd (on OpenNebula: its deploy wrapper gives the installer on_reboot=destroy and boots the installed disk after it, so reboot ends an install as on Eucalyptus)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kscloud lint [--version V] [--for bake|in-place] [--provider P] [--nchookd] [--output text|json] FILE|URL…")
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}

	// Flags may follow the files: "kscloud lint ks.cfg --for in-place".
	var inputs []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return lintUsage
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
		return lintUsage
	}
	m, err := parseLintMode(*mode)
	if err != nil {
		fmt.Fprintf(stderr, "kscloud lint: %v\n", err)
		return lintUsage
	}
	const maxBytes = 1 << 20
	run := lintRun{
		Version:  *version,
		Mode:     m,
		Provider: *provider,
		Output:   *output,
		NodeHook: *nchookd,
		Fetch:    kickstart.HTTPFetcher(30*time.Second, maxBytes),
		MaxBytes: maxBytes,
	}
	return run.Run(inputs, stdout, stderr)
}

// lintRun is one "kscloud lint" invocation once its flags are parsed: it
// reads each input (file or http(s) URL), lints it and prints the findings.
type lintRun struct {
	Version  string         // "" = the file's #version= line, else kickstart.DefaultVersion
	Mode     kickstart.Mode // ModeBake or ModeInPlace
	Provider string         // the cloud ("" any; "opennebula": poweroff in both modes)
	NodeHook bool           // the hosts run nchookd (kickstart.LintOptions.NodeHook)
	Output   string         // "text" or "json"
	Fetch    kickstart.Fetcher
	MaxBytes int64 // per source (default 1 MiB)
}

// lintFinding is the stable JSON form of a finding.
type lintFinding struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Severity string `json:"severity"`
	Rule     string `json:"rule"`
	Message  string `json:"message"`
}

// parseLintMode validates a --for value.
func parseLintMode(s string) (kickstart.Mode, error) {
	switch kickstart.Mode(s) {
	case kickstart.ModeBake, kickstart.ModeInPlace:
		return kickstart.Mode(s), nil
	}
	return "", fmt.Errorf("--for %q: want bake or in-place", s)
}

// Run lints the inputs and returns the exit status. Results go to stdout;
// an input that cannot be read is one line on stderr (the others are still
// checked, and the status is lintUsage).
func (r lintRun) Run(inputs []string, stdout, stderr io.Writer) int {
	if r.Output == "" {
		r.Output = "text"
	}
	if err := checkOutput(r.Output); err != nil {
		fmt.Fprintf(stderr, "kscloud lint: %v\n", err)
		return lintUsage
	}
	if r.Version != "" {
		if _, err := kickstart.LookupVersion(r.Version); err != nil {
			fmt.Fprintf(stderr, "kscloud lint: --version: %v\n", err)
			return lintUsage
		}
	}
	loader := &kickstart.Loader{Fetch: r.Fetch, MaxBytes: r.MaxBytes}
	status := lintClean
	all := []lintFinding{}
	for _, in := range inputs {
		data, err := loader.Load(in)
		if err != nil {
			verb := "read"
			if kickstart.IsURL(in) {
				verb = "fetch"
			}
			fmt.Fprintf(stderr, "kscloud lint: %s %s: %v\n", verb, in, strings.Join(strings.Fields(err.Error()), " "))
			status = lintUsage
			continue
		}
		_, findings := kickstart.Lint(kickstart.Source{Name: in, Data: data}, kickstart.LintOptions{Version: r.Version, Mode: r.Mode, Resolver: loader, Provider: r.Provider, NodeHook: r.NodeHook})
		for _, f := range findings {
			if f.Severity == kickstart.SeverityError && status == lintClean {
				status = lintErrors
			}
			if r.Output == "text" {
				fmt.Fprintln(stdout, f.String())
				continue
			}
			all = append(all, lintFinding{File: f.Pos.File, Line: f.Pos.Line, Severity: f.Severity.String(), Rule: f.Rule, Message: f.Message})
		}
	}
	if r.Output == "json" {
		// A closed stdout (… | head) loses the findings, not the status.
		printJSON(stdout, all)
	}
	return status
}

package kickstart

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// LintRun is one "kscloud lint" invocation once its flags are parsed: it
// reads each input (file or http(s) URL), lints it and prints the findings.
type LintRun struct {
	Version  string // "" = the file's #version= line, else DefaultVersion
	Mode     Mode   // ModeBake or ModeInPlace
	Provider string // the cloud ("" any; "opennebula": poweroff in both modes)
	NodeHook bool   // the hosts run nchookd (see LintOptions.NodeHook)
	Format   string // "text" or "json"
	Fetch    Fetcher
	MaxBytes int64 // per source (default 1 MiB)
}

// JSONFinding is the stable JSON form of a finding.
type JSONFinding struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Severity string `json:"severity"`
	Rule     string `json:"rule"`
	Message  string `json:"message"`
}

// Exit statuses of a lint run.
const (
	ExitClean  = 0 // no errors
	ExitErrors = 1 // at least one error finding
	ExitUsage  = 2 // usage error, or an input that cannot be read
)

// ParseMode validates a --for value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeBake, ModeInPlace:
		return Mode(s), nil
	}
	return "", fmt.Errorf("--for %q: want bake or in-place", s)
}

// Run lints the inputs and returns the exit status. Results go to stdout;
// an input that cannot be read is one line on stderr (the others are still
// checked, and the status is ExitUsage).
func (r LintRun) Run(inputs []string, stdout, stderr io.Writer) int {
	if r.Format == "" {
		r.Format = "text"
	}
	if r.Format != "text" && r.Format != "json" {
		fmt.Fprintf(stderr, "kscloud lint: --format %q: want text or json\n", r.Format)
		return ExitUsage
	}
	if r.Version != "" {
		if _, err := LookupVersion(r.Version); err != nil {
			fmt.Fprintf(stderr, "kscloud lint: --version: %v\n", err)
			return ExitUsage
		}
	}
	loader := &Loader{Fetch: r.Fetch, MaxBytes: r.MaxBytes}
	status := ExitClean
	all := []JSONFinding{}
	for _, in := range inputs {
		data, err := loader.Load(in)
		if err != nil {
			verb := "read"
			if IsURL(in) {
				verb = "fetch"
			}
			fmt.Fprintf(stderr, "kscloud lint: %s %s: %v\n", verb, in, oneLine(err))
			status = ExitUsage
			continue
		}
		_, findings := Lint(Source{Name: in, Data: data}, LintOptions{Version: r.Version, Mode: r.Mode, Resolver: loader, Provider: r.Provider, NodeHook: r.NodeHook})
		for _, f := range findings {
			if f.Severity == SeverityError && status == ExitClean {
				status = ExitErrors
			}
			if r.Format == "text" {
				fmt.Fprintln(stdout, f.String())
				continue
			}
			all = append(all, JSONFinding{File: f.Pos.File, Line: f.Pos.Line, Severity: f.Severity.String(), Rule: f.Rule, Message: f.Message})
		}
	}
	if r.Format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			fmt.Fprintf(stderr, "kscloud lint: write: %v\n", err)
			return ExitUsage
		}
	}
	return status
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// HTTPFetcher returns a Fetcher for http(s) URLs with a timeout and a body
// limit; anything but 200 OK is an error naming the status.
func HTTPFetcher(timeout time.Duration, maxBytes int64) Fetcher {
	client := &http.Client{Timeout: timeout}
	return func(u string) ([]byte, error) {
		resp, err := client.Get(u)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %s", u, resp.Status)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		if int64(len(data)) > maxBytes {
			return nil, fmt.Errorf("%s: larger than %d bytes", u, maxBytes)
		}
		return data, nil
	}
}

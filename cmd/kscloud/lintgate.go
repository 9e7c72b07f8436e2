package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/kickstart"
)

// lintBeforeLaunch runs kscloud lint on the kickstart before anything
// boots, for the mode of the launch (bake → an image, run → in place):
// findings are printed as kscloud lint prints them; errors stop the launch
// (the caller skips this with --no-lint).
// nodeHook: the hosts run nchookd (--nchookd; kickstart.LintOptions.NodeHook).
func lintBeforeLaunch(ctx context.Context, name string, ks []byte, version, kind string, nodeHook bool, stderr io.Writer, provider ...string) error {
	mode := kickstart.ModeBake
	if kind == "run" {
		mode = kickstart.ModeInPlace
	}
	loader := &kickstart.Loader{Fetch: kickstart.HTTPFetcher(30*time.Second, 1<<20), MaxBytes: 1 << 20}
	_, findings := kickstart.Lint(kickstart.Source{Name: name, Data: ks}, kickstart.LintOptions{Version: version, Mode: mode, Resolver: loader, Provider: strings.Join(provider, ""), NodeHook: nodeHook})
	errs := 0
	for _, f := range findings {
		fmt.Fprintln(stderr, install.RedactText(f.String())) // the name may be a URL with a token
		if f.Severity == kickstart.SeverityError {
			errs++
		}
	}
	if errs > 0 {
		return fmt.Errorf("kickstart %s: kscloud lint --for %s found %d error(s); fix them or launch with --no-lint", install.RedactURL(name), mode, errs)
	}
	return nil
}

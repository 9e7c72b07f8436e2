package main

import (
	"context"
	"fmt"
	"io"

	"github.com/kscloud/kscloud/internal/kickstart"
)

// lintBeforeLaunch checks the kickstart before anything boots: problems
// are printed as kscloud lint prints them; errors stop the launch (the
// caller skips this with --no-lint).
func lintBeforeLaunch(ctx context.Context, name string, ks []byte, version, kind string, stderr io.Writer) error {
	_, diags := kickstart.Parse(kickstart.Source{Name: name, Data: ks}, kickstart.Options{Version: version})
	errs := 0
	for _, d := range diags {
		fmt.Fprintln(stderr, d.String())
		if d.Severity == kickstart.SeverityError {
			errs++
		}
	}
	if errs > 0 {
		return fmt.Errorf("kickstart %s: %d error(s) found by the lint; fix them or launch with --no-lint", name, errs)
	}
	return nil
}

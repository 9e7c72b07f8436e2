package main

import (
	"fmt"
	"io"
)

// cmdLint is filled in by the kickstart work (issue 5).
func cmdLint(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kscloud lint: not built yet")
	return 2
}

// Package kickstart parses and checks Anaconda kickstart files.
//
// Parse reproduces pykickstart, the reference implementation Anaconda and
// ksvalidator use: the same line splitting (Python's shlex with comments),
// the same sections and %end rules, the same command tables and option
// parsing for every syntax version from RHEL3/FC3 to RHEL11/F45 (spec.json,
// generated from pykickstart by gen/specgen.py), and the same per-command
// checks, so that what it rejects is what the installer would reject.
// docs/kickstart-conformance.md measures the agreement.
//
// The result is a File: its commands (with options resolved, positions,
// and the family key that makes "last one wins" explicit), its sections
// (with their bodies, line by line), and its includes. PowerAction and
// InstallSources answer the questions the install workflow asks.
//
// Lint adds the checks that matter when the install runs unattended in a
// cloud instance, for a bake (an image) or an install in place; the rules
// are listed in Rules and explained in docs/kickstart-lint.md.
// The "kscloud lint" command itself lives in cmd/kscloud (lint.go).
package kickstart

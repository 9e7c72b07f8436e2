package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kscloud/kscloud/internal/install"
)

// summaryFile is the per-build summary log in the builds directory: one
// JSON line per run of run/bake, for the operator's own collection
// (duration, outcome, resources).
const summaryFile = "summary.jsonl"

type buildSummary struct {
	Time      time.Time `json:"time"`
	Build     string    `json:"build"`
	Kind      string    `json:"kind"`
	Provider  string    `json:"provider"`
	Status    string    `json:"status"`
	DurationS float64   `json:"duration_s"`
	Resources int       `json:"resources"`
	Image     string    `json:"image,omitempty"`
	// ImageBytes is the space the image file takes on this host (libvirt:
	// its allocated blocks; sparse regions take none).
	ImageBytes int64  `json:"image_bytes,omitempty"`
	Error      string `json:"error,omitempty"`
}

// appendSummary appends b's summary line to dir/summary.jsonl in one
// O_APPEND write, so concurrent builds do not interleave their lines.
func appendSummary(dir string, b *install.Build, took time.Duration, runErr error) error {
	s := buildSummary{Time: time.Now().UTC(), Build: b.ID, Kind: b.Kind, Provider: b.Provider, Status: b.Status,
		DurationS: took.Round(time.Millisecond).Seconds(), Resources: len(b.Resources)}
	if b.Result != nil {
		s.Image = b.Result.ImageID
		if b.Result.ImagePath != "" {
			if st, err := os.Stat(b.Result.ImagePath); err == nil {
				if sys, ok := st.Sys().(*syscall.Stat_t); ok {
					s.ImageBytes = sys.Blocks * 512
				}
			}
		}
	}
	if runErr != nil {
		s.Error = runErr.Error()
	}
	line, err := json.Marshal(s)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, summaryFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("build summary %s: %w", p, err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("build summary %s: %w", p, err)
	}
	return f.Close()
}

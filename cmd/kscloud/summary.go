package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
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
	ImageBytes int64 `json:"image_bytes,omitempty"`
	// BytesWritten is what the build wrote on this host: the image, its
	// export and the volumes it keeps (a run's disk), by allocated blocks
	// (libvirt). Absent for the clouds, whose volumes are written where
	// kscloud cannot count.
	BytesWritten *int64 `json:"bytes_written,omitempty"`
	// APICalls counts the requests made to the cloud's API by this run,
	// retries included (ec2: every request the SDK sent; opennebula:
	// XML-RPC calls).
	// Absent for libvirt, whose calls are local RPC.
	APICalls *int64 `json:"api_calls,omitempty"`
	Error    string `json:"error,omitempty"`
}

// callCounter counts a provider's API calls for the summary.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) count(string) { c.n.Add(1) }

// allocated is the space path takes on disk (0 when it is not there).
func allocated(path string) int64 {
	if path == "" {
		return 0
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Blocks * 512
	}
	return 0
}

// volumePather is a provider whose volumes are files on this host
// (libvirt).
type volumePather interface {
	VolumePath(id string) (string, error)
}

var _ volumePather = (*cloudlibvirt.Provider)(nil)

// volumesWritten is the space the volumes b created and did not remove
// take on this host (a run's disk; a bake's target is gone by the end).
func volumesWritten(p volumePather, b *install.Build) int64 {
	var n int64
	for _, r := range b.Resources {
		if r.Kind != install.KindVolume || r.Deleted {
			continue
		}
		if path, err := p.VolumePath(r.ID); err == nil {
			n += allocated(path)
		}
	}
	return n
}

// appendSummary appends b's summary line to dir/summary.jsonl in one
// O_APPEND write, so concurrent builds do not interleave their lines.
// calls is the provider's API call count (nil: not counted); volumes, the
// bytes of the volumes left on this host (volumesWritten; libvirt). The
// error is one line with URLs' credentials struck, as kscloud prints it.
func appendSummary(dir string, b *install.Build, took time.Duration, runErr error, calls *callCounter, volumes int64) error {
	s := buildSummary{Time: time.Now().UTC(), Build: b.ID, Kind: b.Kind, Provider: b.Provider, Status: b.Status,
		DurationS: took.Round(time.Millisecond).Seconds(), Resources: len(b.Resources)}
	if calls != nil {
		n := calls.n.Load()
		s.APICalls = &n
	}
	if b.Result != nil {
		s.Image = b.Result.ImageID
		s.ImageBytes = allocated(b.Result.ImagePath)
	}
	if b.Provider == "libvirt" {
		n := s.ImageBytes + allocated(b.Value("export.path")) + volumes
		s.BytesWritten = &n
	}
	if runErr != nil {
		s.Error = shown(strings.ReplaceAll(runErr.Error(), "\n", "; "))
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

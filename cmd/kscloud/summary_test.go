package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/install"
)

func TestAppendSummary(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "f40.qcow2")
	if err := os.WriteFile(img, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &install.Build{ID: "ks-1", Kind: "bake", Provider: "libvirt", Status: install.StatusDone,
		Resources: []install.Resource{{Kind: "volume", ID: "v"}}, Result: &install.Result{ImageID: "f40-1", ImagePath: img}}
	b.Values = map[string]string{"export.path": img} // as if exported in place: counted again
	if err := appendSummary(dir, b, 90*time.Second, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	b2 := &install.Build{ID: "ks-2", Kind: "run", Provider: "ec2", Status: install.StatusFailed}
	// The cloud's API calls as a provider counts them.
	calls := new(callCounter)
	for _, op := range []string{"RunInstances", "DescribeInstances", "DescribeInstances"} {
		calls.count(op)
	}
	if err := appendSummary(dir, b2, time.Second, errors.New("instance i-1: installer stopped: crashed"), calls, 0); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, summaryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []buildSummary
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s buildSummary
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, s)
	}
	if len(got) != 2 || got[0].Build != "ks-1" || got[0].DurationS != 90 || got[0].Image != "f40-1" || got[0].Resources != 1 || got[0].ImageBytes < 64<<10 ||
		got[1].Status != install.StatusFailed || got[1].Error == "" ||
		got[0].BytesWritten == nil || *got[0].BytesWritten != 2*got[0].ImageBytes || got[0].APICalls != nil ||
		got[1].APICalls == nil || *got[1].APICalls != 3 || got[1].BytesWritten != nil {
		t.Fatalf("summary lines %+v", got)
	}
}

// fakeVolumes is a provider whose volumes are files (as libvirt's).
type fakeVolumes map[string]string

func (f fakeVolumes) VolumePath(id string) (string, error) {
	if p, ok := f[id]; ok {
		return p, nil
	}
	return "", errors.New("no such volume")
}

// TestSummaryRunAndError: a libvirt run's line counts the disk it leaves
// in bytes_written (only a bake's image and export were counted: a run
// wrote 0); the error is one line with a URL's credentials struck.
func TestSummaryRunAndError(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "vol-1.img")
	if err := os.WriteFile(disk, make([]byte, 128<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "vol-2.img")
	b := &install.Build{ID: "ks-3", Kind: "run", Provider: "libvirt", Status: install.StatusFailed, Resources: []install.Resource{
		{Kind: install.KindVolume, ID: "vol-1", Role: "root", Keep: true},
		{Kind: install.KindVolume, ID: "vol-2", Role: "target", Deleted: true},
		{Kind: install.KindVolume, ID: "vol-3", Role: "target"},
		{Kind: "instance", ID: "ks-3-run"},
	}}
	vols := fakeVolumes{"vol-1": disk, "vol-2": gone}
	runErr := errors.New("kickstart http://admin:s3cret@mirror.example/ks.cfg?token=t0ken: 401 Unauthorized\nsecond line")
	if err := appendSummary(dir, b, time.Second, runErr, nil, volumesWritten(vols, b)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, summaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s buildSummary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	if s.BytesWritten == nil || *s.BytesWritten < 128<<10 {
		t.Errorf("bytes_written %s, want the disk's %d", data, 128<<10)
	}
	if strings.Contains(s.Error, "s3cret") || strings.Contains(s.Error, "t0ken") || strings.ContainsAny(s.Error, "\r\n") ||
		!strings.Contains(s.Error, "mirror.example/ks.cfg") || !strings.Contains(s.Error, "second line") {
		t.Errorf("error %q: want one line, the URL without its credentials", s.Error)
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
	if err := appendSummary(dir, b, 90*time.Second, nil, nil); err != nil {
		t.Fatal(err)
	}
	b2 := &install.Build{ID: "ks-2", Kind: "run", Provider: "ec2", Status: install.StatusFailed}
	// The cloud's API calls as a provider counts them.
	calls := new(callCounter)
	for _, op := range []string{"RunInstances", "DescribeInstances", "DescribeInstances"} {
		calls.count(op)
	}
	if err := appendSummary(dir, b2, time.Second, errors.New("instance i-1: installer stopped: crashed"), calls); err != nil {
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

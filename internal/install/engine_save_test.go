package install

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// breakStore makes every later Save fail: the builds directory becomes a
// file (root ignores permissions).
func breakStore(t *testing.T, s *Store) {
	t.Helper()
	if err := os.RemoveAll(s.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEngineSaveErrors: a state file that cannot be written is never
// silent: the step that failed and every cleanup's failed save come
// back with the step's error; a build whose state cannot be saved runs
// no further step.
func TestEngineSaveErrors(t *testing.T) {
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ran, cleaned []string
	step := func(name string, run func() error) Step {
		return Step{Name: name,
			Run: func(context.Context, *Build) error { ran = append(ran, name); return run() },
			Cleanup: func(context.Context, *Build, bool) error {
				cleaned = append(cleaned, name)
				return nil
			}}
	}
	boom := errors.New("boom")
	b := NewBuild("bake", "test", Spec{})
	err = (&Engine{Store: store}).Run(context.Background(), b, []Step{
		step("one", func() error { return nil }),
		step("two", func() error { breakStore(t, store); return boom }),
		step("three", func() error { return nil }),
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "state file") || strings.Count(err.Error(), "cleanup ") != 2 {
		t.Fatalf("error %v: want the step's and the failed saves (after the step, after each cleanup)", err)
	}
	if strings.Join(ran, ",") != "one,two" || strings.Join(cleaned, ",") != "two,one" {
		t.Fatalf("ran %v, cleaned %v", ran, cleaned)
	}

	// The save after a step fails: no further step runs.
	store2, _ := OpenStore(t.TempDir())
	ran, cleaned = nil, nil
	b = NewBuild("bake", "test", Spec{})
	err = (&Engine{Store: store2}).Run(context.Background(), b, []Step{
		step("one", func() error { breakStore(t, store2); return nil }),
		step("two", func() error { return nil }),
	})
	if err == nil || !strings.Contains(err.Error(), "state file") || strings.Join(ran, ",") != "one" || b.Status != StatusFailed {
		t.Fatalf("error %v, ran %v, status %s: want a failed build that ran no step after the lost save", err, ran, b.Status)
	}

	// Sweep says so too.
	store3, _ := OpenStore(t.TempDir())
	b = NewBuild("bake", "test", Spec{})
	if err := store3.Save(b); err != nil {
		t.Fatal(err)
	}
	breakStore(t, store3)
	if err := (&Engine{Store: store3}).Sweep(context.Background(), b); err == nil || !strings.Contains(err.Error(), "state file") {
		t.Fatalf("sweep: %v", err)
	}
}

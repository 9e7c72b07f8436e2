package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Golden compares got with testdata/NAME.golden of the test's package, or
// writes it when update is set (the package's -update flag). pkg names the
// package for the remedy ("./cmd/kscloud"), doc where a change on purpose
// must be said (its man page).
func Golden(t testing.TB, pkg, doc, name, got string, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (new output? go test %s -run %s -update)", err, pkg, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s changed (if on purpose: go test %s -run '%s' -update, and say so in %s):\n--- want\n%s\n--- got\n%s", path, pkg, t.Name(), doc, want, got)
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// JSONShape reduces a JSON document to its shape: every key, and for each
// value its type (a list shows its first element's shape), so a golden
// file pins the keys and types and not the ids and times of one run. A key
// that is not snake_case fails the test unless foreign says it is not the
// program's own (e.g. a cloud's tag names); foreign may be nil.
func JSONShape(t testing.TB, doc string, foreign func(key string) bool) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	var shape func(v any) any
	shape = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			m := map[string]any{}
			for k, e := range x {
				if !snakeCase.MatchString(k) && (foreign == nil || !foreign(k)) {
					t.Errorf("key %q is not snake_case", k)
				}
				m[k] = shape(e)
			}
			return m
		case []any:
			if len(x) == 0 {
				return []any{}
			}
			return []any{shape(x[0])}
		case string:
			return "string"
		case float64:
			return "number"
		case bool:
			return "bool"
		case nil:
			return nil
		}
		return fmt.Sprintf("%T", v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.Encode(shape(v))
	return buf.String()
}

package install

import (
	"fmt"
	"testing"

	"github.com/kscloud/kscloud/internal/cloud"
)

// TestRecordCreated: a resource a create call returned is recorded and
// saved even when the call failed after creating it; its error wins.
func TestRecordCreated(t *testing.T) {
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuild("bake", "ec2", Spec{})
	b.save = store.Save
	tagErr := fmt.Errorf("snapshot snap-1: tag: %w", cloud.ErrNotFound)
	if err := b.RecordCreated(Resource{Kind: KindSnapshot, ID: "snap-1", Role: "snapshot"}, tagErr); err != tagErr {
		t.Fatalf("returned %v, want the create error", err)
	}
	if err := b.RecordCreated(Resource{Kind: KindVolume, Role: "target"}, tagErr); err != tagErr {
		t.Fatalf("no id: returned %v", err)
	}
	saved, err := store.Load(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := saved.Resource("snapshot"); !ok || r.ID != "snap-1" {
		t.Errorf("saved resources %s: want the snapshot", saved.ResourceSummary())
	}
	if _, ok := saved.Resource("target"); ok {
		t.Error("a resource without an id was recorded")
	}
}

package libvirt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
)

// An image whose provenance file cannot be removed is not deregistered
// half: the error names the image and the file, the image stays listed,
// and deregistering it again, once the file can go, finishes the job.
func TestDeregisterImageProvenanceError(t *testing.T) {
	dir := t.TempDir()
	p := &Provider{opt: Options{ImageDir: dir}, reg: &registry{dir: filepath.Join(dir, "reg")}}
	img := filepath.Join(dir, "ks-1.qcow2")
	if err := os.WriteFile(img, []byte("qcow"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.reg.put(&record{Kind: "image", ID: "emi-00000001", Name: "ks-1", Path: img, State: "available", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A non-empty directory where the provenance file is: its removal
	// fails (for root too).
	prov := provenancePath(img)
	if err := os.MkdirAll(filepath.Join(prov, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err := p.DeregisterImage(ctx, "emi-00000001")
	if err == nil || !strings.Contains(err.Error(), `image "emi-00000001": deregister: provenance:`) || !strings.Contains(err.Error(), prov) {
		t.Fatalf("deregister with an unremovable provenance: %v", err)
	}
	if _, err := p.Image(ctx, "emi-00000001"); err != nil {
		t.Fatalf("image forgotten although its provenance stayed: %v", err)
	}
	if err := os.RemoveAll(prov); err != nil {
		t.Fatal(err)
	}
	if err := p.DeregisterImage(ctx, "emi-00000001"); err != nil {
		t.Fatalf("deregister again: %v", err)
	}
	if _, err := p.Image(ctx, "emi-00000001"); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("after deregister: %v", err)
	}
}

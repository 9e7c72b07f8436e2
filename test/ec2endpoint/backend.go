package ec2endpoint

import (
	"context"
	"fmt"
)

// backend does the real work behind the state machines: nothing in plain
// mode, files and libvirt domains in node mode. Its methods run without
// the server's lock held.
type backend interface {
	// newVolume creates a volume's storage: sizeGiB of zeros (sparse), or
	// a copy of the snapshot file from, grown to sizeGiB.
	newVolume(ctx context.Context, id string, sizeGiB int, from string) (path string, err error)
	removeVolume(path string) error
	// keepVolume moves a root disk that outlives its instance
	// (DeleteOnTermination false) out of the instance directory.
	keepVolume(id, path string) (string, error)
	snapshot(ctx context.Context, id, volumePath string) (path string, err error)
	removeSnapshot(path string) error
	// launch boots an instance: root disk, instance files, pre-boot hooks,
	// the domain, then the volumes in l.attach.
	launch(ctx context.Context, l launchSpec) (launchResult, error)
	attach(ctx context.Context, instanceID, path, device string) error
	detach(ctx context.Context, instanceID, path, device string) error
	// halt stops an instance's domain at once (stop, terminate).
	halt(ctx context.Context, instanceID string) error
	// clean runs the pre-clean hooks and removes the instance's files,
	// returning the console output it had.
	clean(ctx context.Context, instanceID string) ([]byte, error)
	console(instanceID string) ([]byte, error)
	close() error
}

// launchSpec is what a launch needs.
type launchSpec struct {
	id          string
	rootPath    string // the root disk of a stopped instance being started again
	rootFrom    string // file the root disk is copied from ("" : sparse and empty)
	rootSizeGiB int
	kernel      string // host paths, "" without an EKI/ERI
	ramdisk     string
	userData    []byte
	attach      []attachSpec
}

type attachSpec struct{ path, device string }

type launchResult struct {
	rootPath  string
	privateIP string
}

// plain is the in-memory backend: every operation succeeds at once.
type plain struct{}

func (plain) newVolume(context.Context, string, int, string) (string, error) { return "", nil }
func (plain) removeVolume(string) error                                      { return nil }
func (plain) keepVolume(_, path string) (string, error)                      { return path, nil }
func (plain) snapshot(context.Context, string, string) (string, error)       { return "", nil }
func (plain) removeSnapshot(string) error                                    { return nil }
func (plain) launch(context.Context, launchSpec) (launchResult, error)       { return launchResult{}, nil }
func (plain) attach(context.Context, string, string, string) error           { return nil }
func (plain) detach(context.Context, string, string, string) error           { return nil }
func (plain) halt(context.Context, string) error                             { return nil }
func (plain) clean(context.Context, string) ([]byte, error)                  { return nil, nil }
func (plain) console(id string) ([]byte, error) {
	return []byte(fmt.Sprintf("ec2endpoint: plain mode: instance %s has no console\n", id)), nil
}
func (plain) close() error { return nil }

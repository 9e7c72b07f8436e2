// Package cloud is the provider interface kscloud's workflows run on: small
// capability interfaces (instances, volumes, snapshots, images, tags) with
// the states and not-found contract of the EC2 API, which Eucalyptus,
// OpenNebula's and kscloud's own local libvirt provider are mapped onto.
//
// Contract for every implementation (checked by cloudtest.Run, the
// conformance suite run against each provider):
//   - Create/Run calls return as soon as the resource exists, with its ID
//     and its first state ("pending", "creating"); waiting is the caller's
//     business (package cloud/wait). An ID is returned before any waiting so the
//     caller can record it.
//   - A lookup or delete of a resource that does not exist returns an error
//     wrapping ErrNotFound. Deleting something already gone is therefore
//     distinguishable, and cleanup code treats it as done.
//   - States are the EC2 names below; a terminated instance or deleted
//     volume may still be listed for a while, then disappears.
//   - Tags given at creation are set before the call returns.
package cloud

import (
	"context"
	"errors"
	"time"

	"github.com/kscloud/kscloud/internal/consolenote"
)

// ErrNotFound wraps every "no such resource" error.
var ErrNotFound = errors.New("not found")

// ErrIncorrectState means the resource exists but is in a state where the
// operation is not possible (EC2 IncorrectState, VolumeInUse…).
var ErrIncorrectState = errors.New("incorrect state")

// Instance states (EC2).
const (
	InstancePending      = "pending"
	InstanceRunning      = "running"
	InstanceStopping     = "stopping"
	InstanceStopped      = "stopped"
	InstanceShuttingDown = "shutting-down"
	InstanceTerminated   = "terminated"
)

// Volume states (EC2).
const (
	VolumeCreating  = "creating"
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"
	VolumeDeleting  = "deleting"
	VolumeDeleted   = "deleted"
	VolumeError     = "error"
)

// Snapshot states (EC2).
const (
	SnapshotPending   = "pending"
	SnapshotCompleted = "completed"
	SnapshotError     = "error"
)

// Image states (EC2).
const (
	ImagePending   = "pending"
	ImageAvailable = "available"
	ImageFailed    = "failed"
)

// Tags are key/value labels; kscloud tags everything it creates with
// TagBuild so a sweep can find what no state file owns.
type Tags map[string]string

// Tag keys kscloud sets.
const (
	TagBuild   = "kscloud:build"   // the build (workflow run) id
	TagCreator = "kscloud:creator" // "kscloud"
	TagRole    = "kscloud:role"    // installer, target-volume, snapshot, image, instance
)

// InstanceSpec describes an instance to launch.
type InstanceSpec struct {
	Name      string // a name hint (libvirt: the domain name)
	ImageID   string // image (EMI/AMI, or a local image name); "" with Kernel for an installer-only boot
	KernelID  string // EKI/AKI id, or a kernel path for local libvirt
	RamdiskID string // ERI/ARI id, or an initrd path for local libvirt
	Cmdline   string // local libvirt only: the kernel command line (clouds carry it in user-data)
	Type      string // instance type (m1.small…); local: ignored
	MemoryMB  int    // local libvirt
	CPUs      int    // local libvirt
	UserData  []byte
	KeyName   string
	Zone      string
	Volumes   []Attachment // volumes attached at launch (block-device mapping)
	// InstanceInitiatedShutdown: "stop" or "terminate" on a guest power-off.
	InstanceInitiatedShutdown string
	VNC                       bool
	InPlace                   bool // local libvirt: boot the installed disk when the installer ends
	Tags                      Tags
}

// Attachment puts a volume on an instance. In an InstanceSpec it is a
// block-device mapping: VolumeID names an existing volume (only where
// Capabilities.AttachExistingAtLaunch), a snapshot (snap-…: a new volume
// from it), an instance-store disk (ephemeralN) or "none"; an empty
// VolumeID with SizeGiB creates a new empty volume of that size. In an
// Instance it is what the instance has: VolumeID is always the real
// volume's ID, also for volumes its launch created.
type Attachment struct {
	VolumeID string
	Device   string // /dev/sdb, vdb …
	// SizeGiB is the size of a volume the launch creates (empty, or larger
	// than its snapshot); 0: the snapshot's size.
	SizeGiB int
	// DeleteOnTermination says whether a volume the launch created goes
	// with the instance; nil: the cloud's default (EC2: true). In an
	// Instance, nil when the provider does not say.
	DeleteOnTermination *bool
}

// Instance is an instance's state.
type Instance struct {
	ID          string
	State       string
	StateReason string
	ImageID     string
	PrivateIP   string
	PublicIP    string
	Launched    time.Time
	Volumes     []Attachment
	Tags        Tags
	// VNC, when the provider knows it (local libvirt, or nchookd on the node).
	VNC string
}

// VolumeSpec describes a new volume.
type VolumeSpec struct {
	SizeGiB    int
	Zone       string
	SnapshotID string
	Tags       Tags
}

// Volume is a volume's state.
type Volume struct {
	ID          string
	State       string
	SizeGiB     int
	Attachment  *Attachment // nil when not attached
	AttachState string      // attaching, attached, detaching, detached
	InstanceID  string
	Tags        Tags
}

// Snapshot is a snapshot's state.
type Snapshot struct {
	ID       string
	VolumeID string
	State    string
	Progress int // percent
	Tags     Tags
}

// ImageSpec registers an image from a snapshot.
type ImageSpec struct {
	Name           string
	Description    string
	SnapshotID     string
	RootDevice     string // /dev/sda1 (EBS root device name)
	Architecture   string // x86_64
	KernelID       string // paravirtual images
	RamdiskID      string
	Virtualization string // hvm | paravirtual
	// Ephemeral block-device mappings (ephemeral0 → /dev/sdb, …) as seed 000 does.
	Ephemeral map[string]string
	Tags      Tags
}

// Image is a registered image.
type Image struct {
	ID          string
	Name        string
	Description string
	State       string
	SnapshotID  string
	Created     time.Time
	Tags        Tags
	// Local libvirt: the image file and its provenance.
	Path string
}

// Resource is anything taggable, as FindTagged returns it.
type Resource struct {
	Kind string // instance, volume, snapshot, image
	ID   string
	Tags Tags
}

// Instances launches and follows instances.
type Instances interface {
	RunInstance(ctx context.Context, spec InstanceSpec) (Instance, error)
	Instance(ctx context.Context, id string) (Instance, error)
	TerminateInstance(ctx context.Context, id string) error
	ConsoleOutput(ctx context.Context, id string) ([]byte, error)
}

// Volumes creates and attaches block volumes.
type Volumes interface {
	CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error)
	Volume(ctx context.Context, id string) (Volume, error)
	AttachVolume(ctx context.Context, volumeID, instanceID, device string) error
	DetachVolume(ctx context.Context, volumeID string) error
	DeleteVolume(ctx context.Context, id string) error
}

// Snapshots turns volumes into snapshots.
type Snapshots interface {
	CreateSnapshot(ctx context.Context, volumeID, description string, tags Tags) (Snapshot, error)
	Snapshot(ctx context.Context, id string) (Snapshot, error)
	DeleteSnapshot(ctx context.Context, id string) error
}

// Images registers and lists images.
type Images interface {
	RegisterImage(ctx context.Context, spec ImageSpec) (Image, error)
	Image(ctx context.Context, id string) (Image, error)
	Images(ctx context.Context, tags Tags) ([]Image, error)
	DeregisterImage(ctx context.Context, id string) error
}

// Tagger tags resources and finds them by tag.
type Tagger interface {
	Tag(ctx context.Context, id string, tags Tags) error
	FindTagged(ctx context.Context, key, value string) ([]Resource, error)
}

// Provider is a whole cloud.
type Provider interface {
	Name() string
	Instances
	Volumes
	Snapshots
	Images
	Tagger
}

// Capabilities say how a provider differs where the interfaces leave it
// open. The zero value is EC2's behaviour.
type Capabilities struct {
	// AttachExistingAtLaunch: InstanceSpec.Volumes may name existing
	// volumes (local libvirt). Without it (EC2, Eucalyptus) a volume for a
	// new instance is created by its block-device mapping (an Attachment
	// with SizeGiB and no VolumeID) and its ID read from Instance.Volumes.
	AttachExistingAtLaunch bool
}

// Capable is implemented by providers whose Capabilities are not the zero value.
type Capable interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns p's capabilities (the zero value unless p is Capable).
func CapabilitiesOf(p Provider) Capabilities {
	if c, ok := p.(Capable); ok {
		return c.Capabilities()
	}
	return Capabilities{}
}

// ErrNoVNC wraps "this instance has no VNC console (now)".
var ErrNoVNC = errors.New("no VNC console")

// VNCConsoles is implemented by providers that can say where an install's
// VNC console listens: local libvirt from the live domain, EC2 from the
// note nchookd leaves in the console output (package consolenote).
type VNCConsoles interface {
	VNCConsole(ctx context.Context, instanceID string) (consolenote.VNC, error)
}

// Bool returns a pointer to v (for Attachment.DeleteOnTermination).
func Bool(v bool) *bool { return &v }

// IsNotFound reports whether err wraps ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/userdata"
)

var _ cloud.Provider = (*Provider)(nil)

// DefaultInstanceType is what RunInstance asks for when the spec names no
// type (Eucalyptus's own default, RunInstancesType.instanceType).
const DefaultInstanceType = "m1.small"

// DefaultRootDevice is the root device name of images RegisterImage
// registers when the spec names none (seed 000, Eucalyptus EBS images).
const DefaultRootDevice = "/dev/sda1"

// ---- instances ----

// RunInstance launches one instance and returns it as RunInstances
// answered (state pending), tagged with spec.Tags (plus Name=spec.Name):
// in the call itself (TagSpecification) where the cloud takes it, else
// with CreateTags afterwards (Eucalyptus has no TagSpecification),
// retried while the new id is not found yet. If tagging fails the
// instance is returned with its ID alongside the error, so the caller can
// record it and clean up.
//
// spec.Volumes become block-device mappings: an empty VolumeID with
// SizeGiB creates a new empty volume of that size, a snap-… VolumeID a new
// volume from that snapshot (SizeGiB may grow it), ephemeralN maps an
// instance-store disk, "none" suppresses the image's mapping at Device;
// DeleteOnTermination, when set, decides whether a created volume outlives
// the instance. The IDs of created volumes are in Instance.Volumes (in the
// answer when the cloud lists them at once, else once DescribeInstances
// does). An existing vol-… cannot be attached at launch on EC2 (the zero
// cloud.Capabilities); attach it once the instance runs.
// spec.Cmdline, MemoryMB, CPUs, VNC and InPlace belong to local libvirt;
// on a cloud the command line and the kscloud directives travel in
// user-data, so a non-empty Cmdline is refused rather than dropped.
func (p *Provider) RunInstance(ctx context.Context, spec cloud.InstanceSpec) (cloud.Instance, error) {
	what := spec.ImageID
	if err := checkID("image", spec.ImageID, imagePrefixes...); err != nil {
		return cloud.Instance{}, fmt.Errorf("run instance: %w", err)
	}
	if spec.KernelID != "" {
		if err := checkID("kernel", spec.KernelID, kernelPrefixes...); err != nil {
			return cloud.Instance{}, fmt.Errorf("image %q: run instance: %w", what, err)
		}
	}
	if spec.RamdiskID != "" {
		if err := checkID("ramdisk", spec.RamdiskID, ramdiskPrefixes...); err != nil {
			return cloud.Instance{}, fmt.Errorf("image %q: run instance: %w", what, err)
		}
	}
	if spec.Cmdline != "" {
		return cloud.Instance{}, fmt.Errorf("image %q: run instance: a kernel command line travels in user-data on ec2 (bootparams=…), not in the instance spec", what)
	}
	if len(spec.UserData) > userdata.MaxUserData {
		return cloud.Instance{}, fmt.Errorf("image %q: run instance: user-data is %d bytes, over the EC2 limit of %d", what, len(spec.UserData), userdata.MaxUserData)
	}
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(spec.ImageID),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		InstanceType: types.InstanceType(DefaultInstanceType),
	}
	if spec.Type != "" {
		in.InstanceType = types.InstanceType(spec.Type)
	}
	if spec.KernelID != "" {
		in.KernelId = aws.String(spec.KernelID)
	}
	if spec.RamdiskID != "" {
		in.RamdiskId = aws.String(spec.RamdiskID)
	}
	if len(spec.UserData) > 0 {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString(spec.UserData))
	}
	if spec.KeyName != "" {
		in.KeyName = aws.String(spec.KeyName)
	}
	switch spec.InstanceInitiatedShutdown {
	case "":
	case "stop", "terminate":
		in.InstanceInitiatedShutdownBehavior = types.ShutdownBehavior(spec.InstanceInitiatedShutdown)
	default:
		return cloud.Instance{}, fmt.Errorf("image %q: run instance: instance-initiated shutdown %q: want stop or terminate", what, spec.InstanceInitiatedShutdown)
	}
	zone, err := p.zone(ctx, spec.Zone)
	if err != nil {
		return cloud.Instance{}, fmt.Errorf("image %q: run instance: %w", what, err)
	}
	if zone != "" {
		in.Placement = &types.Placement{AvailabilityZone: aws.String(zone)}
	}
	for _, a := range spec.Volumes {
		m, err := launchMapping(a)
		if err != nil {
			return cloud.Instance{}, fmt.Errorf("image %q: run instance: %w", what, err)
		}
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, m)
	}
	tags := cloud.Tags{}
	for k, v := range spec.Tags {
		tags[k] = v
	}
	if spec.Name != "" && tags["Name"] == "" {
		tags["Name"] = spec.Name
	}
	var out *ec2.RunInstancesOutput
	err = p.createTagged(tags, types.ResourceTypeInstance, func(ts []types.TagSpecification) (err error) {
		in.TagSpecifications, in.ClientToken = ts, nil
		out, err = p.api.RunInstances(ctx, in)
		return err
	})
	if err != nil {
		return cloud.Instance{}, objErr("image", what, "run instance", err)
	}
	if len(out.Instances) != 1 {
		return cloud.Instance{}, fmt.Errorf("image %q: run instance: the cloud answered with %d instances", what, len(out.Instances))
	}
	inst := instanceFrom(out.Instances[0])
	if err := p.tagNew(ctx, inst.ID, inst.Tags, tags); err != nil {
		return inst, err
	}
	inst.Tags = mergeTags(inst.Tags, tags)
	return inst, nil
}

// launchMapping turns an Attachment into a RunInstances block-device mapping.
func launchMapping(a cloud.Attachment) (types.BlockDeviceMapping, error) {
	if a.Device == "" {
		return types.BlockDeviceMapping{}, fmt.Errorf("block-device mapping %q: no device", a.VolumeID)
	}
	if a.SizeGiB < 0 {
		return types.BlockDeviceMapping{}, fmt.Errorf("block-device mapping at %s: size %d GiB", a.Device, a.SizeGiB)
	}
	m := types.BlockDeviceMapping{DeviceName: aws.String(devicePath(a.Device))}
	ebs := func() *types.EbsBlockDevice {
		e := &types.EbsBlockDevice{DeleteOnTermination: a.DeleteOnTermination}
		if a.SizeGiB > 0 {
			e.VolumeSize = aws.Int32(int32(a.SizeGiB))
		}
		return e
	}
	l := strings.ToLower(a.VolumeID)
	switch {
	case l == "" && a.SizeGiB > 0:
		m.Ebs = ebs()
	case l == "":
		return m, fmt.Errorf("block-device mapping at %s: a new volume needs a size", a.Device)
	case strings.HasPrefix(l, "snap-"):
		m.Ebs = ebs()
		m.Ebs.SnapshotId = aws.String(a.VolumeID)
	case strings.HasPrefix(l, "ephemeral"):
		m.VirtualName = aws.String(a.VolumeID)
	case l == "none":
		m.NoDevice = aws.String("")
	case strings.HasPrefix(l, "vol-"):
		return m, fmt.Errorf("volume %q: ec2 cannot attach an existing volume at launch: attach it when the instance is running, or let the launch create one (a size and no volume ID)", a.VolumeID)
	default:
		return m, fmt.Errorf("block-device mapping %q at %s: want snap-…, ephemeralN, none, or a size for a new volume", a.VolumeID, a.Device)
	}
	return m, nil
}

// devicePath makes "sdf" into "/dev/sdf" (euca-attach-volume -d sdf works;
// the API wants the path).
func devicePath(d string) string {
	if strings.HasPrefix(d, "/") {
		return d
	}
	return "/dev/" + d
}

// Instance describes one instance.
func (p *Provider) Instance(ctx context.Context, id string) (cloud.Instance, error) {
	out, err := p.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return cloud.Instance{}, objErr("instance", id, "describe", err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if strings.EqualFold(aws.ToString(in.InstanceId), id) {
				return instanceFrom(in), nil
			}
		}
	}
	return cloud.Instance{}, notFound("instance", id, "describe")
}

// TerminateInstance terminates an instance. Terminating one already
// terminated but still listed succeeds, as on EC2.
func (p *Provider) TerminateInstance(ctx context.Context, id string) error {
	if _, err := p.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		return objErr("instance", id, "terminate", err)
	}
	return nil
}

// ConsoleOutput returns the instance's console output, base64-decoded. It
// is what the cloud last captured (EC2: the last 64 KiB, updated every few
// minutes; Eucalyptus: the NC's console.log).
func (p *Provider) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	out, err := p.api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		return nil, objErr("instance", id, "console output", err)
	}
	s := aws.ToString(out.Output)
	if s == "" {
		return []byte{}, nil
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("instance %q: console output: not base64: %w", id, err)
	}
	return b, nil
}

var _ cloud.VNCConsoles = (*Provider)(nil)

// VNCConsole implements cloud.VNCConsoles: the console is on the node, and
// nchookd there notes where in the instance's console output.
func (p *Provider) VNCConsole(ctx context.Context, id string) (consolenote.VNC, error) {
	out, err := p.ConsoleOutput(ctx, id)
	if err != nil {
		return consolenote.VNC{}, err
	}
	v, st := consolenote.Read(out, id)
	switch st {
	case consolenote.Closed:
		return consolenote.VNC{}, fmt.Errorf("instance %s: the install has ended and its VNC console with it: %w", id, cloud.ErrNoVNC)
	case consolenote.None:
		return consolenote.VNC{}, fmt.Errorf("instance %s: its console output names no VNC console yet (launched with --vnc? the node's nchookd notes it once the installer runs, if its policy allows one): %w", id, cloud.ErrNoVNC)
	}
	return v, nil
}

func instanceFrom(in types.Instance) cloud.Instance {
	ci := cloud.Instance{
		ID:        aws.ToString(in.InstanceId),
		ImageID:   aws.ToString(in.ImageId),
		PrivateIP: aws.ToString(in.PrivateIpAddress),
		PublicIP:  aws.ToString(in.PublicIpAddress),
		Tags:      tagsFrom(in.Tags),
	}
	if in.State != nil {
		ci.State = string(in.State.Name)
	}
	if in.StateReason != nil && aws.ToString(in.StateReason.Message) != "" {
		ci.StateReason = aws.ToString(in.StateReason.Message)
	} else if in.StateReason != nil {
		ci.StateReason = aws.ToString(in.StateReason.Code)
	}
	if in.LaunchTime != nil {
		ci.Launched = *in.LaunchTime
	}
	for _, m := range in.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.VolumeId != nil {
			ci.Volumes = append(ci.Volumes, cloud.Attachment{VolumeID: aws.ToString(m.Ebs.VolumeId), Device: aws.ToString(m.DeviceName),
				DeleteOnTermination: m.Ebs.DeleteOnTermination})
		}
	}
	return ci
}

// ---- volumes ----

// DropClientToken removes the SDK's automatic ClientToken from an
// operation's stack (CreateVolume): Eucalyptus's CreateVolumeType has no
// such field, and Eucalyptus 4.x binds compute requests strictly
// (ComputeQueryBinding: UnknownParameterStrategy.ERROR).
func DropClientToken(st *middleware.Stack) error {
	_, err := st.Initialize.Remove("OperationIdempotencyTokenAutoFill")
	return err
}

func dropClientToken(o *ec2.Options) {
	o.APIOptions = append(o.APIOptions, DropClientToken)
}

// CreateVolume creates a volume (state creating), tagged as RunInstance
// tags an instance.
func (p *Provider) CreateVolume(ctx context.Context, spec cloud.VolumeSpec) (cloud.Volume, error) {
	what := "new"
	if spec.SnapshotID != "" {
		what = "from " + spec.SnapshotID
	}
	zone, err := p.zone(ctx, spec.Zone)
	if err != nil {
		return cloud.Volume{}, fmt.Errorf("volume %q: create: %w", what, err)
	}
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String(zone)}
	if spec.SizeGiB > 0 {
		in.Size = aws.Int32(int32(spec.SizeGiB))
	} else if spec.SnapshotID == "" {
		return cloud.Volume{}, fmt.Errorf("volume %q: create: a size is needed without a snapshot", what)
	}
	if spec.SnapshotID != "" {
		in.SnapshotId = aws.String(spec.SnapshotID)
	}
	var out *ec2.CreateVolumeOutput
	err = p.createTagged(spec.Tags, types.ResourceTypeVolume, func(ts []types.TagSpecification) (err error) {
		in.TagSpecifications = ts
		out, err = p.api.CreateVolume(ctx, in, dropClientToken)
		return err
	})
	if err != nil {
		return cloud.Volume{}, objErr("volume", what, "create", err)
	}
	v := cloud.Volume{
		ID:      aws.ToString(out.VolumeId),
		State:   string(out.State),
		SizeGiB: int(aws.ToInt32(out.Size)),
		Tags:    tagsFrom(out.Tags),
	}
	if err := p.tagNew(ctx, v.ID, v.Tags, spec.Tags); err != nil {
		return v, err
	}
	v.Tags = mergeTags(v.Tags, spec.Tags)
	return v, nil
}

// Volume describes one volume.
func (p *Provider) Volume(ctx context.Context, id string) (cloud.Volume, error) {
	out, err := p.api.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil {
		return cloud.Volume{}, objErr("volume", id, "describe", err)
	}
	for _, v := range out.Volumes {
		if strings.EqualFold(aws.ToString(v.VolumeId), id) {
			return volumeFrom(v), nil
		}
	}
	return cloud.Volume{}, notFound("volume", id, "describe")
}

func volumeFrom(v types.Volume) cloud.Volume {
	cv := cloud.Volume{
		ID:      aws.ToString(v.VolumeId),
		State:   string(v.State),
		SizeGiB: int(aws.ToInt32(v.Size)),
		Tags:    tagsFrom(v.Tags),
	}
	for _, a := range v.Attachments {
		cv.AttachState = string(a.State)
		cv.InstanceID = aws.ToString(a.InstanceId)
		if a.State != types.VolumeAttachmentStateDetached {
			cv.Attachment = &cloud.Attachment{VolumeID: cv.ID, Device: aws.ToString(a.Device)}
		}
		break
	}
	return cv
}

// AttachVolume attaches a volume at device ("sdf" or "/dev/sdf").
func (p *Provider) AttachVolume(ctx context.Context, volumeID, instanceID, device string) error {
	_, err := p.api.AttachVolume(ctx, &ec2.AttachVolumeInput{
		VolumeId:   aws.String(volumeID),
		InstanceId: aws.String(instanceID),
		Device:     aws.String(devicePath(device)),
	})
	if err != nil {
		return objErr("volume", volumeID, "attach to instance "+instanceID, err)
	}
	return nil
}

// DetachVolume detaches a volume from whatever instance has it. A volume
// that is not attached is an ErrIncorrectState error (EC2 IncorrectState).
func (p *Provider) DetachVolume(ctx context.Context, volumeID string) error {
	if _, err := p.api.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volumeID)}); err != nil {
		return objErr("volume", volumeID, "detach", err)
	}
	return nil
}

// DeleteVolume deletes a volume; an attached one is ErrIncorrectState.
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	if _, err := p.api.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)}); err != nil {
		return objErr("volume", id, "delete", err)
	}
	return nil
}

// ---- snapshots ----

// CreateSnapshot snapshots a volume (state pending), tagged as RunInstance
// tags an instance.
func (p *Provider) CreateSnapshot(ctx context.Context, volumeID, description string, tags cloud.Tags) (cloud.Snapshot, error) {
	in := &ec2.CreateSnapshotInput{VolumeId: aws.String(volumeID)}
	if description != "" {
		in.Description = aws.String(description)
	}
	var out *ec2.CreateSnapshotOutput
	err := p.createTagged(tags, types.ResourceTypeSnapshot, func(ts []types.TagSpecification) (err error) {
		in.TagSpecifications = ts
		out, err = p.api.CreateSnapshot(ctx, in)
		return err
	})
	if err != nil {
		return cloud.Snapshot{}, objErr("volume", volumeID, "snapshot", err)
	}
	s := cloud.Snapshot{
		ID:       aws.ToString(out.SnapshotId),
		VolumeID: aws.ToString(out.VolumeId),
		State:    string(out.State),
		Progress: parseProgress(aws.ToString(out.Progress)),
		Tags:     tagsFrom(out.Tags),
	}
	if err := p.tagNew(ctx, s.ID, s.Tags, tags); err != nil {
		return s, err
	}
	s.Tags = mergeTags(s.Tags, tags)
	return s, nil
}

// Snapshot describes one snapshot.
func (p *Provider) Snapshot(ctx context.Context, id string) (cloud.Snapshot, error) {
	out, err := p.api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		return cloud.Snapshot{}, objErr("snapshot", id, "describe", err)
	}
	for _, s := range out.Snapshots {
		if strings.EqualFold(aws.ToString(s.SnapshotId), id) {
			return cloud.Snapshot{
				ID:       aws.ToString(s.SnapshotId),
				VolumeID: aws.ToString(s.VolumeId),
				State:    string(s.State),
				Progress: parseProgress(aws.ToString(s.Progress)),
				Tags:     tagsFrom(s.Tags),
			}, nil
		}
	}
	return cloud.Snapshot{}, notFound("snapshot", id, "describe")
}

// parseProgress reads EC2's "42%" (Eucalyptus: "42%" too; some versions
// send "42"). Anything unreadable is 0.
func parseProgress(s string) int {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	if n > 100 {
		return 100
	}
	return n
}

// DeleteSnapshot deletes a snapshot; one a registered image uses is
// ErrIncorrectState (InvalidSnapshot.InUse).
func (p *Provider) DeleteSnapshot(ctx context.Context, id string) error {
	if _, err := p.api.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)}); err != nil {
		return objErr("snapshot", id, "delete", err)
	}
	return nil
}

// ---- images ----

// RegisterImage registers an EBS-backed image from a snapshot: the root
// device (spec.RootDevice, default /dev/sda1) maps the snapshot with
// DeleteOnTermination, and each spec.Ephemeral entry (ephemeral0 → /dev/sdb
// …) maps an instance-store disk, as seed 000 does. A paravirtual image
// names its kernel (pv-grub on EC2, an EKI on Eucalyptus). Tags are set
// with CreateTags afterwards.
func (p *Provider) RegisterImage(ctx context.Context, spec cloud.ImageSpec) (cloud.Image, error) {
	what := spec.Name
	if spec.Name == "" {
		return cloud.Image{}, fmt.Errorf("image: register: a name is required")
	}
	if spec.SnapshotID == "" {
		return cloud.Image{}, fmt.Errorf("image %q: register: a snapshot is required", what)
	}
	if spec.KernelID != "" {
		if err := checkID("kernel", spec.KernelID, kernelPrefixes...); err != nil {
			return cloud.Image{}, fmt.Errorf("image %q: register: %w", what, err)
		}
	}
	if spec.RamdiskID != "" {
		if err := checkID("ramdisk", spec.RamdiskID, ramdiskPrefixes...); err != nil {
			return cloud.Image{}, fmt.Errorf("image %q: register: %w", what, err)
		}
	}
	root := spec.RootDevice
	if root == "" {
		root = DefaultRootDevice
	}
	arch := spec.Architecture
	if arch == "" {
		arch = "x86_64"
	}
	in := &ec2.RegisterImageInput{
		Name:           aws.String(spec.Name),
		RootDeviceName: aws.String(root),
		Architecture:   types.ArchitectureValues(arch),
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: aws.String(root),
			Ebs:        &types.EbsBlockDevice{SnapshotId: aws.String(spec.SnapshotID), DeleteOnTermination: aws.Bool(true)},
		}},
	}
	if spec.Description != "" {
		in.Description = aws.String(spec.Description)
	}
	if spec.KernelID != "" {
		in.KernelId = aws.String(spec.KernelID)
	}
	if spec.RamdiskID != "" {
		in.RamdiskId = aws.String(spec.RamdiskID)
	}
	switch spec.Virtualization {
	case "":
	case "hvm", "paravirtual":
		in.VirtualizationType = aws.String(spec.Virtualization)
	default:
		return cloud.Image{}, fmt.Errorf("image %q: register: virtualization %q: want hvm or paravirtual", what, spec.Virtualization)
	}
	eph := make([]string, 0, len(spec.Ephemeral))
	for name := range spec.Ephemeral {
		eph = append(eph, name)
	}
	sort.Strings(eph)
	for _, name := range eph {
		if !strings.HasPrefix(name, "ephemeral") {
			return cloud.Image{}, fmt.Errorf("image %q: register: ephemeral mapping %q: want ephemeralN", what, name)
		}
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, types.BlockDeviceMapping{
			DeviceName:  aws.String(devicePath(spec.Ephemeral[name])),
			VirtualName: aws.String(name),
		})
	}
	out, err := p.api.RegisterImage(ctx, in)
	if err != nil {
		return cloud.Image{}, objErr("image", what, "register", err)
	}
	img := cloud.Image{
		ID:          aws.ToString(out.ImageId),
		Name:        spec.Name,
		Description: spec.Description,
		State:       cloud.ImagePending,
		SnapshotID:  spec.SnapshotID,
	}
	if len(spec.Tags) > 0 {
		if err := p.tag(ctx, img.ID, spec.Tags, true); err != nil {
			return img, err
		}
		img.Tags = mergeTags(nil, spec.Tags)
	}
	return img, nil
}

// Image describes one image.
func (p *Provider) Image(ctx context.Context, id string) (cloud.Image, error) {
	out, err := p.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		return cloud.Image{}, objErr("image", id, "describe", err)
	}
	for _, im := range out.Images {
		if strings.EqualFold(aws.ToString(im.ImageId), id) {
			return imageFrom(im), nil
		}
	}
	return cloud.Image{}, notFound("image", id, "describe")
}

// Images lists the caller's own images that carry all of tags.
func (p *Provider) Images(ctx context.Context, tags cloud.Tags) ([]cloud.Image, error) {
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: tagFilters(tags)}
	var res []cloud.Image
	for {
		out, err := p.api.DescribeImages(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("images: describe: %w", classify(err))
		}
		for _, im := range out.Images {
			res = append(res, imageFrom(im))
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	sort.Slice(res, func(i, j int) bool { return res[i].ID < res[j].ID })
	return res, nil
}

func imageFrom(im types.Image) cloud.Image {
	ci := cloud.Image{
		ID:          aws.ToString(im.ImageId),
		Name:        aws.ToString(im.Name),
		Description: aws.ToString(im.Description),
		State:       string(im.State),
		Tags:        tagsFrom(im.Tags),
	}
	if t, err := time.Parse(time.RFC3339Nano, aws.ToString(im.CreationDate)); err == nil {
		ci.Created = t
	}
	root := aws.ToString(im.RootDeviceName)
	for _, m := range im.BlockDeviceMappings {
		if m.Ebs == nil || m.Ebs.SnapshotId == nil {
			continue
		}
		if ci.SnapshotID == "" || aws.ToString(m.DeviceName) == root {
			ci.SnapshotID = aws.ToString(m.Ebs.SnapshotId)
		}
	}
	return ci
}

// DeregisterImage deregisters an image (its snapshot stays).
func (p *Provider) DeregisterImage(ctx context.Context, id string) error {
	if _, err := p.api.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)}); err != nil {
		return objErr("image", id, "deregister", err)
	}
	return nil
}

// ---- tags ----

// Tag sets tags on any resource.
func (p *Provider) Tag(ctx context.Context, id string, tags cloud.Tags) error {
	k := kindOf(id)
	return p.tag(ctx, id, tags, k == "snapshot" || k == "image")
}

// tagNew sets on a resource just created the tags its create call did
// not (a cloud without TagSpecification, or one that drops it).
func (p *Provider) tagNew(ctx context.Context, id string, have, want cloud.Tags) error {
	missing := cloud.Tags{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			missing[k] = v
		}
	}
	return p.tag(ctx, id, missing, true)
}

// tag sets tags with CreateTags. fresh: the resource was just created, and
// EC2 may not know its id yet (eventual consistency: "If you try to tag
// a resource right after you create it, you might get a not found error"),
// so "not found" is retried for tagNotFoundFor.
func (p *Provider) tag(ctx context.Context, id string, tags cloud.Tags, fresh bool) error {
	if len(tags) == 0 {
		return nil
	}
	retry := func(err error) bool { return fresh && cloud.IsNotFound(err) }
	return wait.Retry(ctx, wait.Backoff{Initial: 500 * time.Millisecond, Max: 4 * time.Second}, tagNotFoundFor, retry, func(ctx context.Context) error {
		_, err := p.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: toTags(tags)})
		if err != nil {
			return objErr(kindOf(id), id, "tag", err)
		}
		return nil
	})
}

// tagNotFoundFor is how long CreateTags' "not found" on a new id is retried.
const tagNotFoundFor = 15 * time.Second

// TagSpecification support, learnt from the cloud's answers.
const (
	tagSpecsUnknown int32 = iota
	tagSpecsRefused       // Eucalyptus 4.x: UnknownParameter
)

// createTagged makes a create call with the tags as a TagSpecification of
// resource type rt (AWS tags at creation: no moment without them), unless
// the endpoint is Eucalyptus's (/services/…) or has refused
// TagSpecification before; a refusal (Eucalyptus 4.x's strict binding, at
// a path of its own) is remembered and the call made again without. A
// cloud that ignores TagSpecification (Eucalyptus 3.x) answers without
// the tags; the caller's tagNew sets them then.
func (p *Provider) createTagged(tags cloud.Tags, rt types.ResourceType, call func([]types.TagSpecification) error) error {
	if len(tags) == 0 || p.tagSpecs.Load() == tagSpecsRefused {
		return call(nil)
	}
	err := call([]types.TagSpecification{{ResourceType: rt, Tags: toTags(tags)}})
	if err == nil || !tagSpecRefused(err) {
		return err
	}
	p.tagSpecs.Store(tagSpecsRefused)
	return call(nil)
}

// tagSpecRefused: the cloud does not know TagSpecification.
func tagSpecRefused(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "UnknownParameter":
		return true
	case "InvalidParameter", "InvalidParameterValue", "InvalidParameterCombination":
		return strings.Contains(ae.ErrorMessage(), "TagSpecification")
	}
	return false
}

// FindTagged lists every resource tagged key=value (any value when value
// is ""), each with all its tags.
func (p *Provider) FindTagged(ctx context.Context, key, value string) ([]cloud.Resource, error) {
	filters := []types.Filter{{Name: aws.String("key"), Values: []string{key}}}
	if value != "" {
		filters = append(filters, types.Filter{Name: aws.String("value"), Values: []string{value}})
	}
	found, err := p.describeTags(ctx, filters)
	if err != nil {
		return nil, fmt.Errorf("tag %q: find: %w", key, err)
	}
	byID := map[string]*cloud.Resource{}
	var ids []string
	for _, t := range found {
		id := aws.ToString(t.ResourceId)
		if byID[id] == nil {
			byID[id] = &cloud.Resource{Kind: string(t.ResourceType), ID: id, Tags: cloud.Tags{}}
			ids = append(ids, id)
		}
	}
	// The key filter returned one tag per resource: fetch the rest.
	for start := 0; start < len(ids); start += 200 {
		chunk := ids[start:min(start+200, len(ids))]
		all, err := p.describeTags(ctx, []types.Filter{{Name: aws.String("resource-id"), Values: chunk}})
		if err != nil {
			return nil, fmt.Errorf("tag %q: find: %w", key, err)
		}
		for _, t := range all {
			if r := byID[aws.ToString(t.ResourceId)]; r != nil {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	sort.Strings(ids)
	res := make([]cloud.Resource, 0, len(ids))
	for _, id := range ids {
		res = append(res, *byID[id])
	}
	return res, nil
}

func (p *Provider) describeTags(ctx context.Context, filters []types.Filter) ([]types.TagDescription, error) {
	in := &ec2.DescribeTagsInput{Filters: filters}
	var res []types.TagDescription
	for {
		out, err := p.api.DescribeTags(ctx, in)
		if err != nil {
			return nil, classify(err)
		}
		res = append(res, out.Tags...)
		if aws.ToString(out.NextToken) == "" {
			return res, nil
		}
		in.NextToken = out.NextToken
	}
}

func tagFilters(tags cloud.Tags) []types.Filter {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var fs []types.Filter
	for _, k := range keys {
		fs = append(fs, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	return fs
}

func toTags(tags cloud.Tags) []types.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func tagsFrom(ts []types.Tag) cloud.Tags {
	if len(ts) == 0 {
		return nil
	}
	out := cloud.Tags{}
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

func mergeTags(a, b cloud.Tags) cloud.Tags {
	out := cloud.Tags{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// ---- zones ----

// zone picks the availability zone: the spec's, the configured one, else
// the first zone the cloud lists (Eucalyptus requires one on CreateVolume).
func (p *Provider) zone(ctx context.Context, want string) (string, error) {
	if want != "" {
		return want, nil
	}
	if p.eff.Zone != "" {
		return p.eff.Zone, nil
	}
	p.mu.Lock()
	z := p.zoneSeen
	p.mu.Unlock()
	if z != "" {
		return z, nil
	}
	out, err := p.api.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		return "", fmt.Errorf("availability zones: describe: %w", classify(err))
	}
	for _, az := range out.AvailabilityZones {
		if az.ZoneName != nil && (az.State == "" || az.State == types.AvailabilityZoneStateAvailable) {
			z = *az.ZoneName
			break
		}
	}
	if z == "" {
		return "", fmt.Errorf("availability zones: %w", ErrNoZone)
	}
	p.mu.Lock()
	p.zoneSeen = z
	p.mu.Unlock()
	return z, nil
}

// ErrNoZone: the cloud lists no availability zone available and the
// configuration names none.
var ErrNoZone = errors.New("the cloud lists none available")

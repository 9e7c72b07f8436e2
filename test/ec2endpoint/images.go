package ec2endpoint

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

func (s *Server) registerImage(p *params) (response, *apiError) {
	name := p.get("Name")
	desc := p.get("Description")
	location := p.get("ImageLocation")
	root := p.get("RootDeviceName")
	arch := p.get("Architecture")
	kernelID, ramdiskID := canon(p.get("KernelId")), canon(p.get("RamdiskId"))
	virt := p.get("VirtualizationType")
	bdms, e := p.blockDeviceMappings()
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkLaunchIDs(kernelID, ramdiskID, bdms); e != nil {
		return nil, e
	}
	if name == "" && location != "" {
		name = strings.TrimSuffix(path.Base(location), ".manifest.xml")
	}
	if name == "" {
		return nil, apiErr("MissingParameter", "The request must contain the parameter name")
	}
	if len(name) < 3 || len(name) > 128 {
		return nil, apiErr("InvalidAMIName.Malformed", "AMI name %q must be 3 to 128 characters", name)
	}
	if root == "" {
		root = "/dev/sda1"
	}
	switch arch {
	case "":
		arch = "x86_64"
	case "i386", "x86_64", "arm64":
	default:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter architecture is invalid", arch)
	}
	switch virt {
	case "":
		virt = "hvm"
		if kernelID != "" {
			virt = "paravirtual"
		}
	case "hvm", "paravirtual":
	default:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter virtualizationType is invalid", virt)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, im := range s.images {
		if im.name == name {
			return nil, apiErr("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, im.id)
		}
	}
	if kernelID != "" && (s.images[kernelID] == nil || s.images[kernelID].imageType != "kernel") {
		return nil, apiErr("InvalidAMIID.NotFound", "The kernel id '[%s]' does not exist", kernelID)
	}
	if ramdiskID != "" && (s.images[ramdiskID] == nil || s.images[ramdiskID].imageType != "ramdisk") {
		return nil, apiErr("InvalidAMIID.NotFound", "The ramdisk id '[%s]' does not exist", ramdiskID)
	}
	im := &image{
		name: name, description: desc, location: location, arch: arch,
		kernelID: kernelID, ramdiskID: ramdiskID, rootDevice: root, virt: virt,
		imageType: "machine", state: "pending", created: time.Now(),
	}
	hasRoot := false
	for _, b := range bdms {
		m := imageBDM{device: b.device, virtualName: b.virtualName, noDevice: b.noDevice, size: b.size, deleteOnTermination: true}
		if b.deleteOnTermination != nil {
			m.deleteOnTermination = *b.deleteOnTermination
		}
		switch {
		case b.noDevice:
		case b.virtualName != "":
			if !ephemeralRe.MatchString(b.virtualName) {
				return nil, apiErr("InvalidParameterValue", "Virtual name %q: want ephemeralN", b.virtualName)
			}
		case b.snapshotID != "":
			sn := s.snapshots[canon(b.snapshotID)]
			if sn == nil {
				return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", b.snapshotID)
			}
			if sn.state != "completed" {
				return nil, apiErr("IncorrectState", "Snapshot '%s' is %s, not completed", sn.id, sn.state)
			}
			if b.size > 0 && b.size < sn.size {
				return nil, apiErr("InvalidBlockDeviceMapping", "Volume size %d GiB of %s is smaller than snapshot %s (%d GiB)", b.size, b.device, sn.id, sn.size)
			}
			m.snapshotID = sn.id
			if m.size == 0 {
				m.size = sn.size
			}
			if b.device == root {
				hasRoot = true
			}
		default:
			return nil, apiErr("InvalidBlockDeviceMapping", "Block device mapping %s names no snapshot, virtual name or NoDevice", b.device)
		}
		im.bdm = append(im.bdm, m)
	}
	switch {
	case location != "" && hasRoot:
		return nil, apiErr("InvalidParameterCombination", "An image has either an ImageLocation (instance store) or a root snapshot (EBS), not both")
	case location != "":
		im.rootType = "instance-store"
		if s.opts.Node != nil {
			im.path = s.opts.Node.Bundles[location]
		}
	case hasRoot:
		im.rootType = "ebs"
	default:
		return nil, apiErr("InvalidBlockDeviceMapping", "The root device %s must map a snapshot (EBS image), or give an ImageLocation", root)
	}
	im.id = s.newID("emi")
	s.images[im.id] = im
	begin := time.Now()
	s.async(func(ctx context.Context) {
		if !sleepUntil(ctx, begin.Add(s.delays.ImagePending)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if im.state == "pending" {
			im.state = "available"
		}
	})
	return &registerImageResponse{ImageID: im.id}, nil
}

// AddKernel registers a kernel (an EKI) whose file is at path on this host
// and returns its ID. EC2 registers kernels from S3 bundles, which this
// endpoint does not have; tests add them here. In node mode path must exist.
func (s *Server) AddKernel(path string) (string, error) { return s.addBootImage("kernel", "eki", path) }

// AddRamdisk registers a ramdisk (an ERI) the same way.
func (s *Server) AddRamdisk(path string) (string, error) {
	return s.addBootImage("ramdisk", "eri", path)
}

func (s *Server) addBootImage(kind, prefix, p string) (string, error) {
	if s.opts.Node != nil {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("%s %q: not a regular file: %v", kind, p, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im := &image{
		name: kind + "-" + path.Base(p), location: "ec2endpoint/" + path.Base(p) + ".manifest.xml",
		arch: "x86_64", imageType: kind, state: "available", rootType: "instance-store",
		virt: "paravirtual", created: time.Now(), path: p,
	}
	im.id = s.newID(prefix)
	im.name += "-" + strings.ToLower(im.id)
	s.images[im.id] = im
	return im.id, nil
}

func (s *Server) xmlImage(im *image) xmlImage {
	x := xmlImage{
		ImageID: im.id, ImageLocation: im.location, ImageState: im.state, ImageOwnerID: s.opts.OwnerID,
		CreationDate: ts(im.created), Architecture: im.arch, ImageType: im.imageType,
		KernelID: im.kernelID, RamdiskID: im.ramdiskID, Name: im.name, Description: im.description,
		RootDeviceType: im.rootType, RootDeviceName: im.rootDevice, VirtualizationType: im.virt,
		Hypervisor: "kvm", Tags: s.xmlTags(im.id),
	}
	if im.imageType != "machine" {
		x.RootDeviceName = ""
	}
	for _, b := range im.bdm {
		m := xmlImageBDM{DeviceName: b.device, VirtualName: b.virtualName}
		switch {
		case b.noDevice:
			empty := ""
			m.NoDevice = &empty
		case b.snapshotID != "":
			m.Ebs = &xmlEbs{SnapshotID: b.snapshotID, VolumeSize: b.size, DeleteOnTermination: b.deleteOnTermination, VolumeType: "standard"}
		}
		x.BlockDeviceMapping = append(x.BlockDeviceMapping, m)
	}
	return x
}

func (s *Server) describeImages(p *params) (response, *apiError) {
	ids := p.list("ImageId")
	owners := p.list("Owner")
	p.list("ExecutableBy")
	fs := p.filters()
	if e := checkFilters(fs, (&image{}).fields); e != nil {
		return nil, e
	}
	p.get("IncludeDeprecated")
	p.get("IncludeDisabled")
	p.get("MaxResults")
	p.get("NextToken")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("image", ids...); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ims []*image
	if len(ids) > 0 {
		for _, id := range ids {
			im := s.images[canon(id)]
			if im == nil || time.Since(im.created) < s.delays.Invisible {
				return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
			}
			ims = append(ims, im)
		}
	} else {
		for _, im := range s.images {
			ims = append(ims, im)
		}
		sort.Slice(ims, func(i, j int) bool { return ims[i].id < ims[j].id })
	}
	resp := &describeImagesResponse{}
	if !s.owned(owners) {
		return resp, nil
	}
	for _, im := range ims {
		ok, e := s.matches(im.id, fs, im.fields)
		if e != nil {
			return nil, e
		}
		if ok {
			resp.Images = append(resp.Images, s.xmlImage(im))
		}
	}
	return resp, nil
}

func (s *Server) deregisterImage(p *params) (response, *apiError) {
	id, e := p.required("ImageId")
	if e != nil {
		return nil, e
	}
	p.get("DeleteAssociatedSnapshots")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("image", id); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.images[canon(id)]
	if im == nil {
		return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	}
	delete(s.images, im.id)
	delete(s.tags, im.id)
	return &returnResponse{Return: true}, nil
}

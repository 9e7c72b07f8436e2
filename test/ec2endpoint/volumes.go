package ec2endpoint

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"time"
)

// maxVolumeGiB bounds volume sizes (EC2 standard volumes: 1 TiB).
const maxVolumeGiB = 1024

func (s *Server) createVolume(p *params) (response, *apiError) {
	zone, e := p.required("AvailabilityZone")
	if e != nil {
		return nil, e
	}
	size, e := p.int("Size", 0)
	if e != nil {
		return nil, e
	}
	snapID := p.get("SnapshotId")
	vtype := p.get("VolumeType")
	if vtype == "" {
		vtype = "standard"
	}
	p.get("Encrypted")
	p.get("Iops")
	p.get("Throughput")
	p.get("MultiAttachEnabled")
	token := ""
	if s.opts.Dialect.volumeToken() {
		token = p.get("ClientToken")
	}
	specs, e := s.tagSpecs(p, "volume")
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("snapshot", snapID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, e := s.idempotent("CreateVolume", token, p); e != nil {
		return nil, e
	} else if v := s.volumes[id]; v != nil {
		return s.createVolumeResp(v), nil
	}
	if !contains(s.opts.Zones, zone) {
		return nil, apiErr("InvalidParameterValue", "Invalid availability zone: [%s]", zone)
	}
	var sn *snapshot
	if snapID != "" {
		sn = s.snapshots[canon(snapID)]
		if sn == nil {
			return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", snapID)
		}
		if sn.state != "completed" {
			return nil, apiErr("IncorrectState", "Snapshot '%s' is %s, not completed", sn.id, sn.state)
		}
		if size == 0 {
			size = sn.size
		}
		if size < sn.size {
			return nil, apiErr("InvalidParameterValue", "Volume of %d GiB is smaller than snapshot '%s' (%d GiB)", size, sn.id, sn.size)
		}
	} else if size == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter size or snapshotId")
	}
	if size < 1 || size > maxVolumeGiB {
		return nil, apiErr("InvalidParameterValue", "Volume size %d GiB: want 1 to %d", size, maxVolumeGiB)
	}
	v := &volume{id: s.newID("vol"), zone: zone, vtype: vtype, size: size, state: "creating", created: time.Now()}
	from := ""
	if sn != nil {
		v.snapshotID, from = sn.id, sn.path
	}
	s.volumes[v.id] = v
	s.setTags(v.id, specs["volume"])
	s.remember("CreateVolume", token, p, v.id)
	begin := time.Now()
	s.async(func(ctx context.Context) {
		path, err := s.back.newVolume(ctx, v.id, size, from)
		if !sleepUntil(ctx, begin.Add(s.delays.VolumeCreating)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if v.state != "creating" {
			return
		}
		if err != nil {
			s.log.Info("volume create failed", "volume", v.id, "err", err)
			v.state = "error"
			return
		}
		v.path, v.state = path, "available"
	})
	return s.createVolumeResp(v), nil
}

func (s *Server) createVolumeResp(v *volume) *createVolumeResponse {
	return &createVolumeResponse{
		VolumeID: v.id, Size: v.size, SnapshotID: v.snapshotID, AvailabilityZone: v.zone,
		Status: v.state, CreateTime: ts(v.created), VolumeType: v.vtype, Tags: s.xmlTags(v.id),
	}
}

func (s *Server) xmlVolume(v *volume) xmlVolume {
	x := xmlVolume{
		VolumeID: v.id, Size: v.size, SnapshotID: v.snapshotID, AvailabilityZone: v.zone,
		Status: v.state, CreateTime: ts(v.created), VolumeType: v.vtype, Tags: s.xmlTags(v.id),
	}
	if v.att != nil {
		x.Attachments = []xmlAttachment{xmlAttach(v.att)}
	}
	return x
}

func xmlAttach(a *attachment) xmlAttachment {
	return xmlAttachment{VolumeID: a.volumeID, InstanceID: a.instanceID, Device: a.device, Status: a.state, AttachTime: ts(a.at), DeleteOnTermination: a.deleteOnTermination}
}

func (s *Server) describeVolumes(p *params) (response, *apiError) {
	ids := p.list("VolumeId")
	fs := p.filters()
	if e := checkFilters(fs, (&volume{}).fields); e != nil {
		return nil, e
	}
	p.get("MaxResults")
	p.get("NextToken")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("volume", ids...); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var vols []*volume
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			if v := s.volumes[canon(id)]; v != nil {
				vols = append(vols, v)
			} else {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return nil, apiErr("InvalidVolume.NotFound", "The volume '%s' does not exist.", missing[0])
		}
	} else {
		for _, v := range s.volumes {
			vols = append(vols, v)
		}
		sort.Slice(vols, func(i, j int) bool { return vols[i].id < vols[j].id })
	}
	resp := &describeVolumesResponse{}
	for _, v := range vols {
		ok, e := s.matches(v.id, fs, v.fields)
		if e != nil {
			return nil, e
		}
		if ok {
			resp.Volumes = append(resp.Volumes, s.xmlVolume(v))
		}
	}
	return resp, nil
}

// deviceRe is what AttachVolume accepts as a device name: EC2's Linux
// names (/dev/sd[a-z], /dev/sd[a-z][1-15], /dev/xvd[a-z], /dev/xvd[b-c][a-z];
// "Device names on Linux instances"), /dev/sda1 included (a root volume
// attached back to a stopped instance), and Eucalyptus's /dev/vd[a-z].
var deviceRe = regexp.MustCompile(`^/dev/(sd[a-z]([1-9]|1[0-5])?|xvd[a-z]|xvd[b-c][a-z]|vd[a-z])$`)

func (s *Server) attachVolume(p *params) (response, *apiError) {
	volID, e := p.required("VolumeId")
	if e != nil {
		return nil, e
	}
	instID, e := p.required("InstanceId")
	if e != nil {
		return nil, e
	}
	device, e := p.required("Device")
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("volume", volID); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", instID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.volumes[canon(volID)]
	if v == nil {
		return nil, apiErr("InvalidVolume.NotFound", "The volume '%s' does not exist.", volID)
	}
	inst := s.instances[canon(instID)]
	if inst == nil {
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", instID)
	}
	if !deviceRe.MatchString(device) {
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter device is invalid. %s is not a valid EBS device name.", device, device)
	}
	switch {
	case v.att != nil:
		return nil, apiErr("VolumeInUse", "%s is already attached to an instance", v.id)
	case v.state != "available":
		return nil, apiErr("IncorrectState", "Volume '%s' is in the '%s' state.", v.id, v.state)
	case inst.state != "running" && inst.state != "stopped" && inst.state != "pending":
		return nil, apiErr("IncorrectInstanceState", "Instance '%s' is not 'running'.", inst.id)
	case inst.zone != v.zone:
		return nil, apiErr("InvalidVolume.ZoneMismatch", "The volume '%s' is not in the same availability zone as instance '%s'", v.id, inst.id)
	}
	for _, a := range inst.devices {
		if a.device == device || sameSlot(a.device, device) {
			return nil, apiErr("InvalidParameterValue", "Attachment point %s is already in use", device)
		}
	}
	a := &attachment{volumeID: v.id, instanceID: inst.id, device: device, state: "attaching", at: time.Now()}
	if inst.rootType == "ebs" && device == inst.rootDevice {
		if inst.state != "stopped" {
			return nil, apiErr("IncorrectInstanceState", "Instance '%s' must be stopped to attach a volume at its root device %s.", inst.id, device)
		}
		a.root = true // a root volume put back (EC2: only while stopped)
	}
	v.att, v.state = a, "in-use"
	if a.root {
		inst.devices = append([]*attachment{a}, inst.devices...)
	} else {
		inst.devices = append(inst.devices, a)
	}
	if inst.state == "running" {
		s.plug(inst, a)
	} else {
		// Pending: the launch plugs it; stopped: the next start does.
		s.settle(a, "attaching", "attached", s.delays.Attaching)
	}
	return attachResp(a), nil
}

// sameSlot reports whether two device names land on the same guest disk:
// /dev/sdf, /dev/xvdf and /dev/vdf all name disk "f"; /dev/sda1 is disk "a".
func sameSlot(a, b string) bool { return diskOf(a) == diskOf(b) }

// diskOf is a device name's disk letters: /dev/sda1 → "a", /dev/xvdba → "ba".
func diskOf(dev string) string {
	d := strings.TrimPrefix(dev, "/dev/")
	for _, p := range []string{"xvd", "sd", "vd", "hd"} {
		if rest, ok := strings.CutPrefix(d, p); ok {
			return strings.TrimRight(rest, "0123456789")
		}
	}
	return d
}

// plug hot-plugs an attachment into a running instance and moves it to
// attached (s.mu held). A backend failure drops the attachment and makes
// the volume available again.
func (s *Server) plug(inst *instance, a *attachment) {
	v := s.volumes[a.volumeID]
	path := ""
	if v != nil {
		path = v.path
	}
	ep := inst.epoch
	begin := time.Now()
	s.async(func(ctx context.Context) {
		err := s.back.attach(ctx, inst.id, path, a.device)
		if !sleepUntil(ctx, begin.Add(s.delays.Attaching)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.log.Info("attach failed", "volume", a.volumeID, "instance", inst.id, "err", err)
			s.dropAttachment(inst, a)
			return
		}
		if inst.epoch == ep {
			a.plugged = true
		}
		if a.state == "attaching" {
			a.state = "attached"
		}
	})
}

// settle moves an attachment from one state to the next after d (s.mu held).
func (s *Server) settle(a *attachment, from, to string, d time.Duration) {
	begin := time.Now()
	s.async(func(ctx context.Context) {
		if !sleepUntil(ctx, begin.Add(d)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if a.state == from {
			a.state = to
		}
	})
}

// dropAttachment removes an attachment from its instance and frees the
// volume (s.mu held).
func (s *Server) dropAttachment(inst *instance, a *attachment) {
	for i, x := range inst.devices {
		if x == a {
			inst.devices = append(inst.devices[:i:i], inst.devices[i+1:]...)
			break
		}
	}
	if v := s.volumes[a.volumeID]; v != nil && v.att == a {
		v.att, v.state = nil, "available"
	}
}

func (s *Server) detachVolume(p *params) (response, *apiError) {
	volID, e := p.required("VolumeId")
	if e != nil {
		return nil, e
	}
	instID := p.get("InstanceId")
	device := p.get("Device")
	p.get("Force")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("volume", volID); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", instID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.volumes[canon(volID)]
	if v == nil {
		return nil, apiErr("InvalidVolume.NotFound", "The volume '%s' does not exist.", volID)
	}
	if v.att == nil {
		return nil, apiErr("IncorrectState", "Volume '%s' is in the '%s' state.", v.id, v.state)
	}
	a := v.att
	if instID != "" && canon(instID) != a.instanceID || device != "" && device != a.device {
		return nil, apiErr("InvalidAttachment.NotFound", "Volume '%s' is not attached to instance '%s' at '%s'", v.id, instID, device)
	}
	if a.state == "detaching" {
		return attachResp(a), nil
	}
	inst := s.instances[a.instanceID]
	if a.root && inst != nil && inst.state != "stopped" {
		return nil, apiErr("OperationNotPermitted", "Unable to detach root volume '%s' from instance '%s'", v.id, inst.id)
	}
	a.state = "detaching"
	unplug := inst != nil && a.plugged
	path := v.path
	begin := time.Now()
	s.async(func(ctx context.Context) {
		var err error
		if unplug {
			err = s.back.detach(ctx, inst.id, path, a.device)
		}
		if !sleepUntil(ctx, begin.Add(s.delays.Detaching)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.log.Info("detach failed", "volume", a.volumeID, "err", err)
			a.state = "attached" // still in the guest: it stays attached
			return
		}
		if a.state != "detaching" {
			return
		}
		if inst != nil {
			s.dropAttachment(inst, a)
		} else if v.att == a {
			v.att, v.state = nil, "available"
		}
	})
	return attachResp(a), nil
}

func (s *Server) deleteVolume(p *params) (response, *apiError) {
	volID, e := p.required("VolumeId")
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("volume", volID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.volumes[canon(volID)]
	if v == nil {
		return nil, apiErr("InvalidVolume.NotFound", "The volume '%s' does not exist.", volID)
	}
	if v.att != nil {
		return nil, apiErr("VolumeInUse", "Volume %s is currently attached to %s", v.id, v.att.instanceID)
	}
	if v.state == "deleting" {
		return &returnResponse{Return: true}, nil
	}
	if v.state != "available" && v.state != "error" {
		return nil, apiErr("IncorrectState", "Volume '%s' is in the '%s' state.", v.id, v.state)
	}
	v.state = "deleting"
	path := v.path
	begin := time.Now()
	s.async(func(ctx context.Context) {
		if path != "" {
			if err := s.back.removeVolume(path); err != nil {
				s.log.Info("volume delete", "volume", v.id, "err", err)
			}
		}
		if !sleepUntil(ctx, begin.Add(s.delays.VolumeDeleting)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.volumes, v.id)
		delete(s.tags, v.id)
	})
	return &returnResponse{Return: true}, nil
}

package ec2endpoint

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/virt"
)

// MaxUserData is EC2's user-data limit, before base64.
const MaxUserData = 16384

// consoleLimit is how much console output GetConsoleOutput returns (EC2:
// the last 64 KiB).
const consoleLimit = 64 << 10

// shutdownReason is EC2's state reason after a guest power-off.
var shutdownReason = &xmlReason{Code: "Client.InstanceInitiatedShutdown", Message: "Client.InstanceInitiatedShutdown: Instance initiated shutdown"}

var ephemeralRe = regexp.MustCompile(`^ephemeral\d+$`)

func (s *Server) runInstances(p *params) (response, *apiError) {
	imageID, e := p.required("ImageId")
	if e != nil {
		return nil, e
	}
	minC, e := p.int("MinCount", 1)
	if e != nil {
		return nil, e
	}
	maxC, e := p.int("MaxCount", 1)
	if e != nil {
		return nil, e
	}
	if minC < 1 || maxC < minC || maxC > 20 {
		return nil, apiErr("InvalidParameterValue", "MinCount %d and MaxCount %d: want 1 <= MinCount <= MaxCount <= 20", minC, maxC)
	}
	itype := p.get("InstanceType")
	if itype == "" {
		itype = "m1.small"
	}
	kernelID, ramdiskID := canon(p.get("KernelId")), canon(p.get("RamdiskId"))
	var ud []byte
	if enc := p.get("UserData"); enc != "" {
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, apiErr("InvalidParameterValue", "Invalid BASE64 encoding of user data")
		}
		if len(b) > MaxUserData {
			return nil, apiErr("InvalidParameterValue", "User data is limited to %d bytes", MaxUserData)
		}
		ud = b
	}
	keyName := p.get("KeyName")
	zone := p.get("Placement.AvailabilityZone")
	shutdown := p.get("InstanceInitiatedShutdownBehavior")
	token := p.get("ClientToken")
	bdms, e := p.blockDeviceMappings()
	if e != nil {
		return nil, e
	}
	p.list("SecurityGroup")
	p.list("SecurityGroupId")
	p.get("Monitoring.Enabled")
	p.get("DisableApiTermination")
	specs, e := s.tagSpecs(p, "instance", "volume")
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("image", imageID); e != nil {
		return nil, e
	}
	if e := checkLaunchIDs(kernelID, ramdiskID, bdms); e != nil {
		return nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if rid, e := s.idempotent("RunInstances", token, p); e != nil {
		return nil, e
	} else if rid != "" {
		return s.reservationResp(rid), nil
	}
	if zone == "" {
		zone = s.opts.Zones[0]
	} else if !contains(s.opts.Zones, zone) {
		return nil, apiErr("InvalidParameterValue", "Invalid availability zone: [%s]", zone)
	}
	img := s.images[canon(imageID)]
	if img == nil || img.imageType != "machine" {
		return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", imageID)
	}
	if img.state != "available" {
		return nil, apiErr("IncorrectState", "Image '%s' is %s, not available", img.id, img.state)
	}
	if kernelID == "" {
		kernelID = img.kernelID
	}
	if ramdiskID == "" {
		ramdiskID = img.ramdiskID
	}
	var kpath, rpath string
	if kernelID != "" {
		k := s.images[kernelID]
		if k == nil || k.imageType != "kernel" {
			return nil, apiErr("InvalidAMIID.NotFound", "The kernel id '[%s]' does not exist", kernelID)
		}
		kpath = k.path
	}
	if ramdiskID != "" {
		r := s.images[ramdiskID]
		if r == nil || r.imageType != "ramdisk" {
			return nil, apiErr("InvalidAMIID.NotFound", "The ramdisk id '[%s]' does not exist", ramdiskID)
		}
		rpath = r.path
	}
	if s.opts.Node != nil && (kernelID == "") != (ramdiskID == "") {
		return nil, apiErr("InvalidParameterCombination", "this endpoint boots a kernel only with a ramdisk: give both or neither (kernel %q, ramdisk %q)", kernelID, ramdiskID)
	}
	switch shutdown {
	case "":
		shutdown = "stop"
		if img.rootType != "ebs" {
			shutdown = "terminate"
		}
	case "stop":
		if img.rootType != "ebs" {
			return nil, apiErr("InvalidParameterCombination", "The instance-initiated shutdown behavior 'stop' needs an EBS root device; image %s is %s", img.id, img.rootType)
		}
	case "terminate":
	default:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter InstanceInitiatedShutdownBehavior is invalid: want stop or terminate", shutdown)
	}

	// The block devices: the image's mappings, then the request's, which
	// override them device by device.
	type dev struct {
		snap       *snapshot
		size       int
		delete     bool
		suppressed bool
	}
	devs := map[string]*dev{}
	var order []string
	for _, b := range img.bdm {
		if b.snapshotID == "" {
			continue
		}
		sn := s.snapshots[b.snapshotID]
		if sn == nil {
			return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' of image %s does not exist", b.snapshotID, img.id)
		}
		devs[b.device] = &dev{snap: sn, size: max(b.size, sn.size), delete: b.deleteOnTermination}
		order = append(order, b.device)
	}
	for _, b := range bdms {
		switch {
		case b.noDevice:
			if d := devs[b.device]; d != nil {
				d.suppressed = true
			}
			continue
		case b.virtualName != "":
			if !ephemeralRe.MatchString(b.virtualName) {
				return nil, apiErr("InvalidParameterValue", "Virtual name %q: want ephemeralN", b.virtualName)
			}
			continue // instance-store disks are not modelled
		}
		d := devs[b.device]
		if b.snapshotID == "" && d == nil && b.size > 0 {
			// A new empty volume (Ebs.VolumeSize alone).
			d = &dev{delete: true}
			devs[b.device] = d
			order = append(order, b.device)
		}
		if b.snapshotID != "" {
			sn := s.snapshots[canon(b.snapshotID)]
			if sn == nil {
				return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", b.snapshotID)
			}
			if sn.state != "completed" {
				return nil, apiErr("IncorrectState", "Snapshot '%s' is %s, not completed", sn.id, sn.state)
			}
			if d == nil {
				d = &dev{delete: true}
				devs[b.device] = d
				order = append(order, b.device)
			}
			d.snap = sn
		}
		if d == nil {
			return nil, apiErr("InvalidParameterValue", "Block device mapping %s names neither a snapshot nor a device of the image", b.device)
		}
		if b.size > 0 {
			if d.snap != nil && b.size < d.snap.size {
				return nil, apiErr("InvalidParameterValue", "Volume size %d GiB of %s is smaller than snapshot %s (%d GiB)", b.size, b.device, d.snap.id, d.snap.size)
			}
			d.size = b.size
		}
		if b.deleteOnTermination != nil {
			d.delete = *b.deleteOnTermination
		}
		if d.size == 0 && d.snap != nil {
			d.size = d.snap.size
		}
		if d.size > maxVolumeGiB {
			return nil, apiErr("InvalidParameterValue", "Volume size %d GiB of %s: want 1 to %d", d.size, b.device, maxVolumeGiB)
		}
	}
	if img.rootType == "ebs" && (devs[img.rootDevice] == nil || devs[img.rootDevice].suppressed) {
		return nil, apiErr("InvalidBlockDeviceMapping", "The root device %s of image %s cannot be suppressed", img.rootDevice, img.id)
	}

	res := runInstancesResponse{ReservationID: s.newID("r"), OwnerID: s.opts.OwnerID, Groups: defaultGroups}
	now := time.Now()
	for n := 0; n < maxC; n++ {
		inst := &instance{
			id: s.newID("i"), reservation: res.ReservationID,
			imageID: img.id, kernelID: kernelID, ramdiskID: ramdiskID,
			itype: itype, keyName: keyName, zone: zone, state: "pending",
			userData: ud, shutdown: shutdown, launched: now, created: now,
			rootType: img.rootType, rootDevice: img.rootDevice, arch: img.arch, virt: img.virt,
			kernelPath: kpath, ramdiskPath: rpath, rootSize: 1,
		}
		inst.privateIP, inst.publicIP = s.addresses()
		if img.rootType != "ebs" {
			inst.rootFrom = img.path
		}
		for _, devName := range order {
			d := devs[devName]
			if d.suppressed {
				continue
			}
			v := &volume{id: s.newID("vol"), zone: zone, vtype: "standard", size: d.size, state: "in-use", created: now}
			if d.snap != nil {
				v.snapshotID, v.fromPath = d.snap.id, d.snap.path
			}
			a := &attachment{volumeID: v.id, instanceID: inst.id, device: devName, state: "attaching", at: now, deleteOnTermination: d.delete, root: devName == img.rootDevice && img.rootType == "ebs"}
			v.att = a
			if a.root {
				inst.rootFrom, inst.rootSize = v.fromPath, d.size
				inst.devices = append([]*attachment{a}, inst.devices...)
			} else {
				inst.devices = append(inst.devices, a)
			}
			s.volumes[v.id] = v
			s.setTags(v.id, specs["volume"])
		}
		s.instances[inst.id] = inst
		s.setTags(inst.id, specs["instance"])
		s.consoleLine(inst, "pending")
		s.startLaunch(inst)
		res.Instances = append(res.Instances, s.xmlInstance(inst))
	}
	s.remember("RunInstances", token, p, res.ReservationID)
	return &res, nil
}

// reservationResp answers a RunInstances retried with the same
// ClientToken: the reservation it made the first time (s.mu held).
func (s *Server) reservationResp(rid string) response {
	res := runInstancesResponse{ReservationID: rid, OwnerID: s.opts.OwnerID, Groups: defaultGroups}
	for _, inst := range s.sortedInstances() {
		if inst.reservation == rid {
			res.Instances = append(res.Instances, s.xmlInstance(inst))
		}
	}
	return &res
}

func (s *Server) addresses() (private, public string) {
	if s.opts.Node != nil {
		return "10.0.2.15", "" // SLIRP: every guest has the same address; the host is 10.0.2.2
	}
	s.nextIP++
	return fmt.Sprintf("10.0.%d.%d", s.nextIP/250, s.nextIP%250+2), fmt.Sprintf("192.0.2.%d", s.nextIP%250+2)
}

// consoleLine appends a line to a plain-mode instance's console.
func (s *Server) consoleLine(inst *instance, format string, args ...any) {
	if s.opts.Node != nil {
		return
	}
	line := fmt.Sprintf("%s ec2endpoint: %s ", time.Now().UTC().Format(time.RFC3339), inst.id) + fmt.Sprintf(format, args...) + "\n"
	inst.console = append(inst.console, line...)
}

// startLaunch starts the instance's launch (s.mu held): the backend's
// work, at least Delays.InstancePending, then running, or terminated with
// the launch error as the state reason.
func (s *Server) startLaunch(inst *instance) {
	inst.epoch++
	ep := inst.epoch
	spec := launchSpec{
		id: inst.id, rootFrom: inst.rootFrom, rootSizeGiB: inst.rootSize,
		kernel: inst.kernelPath, ramdisk: inst.ramdiskPath, userData: inst.userData,
	}
	type pending struct {
		a    *attachment
		v    *volume
		path string // "" until the file exists
		size int
		from string
	}
	var plugs []pending
	for _, a := range inst.devices {
		v := s.volumes[a.volumeID]
		if v == nil {
			continue
		}
		if a.root {
			spec.rootPath = v.path
			continue
		}
		plugs = append(plugs, pending{a: a, v: v, path: v.path, size: v.size, from: v.fromPath})
	}
	begin := time.Now()
	s.async(func(ctx context.Context) {
		// Volumes made from snapshots at launch need their files first.
		var err error
		for _, pl := range plugs {
			path := pl.path
			if path == "" {
				if path, err = s.back.newVolume(ctx, pl.v.id, pl.size, pl.from); err != nil {
					err = fmt.Errorf("volume %s: %w", pl.v.id, err)
					break
				}
				s.mu.Lock()
				pl.v.path, pl.v.fromPath = path, ""
				s.mu.Unlock()
			}
			spec.attach = append(spec.attach, attachSpec{path: path, device: pl.a.device})
		}
		var res launchResult
		if err == nil {
			res, err = s.back.launch(ctx, spec)
		}
		if !sleepUntil(ctx, begin.Add(s.delays.InstancePending)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if inst.epoch != ep || inst.state != "pending" {
			if err == nil {
				// Stopped or terminated while booting: the domain is ours to remove.
				s.async(func(ctx context.Context) { s.back.halt(ctx, inst.id) })
			}
			return
		}
		if err != nil {
			s.log.Info("launch failed", "instance", inst.id, "err", err)
			s.beginTerminate(inst, &xmlReason{Code: "Server.InternalError", Message: "Server.InternalError: " + oneLine(err.Error())}, "launch failed")
			return
		}
		inst.state = "running"
		inst.transition = ""
		if res.privateIP != "" {
			inst.privateIP = res.privateIP
		}
		for _, a := range inst.devices {
			v := s.volumes[a.volumeID]
			if a.root && v != nil && res.rootPath != "" {
				v.path = res.rootPath
			}
			a.plugged = a.root || containsAttach(spec.attach, a.device)
			if a.state == "attaching" {
				a.state = "attached"
			}
		}
		s.consoleLine(inst, "running")
		s.log.Info("instance running", "instance", inst.id)
		// Volumes attached while the instance was pending go in now.
		for _, a := range inst.devices {
			if !a.plugged && (a.state == "attached" || a.state == "attaching") {
				s.plug(inst, a)
			}
		}
	})
}

func containsAttach(as []attachSpec, device string) bool {
	for _, a := range as {
		if a.device == device {
			return true
		}
	}
	return false
}

// beginTerminate moves an instance to shutting-down and, asynchronously,
// to terminated: domain halted, pre-clean hooks run, files removed, volumes
// deleted (DeleteOnTermination) or released. s.mu held.
func (s *Server) beginTerminate(inst *instance, reason *xmlReason, why string) {
	if inst.state == "shutting-down" || inst.state == "terminated" {
		return
	}
	inst.state = "shutting-down"
	inst.epoch++
	if reason != nil {
		inst.reason = reason
	}
	inst.transition = fmt.Sprintf("%s (%s)", why, time.Now().UTC().Format("2006-01-02 15:04:05 MST"))
	s.consoleLine(inst, "shutting-down: %s", why)
	var keep *volume
	for _, a := range inst.devices {
		if a.root && !a.deleteOnTermination {
			keep = s.volumes[a.volumeID]
		}
	}
	keepID, keepPath := "", ""
	if keep != nil {
		keepID, keepPath = keep.id, keep.path
	}
	begin := time.Now()
	s.async(func(ctx context.Context) {
		if err := s.back.halt(ctx, inst.id); err != nil {
			s.log.Info("halt", "instance", inst.id, "err", err)
		}
		kept := ""
		if keepPath != "" {
			p, err := s.back.keepVolume(keepID, keepPath)
			if err != nil {
				s.log.Info("keep root volume", "volume", keepID, "err", err)
			}
			kept = p
		}
		console, err := s.back.clean(ctx, inst.id)
		if err != nil {
			s.log.Info("clean", "instance", inst.id, "err", err)
		}
		if !sleepUntil(ctx, begin.Add(s.delays.InstanceShuttingDown)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		inst.state = "terminated"
		if s.opts.Node != nil {
			inst.console, inst.cleaned = console, true
		}
		s.consoleLine(inst, "terminated")
		var remove []string
		for _, a := range inst.devices {
			v := s.volumes[a.volumeID]
			if v == nil {
				continue
			}
			if a.deleteOnTermination {
				delete(s.volumes, v.id)
				delete(s.tags, v.id)
				if !a.root && v.path != "" {
					remove = append(remove, v.path)
				}
				continue
			}
			v.att, v.state = nil, "available"
			if a.root {
				v.path = kept
			}
		}
		inst.devices = nil
		s.log.Info("instance terminated", "instance", inst.id)
		s.async(func(ctx context.Context) {
			for _, p := range remove {
				s.back.removeVolume(p)
			}
			if !sleepUntil(ctx, time.Now().Add(s.delays.TerminatedRetention)) {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.instances, inst.id)
			delete(s.tags, inst.id)
		})
	})
}

// beginStop moves an EBS-backed instance to stopping, then stopped. s.mu held.
func (s *Server) beginStop(inst *instance, reason *xmlReason, why string) {
	inst.state = "stopping"
	inst.epoch++
	ep := inst.epoch
	if reason != nil {
		inst.reason = reason
	}
	inst.transition = fmt.Sprintf("%s (%s)", why, time.Now().UTC().Format("2006-01-02 15:04:05 MST"))
	s.consoleLine(inst, "stopping: %s", why)
	begin := time.Now()
	s.async(func(ctx context.Context) {
		if err := s.back.halt(ctx, inst.id); err != nil {
			s.log.Info("halt", "instance", inst.id, "err", err)
		}
		if !sleepUntil(ctx, begin.Add(s.delays.InstanceStopping)) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if inst.epoch != ep {
			return
		}
		inst.state = "stopped"
		for _, a := range inst.devices {
			a.plugged = false
		}
		s.consoleLine(inst, "stopped")
		s.log.Info("instance stopped", "instance", inst.id)
	})
}

// guestPoweredOff is what happens when the guest powers itself off: stop
// (EBS root, behaviour stop) or terminate, with EC2's state reason.
func (s *Server) guestPoweredOff(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.instances[id]
	if inst == nil || inst.state != "running" {
		return
	}
	s.log.Info("guest powered off", "instance", id, "behaviour", inst.shutdown)
	if inst.rootType == "ebs" && inst.shutdown == "stop" {
		s.beginStop(inst, shutdownReason, "Client.InstanceInitiatedShutdown")
		return
	}
	s.beginTerminate(inst, shutdownReason, "Client.InstanceInitiatedShutdown")
}

// PowerOff plays a guest-initiated power-off of a running instance (what
// an installer's poweroff does): it stops (EBS root, shutdown behaviour
// stop) or terminates, with the state reason Client.InstanceInitiatedShutdown.
// In node mode a real guest powering off does the same by itself.
func (s *Server) PowerOff(id string) error {
	s.mu.Lock()
	inst := s.instances[canon(id)]
	state := ""
	if inst != nil {
		state = inst.state
	}
	s.mu.Unlock()
	if inst == nil {
		return fmt.Errorf("instance %q: power off: not found", id)
	}
	if state != "running" {
		return fmt.Errorf("instance %q: power off: it is %s, not running", id, state)
	}
	if n, ok := s.back.(*node); ok {
		// Pull the plug; the monitor sees the domain go, as after a real
		// power-off (halt would tell it the endpoint did it).
		if err := n.conn.Destroy(s.ctx, inst.id); err != nil && !virt.IsNotFound(err) {
			return fmt.Errorf("instance %q: power off: %w", id, err)
		}
		return nil
	}
	s.guestPoweredOff(inst.id)
	return nil
}

// AppendConsole adds text to a plain-mode instance's console output (what
// GetConsoleOutput returns), as a guest writing to its serial port would.
func (s *Server) AppendConsole(id string, text []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.instances[canon(id)]
	if inst == nil {
		return fmt.Errorf("instance %q: console: not found", id)
	}
	if s.opts.Node != nil {
		return fmt.Errorf("instance %q: console: node mode reads the guest's serial console", id)
	}
	inst.console = append(inst.console, text...)
	return nil
}

func (s *Server) lookupInstances(ids []string) ([]*instance, *apiError) {
	var out []*instance
	var missing []string
	for _, id := range ids {
		inst := s.instances[canon(id)]
		if inst == nil {
			missing = append(missing, id)
			continue
		}
		out = append(out, inst)
	}
	if len(missing) > 0 {
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", strings.Join(missing, ", "))
	}
	return out, nil
}

func (s *Server) sortedInstances() []*instance {
	out := make([]*instance, 0, len(s.instances))
	for _, inst := range s.instances {
		out = append(out, inst)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].launched.Equal(out[j].launched) {
			return out[i].launched.Before(out[j].launched)
		}
		return out[i].id < out[j].id
	})
	return out
}

func (s *Server) describeInstances(p *params) (response, *apiError) {
	ids := p.list("InstanceId")
	fs := p.filters()
	if e := checkFilters(fs, (&instance{}).fields); e != nil {
		return nil, e
	}
	p.get("MaxResults")
	p.get("NextToken")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", ids...); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	insts := s.sortedInstances()
	if len(ids) > 0 {
		var e *apiError
		if insts, e = s.lookupInstances(ids); e != nil {
			return nil, e
		}
	}
	resp := &describeInstancesResponse{}
	byRes := map[string]int{}
	for _, inst := range insts {
		ok, e := s.matches(inst.id, fs, inst.fields)
		if e != nil {
			return nil, e
		}
		if !ok {
			continue
		}
		i, seen := byRes[inst.reservation]
		if !seen {
			i = len(resp.Reservations)
			byRes[inst.reservation] = i
			resp.Reservations = append(resp.Reservations, xmlReservation{ReservationID: inst.reservation, OwnerID: s.opts.OwnerID, Groups: defaultGroups})
		}
		resp.Reservations[i].Instances = append(resp.Reservations[i].Instances, s.xmlInstance(inst))
	}
	return resp, nil
}

func (s *Server) xmlInstance(inst *instance) xmlInstance {
	x := xmlInstance{
		InstanceID: inst.id, ImageID: inst.imageID,
		State:        xmlState{Code: stateCode[inst.state], Name: inst.state},
		Reason:       inst.transition,
		KeyName:      inst.keyName,
		InstanceType: inst.itype, LaunchTime: ts(inst.launched),
		Placement: xmlPlacement{AvailabilityZone: inst.zone},
		KernelID:  inst.kernelID, RamdiskID: inst.ramdiskID,
		StateReason:  inst.reason,
		Architecture: inst.arch, RootDeviceType: inst.rootType, RootDeviceName: inst.rootDevice,
		VirtualizationType: inst.virt,
		Tags:               s.xmlTags(inst.id),
		Groups:             defaultGroups,
		Monitoring:         xmlMonitoring{State: "disabled"},
		Hypervisor:         "xen",
	}
	if inst.state != "terminated" {
		x.PrivateIPAddress, x.IPAddress = inst.privateIP, inst.publicIP
		if inst.privateIP != "" {
			x.PrivateDNSName = "ip-" + strings.ReplaceAll(inst.privateIP, ".", "-") + ".eucalyptus.internal"
		}
	}
	for _, a := range inst.devices {
		x.BlockDeviceMapping = append(x.BlockDeviceMapping, xmlInstanceBDM{DeviceName: a.device, Ebs: xmlInstanceEbs{
			VolumeID: a.volumeID, Status: a.state, AttachTime: ts(a.at), DeleteOnTermination: a.deleteOnTermination,
		}})
	}
	return x
}

func (s *Server) terminateInstances(p *params) (response, *apiError) {
	ids := p.list("InstanceId")
	p.get("Force")
	p.get("SkipOsShutdown")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", ids...); e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter InstanceId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	insts, e := s.lookupInstances(ids)
	if e != nil {
		return nil, e
	}
	resp := &stateChangeResponse{}
	for _, inst := range insts {
		prev := inst.state
		s.beginTerminate(inst, &xmlReason{Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown"}, "User initiated")
		resp.Instances = append(resp.Instances, xmlStateChange{
			InstanceID:    inst.id,
			PreviousState: xmlState{Code: stateCode[prev], Name: prev},
			CurrentState:  xmlState{Code: stateCode[inst.state], Name: inst.state},
		})
	}
	return resp, nil
}

func (s *Server) stopInstances(p *params) (response, *apiError) {
	ids := p.list("InstanceId")
	p.get("Force")
	p.get("Hibernate")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", ids...); e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter InstanceId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	insts, e := s.lookupInstances(ids)
	if e != nil {
		return nil, e
	}
	for _, inst := range insts {
		if inst.rootType != "ebs" {
			return nil, apiErr("UnsupportedOperation", "The instance '%s' does not have an 'ebs' root device type and cannot be stopped.", inst.id)
		}
		if inst.state == "shutting-down" || inst.state == "terminated" {
			return nil, apiErr("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be stopped.", inst.id)
		}
	}
	resp := &stateChangeResponse{}
	for _, inst := range insts {
		prev := inst.state
		if prev == "pending" || prev == "running" {
			s.beginStop(inst, &xmlReason{Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown"}, "User initiated")
		}
		resp.Instances = append(resp.Instances, xmlStateChange{InstanceID: inst.id,
			PreviousState: xmlState{Code: stateCode[prev], Name: prev}, CurrentState: xmlState{Code: stateCode[inst.state], Name: inst.state}})
	}
	return resp, nil
}

func (s *Server) startInstances(p *params) (response, *apiError) {
	ids := p.list("InstanceId")
	p.get("AdditionalInfo")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", ids...); e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter InstanceId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	insts, e := s.lookupInstances(ids)
	if e != nil {
		return nil, e
	}
	for _, inst := range insts {
		if inst.state != "stopped" && inst.state != "running" && inst.state != "pending" {
			return nil, apiErr("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be started.", inst.id)
		}
	}
	resp := &stateChangeResponse{}
	for _, inst := range insts {
		prev := inst.state
		if prev == "stopped" {
			inst.state, inst.reason, inst.transition = "pending", nil, ""
			inst.launched = time.Now() // EC2 reports the latest start
			s.consoleLine(inst, "pending (start)")
			s.startLaunch(inst)
		}
		resp.Instances = append(resp.Instances, xmlStateChange{InstanceID: inst.id,
			PreviousState: xmlState{Code: stateCode[prev], Name: prev}, CurrentState: xmlState{Code: stateCode[inst.state], Name: inst.state}})
	}
	return resp, nil
}

func (s *Server) getConsoleOutput(p *params) (response, *apiError) {
	id, e := p.required("InstanceId")
	if e != nil {
		return nil, e
	}
	p.get("Latest")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", id); e != nil {
		return nil, e
	}
	s.mu.Lock()
	inst := s.instances[canon(id)]
	var out []byte
	live := false
	if inst != nil {
		out = append([]byte(nil), inst.console...)
		live = s.opts.Node != nil && !inst.cleaned
	}
	s.mu.Unlock()
	if inst == nil {
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	if live {
		b, err := s.back.console(inst.id)
		if err != nil {
			return nil, apiErr("InternalError", "reading the console of %s: %v", inst.id, err)
		}
		out = b
	} else if len(out) > consoleLimit {
		out = out[len(out)-consoleLimit:]
	}
	return &consoleOutputResponse{InstanceID: inst.id, Timestamp: ts(time.Now()), Output: base64.StdEncoding.EncodeToString(out)}, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// describeInstanceAttribute answers one attribute of an instance, as
// EC2's DescribeInstanceAttribute does (userData base64 in <value>).
func (s *Server) describeInstanceAttribute(p *params) (response, *apiError) {
	id, e := p.required("InstanceId")
	if e != nil {
		return nil, e
	}
	attr, e := p.required("Attribute")
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("instance", id); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	insts, e := s.lookupInstances([]string{id})
	if e != nil {
		return nil, e
	}
	inst := insts[0]
	r := &describeInstanceAttributeResponse{InstanceID: inst.id}
	v := func(s string) *xmlAttrValue { return &xmlAttrValue{Value: s} }
	switch attr {
	case "instanceType":
		r.InstanceType = v(inst.itype)
	case "kernel":
		r.Kernel = v(inst.kernelID)
	case "ramdisk":
		r.Ramdisk = v(inst.ramdiskID)
	case "userData":
		r.UserData = &xmlAttrValue{}
		if len(inst.userData) > 0 {
			r.UserData.Value = base64.StdEncoding.EncodeToString(inst.userData)
		}
	case "disableApiTermination":
		r.DisableAPITerminate = v("false")
	case "instanceInitiatedShutdownBehavior":
		r.ShutdownBehavior = v(inst.shutdown)
	case "rootDeviceName":
		r.RootDeviceName = v(inst.rootDevice)
	case "blockDeviceMapping":
		bdm := s.xmlInstance(inst).BlockDeviceMapping
		if bdm == nil {
			bdm = []xmlInstanceBDM{}
		}
		r.BlockDeviceMapping = &bdm
	default:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	return r, nil
}

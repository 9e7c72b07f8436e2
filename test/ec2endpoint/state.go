package ec2endpoint

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// EC2 instance state codes (the low byte of instanceState/code).
var stateCode = map[string]int{
	"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80,
}

type instance struct {
	id, reservation              string
	imageID, kernelID, ramdiskID string
	itype, keyName, zone         string
	state                        string
	reason                       *xmlReason
	transition                   string // the reason element: why the state last changed
	userData                     []byte
	shutdown                     string // instance-initiated shutdown: stop | terminate
	launched                     time.Time
	created                      time.Time // RunInstances (launched moves at each start)
	privateIP, publicIP          string
	rootType, rootDevice         string // ebs | instance-store; /dev/sda1
	arch, virt                   string
	devices                      []*attachment // EBS block devices, root first
	console                      []byte        // plain mode; node mode once the files are gone
	cleaned                      bool          // node mode: instance files removed
	epoch                        int           // bumped at every start, stop, terminate: stale async steps give up
	rootFrom                     string        // snapshot or bundle file the root disk is copied from
	rootSize                     int           // GiB
	kernelPath, ramdiskPath      string
}

type attachment struct {
	volumeID, instanceID, device, state string
	at                                  time.Time
	deleteOnTermination                 bool
	root                                bool
	plugged                             bool // node mode: in the running domain
}

type volume struct {
	id, zone, snapshotID, vtype string
	size                        int
	state                       string
	created                     time.Time
	att                         *attachment
	path                        string // node mode: the file
	fromPath                    string // node mode: snapshot file to copy (until created)
}

type snapshot struct {
	id, volumeID, description string
	size                      int
	state                     string
	progress                  int
	started                   time.Time
	path                      string
}

type imageBDM struct {
	device, virtualName, snapshotID string
	size                            int
	deleteOnTermination             bool
	noDevice                        bool
}

type image struct {
	id, name, description, location string
	arch, kernelID, ramdiskID       string
	rootDevice, rootType, virt      string
	imageType, state                string // machine | kernel | ramdisk
	bdm                             []imageBDM
	created                         time.Time
	path                            string // node mode: kernel, ramdisk or bundle file
}

// rootMapping returns the mapping of the root device, if any.
func (im *image) rootMapping() *imageBDM {
	for i := range im.bdm {
		if im.bdm[i].device == im.rootDevice && im.bdm[i].snapshotID != "" {
			return &im.bdm[i]
		}
	}
	return nil
}

func (s *Server) xmlTags(id string) []xmlTag {
	m := s.tags[id]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]xmlTag, 0, len(keys))
	for _, k := range keys {
		out = append(out, xmlTag{Key: k, Value: m[k]})
	}
	return out
}

// fields answers a filter name for one resource: its values, and whether
// the name is a filter this resource type has.
type fields func(name string) ([]string, bool)

// matches applies EC2 filter semantics: every filter must match; within a
// filter, any value. tag:KEY, tag-key and tag-value work everywhere.
func (s *Server) matches(id string, fs []filter, f fields) (bool, *apiError) {
	for _, flt := range fs {
		var vals []string
		switch {
		case strings.HasPrefix(flt.name, "tag:"):
			if v, ok := s.tags[id][strings.TrimPrefix(flt.name, "tag:")]; ok {
				vals = []string{v}
			}
		case flt.name == "tag-key":
			for k := range s.tags[id] {
				vals = append(vals, k)
			}
		case flt.name == "tag-value":
			for _, v := range s.tags[id] {
				vals = append(vals, v)
			}
		default:
			v, ok := f(flt.name)
			if !ok {
				return false, apiErr("InvalidParameterValue", "The filter '%s' is invalid", flt.name)
			}
			vals = v
		}
		if !anyMatch(flt.values, vals) {
			return false, nil
		}
	}
	return true, nil
}

// checkFilters refuses filter names a resource type does not have, even
// when there is nothing to match them against.
func checkFilters(fs []filter, f fields) *apiError {
	for _, flt := range fs {
		if strings.HasPrefix(flt.name, "tag:") || flt.name == "tag-key" || flt.name == "tag-value" {
			continue
		}
		if _, ok := f(flt.name); !ok {
			return apiErr("InvalidParameterValue", "The filter '%s' is invalid", flt.name)
		}
	}
	return nil
}

func anyMatch(patterns, vals []string) bool {
	for _, p := range patterns {
		for _, v := range vals {
			if match(p, v) {
				return true
			}
		}
	}
	return false
}

func one(v string) ([]string, bool) { return []string{v}, true }

func (inst *instance) fields(name string) ([]string, bool) {
	switch name {
	case "instance-id":
		return one(inst.id)
	case "instance-state-name":
		return one(inst.state)
	case "instance-state-code":
		return one(strconv.Itoa(stateCode[inst.state]))
	case "image-id":
		return one(inst.imageID)
	case "instance-type":
		return one(inst.itype)
	case "availability-zone":
		return one(inst.zone)
	case "reservation-id":
		return one(inst.reservation)
	case "root-device-type":
		return one(inst.rootType)
	case "kernel-id":
		return one(inst.kernelID)
	case "ramdisk-id":
		return one(inst.ramdiskID)
	case "private-ip-address":
		return one(inst.privateIP)
	case "block-device-mapping.volume-id":
		var v []string
		for _, a := range inst.devices {
			v = append(v, a.volumeID)
		}
		return v, true
	}
	return nil, false
}

func (v *volume) fields(name string) ([]string, bool) {
	switch name {
	case "volume-id":
		return one(v.id)
	case "status":
		return one(v.state)
	case "size":
		return one(strconv.Itoa(v.size))
	case "availability-zone":
		return one(v.zone)
	case "snapshot-id":
		return one(v.snapshotID)
	case "volume-type":
		return one(v.vtype)
	case "attachment.instance-id", "attachment.status", "attachment.device", "attachment.delete-on-termination":
		if v.att == nil {
			return nil, true
		}
		switch name {
		case "attachment.instance-id":
			return one(v.att.instanceID)
		case "attachment.status":
			return one(v.att.state)
		case "attachment.device":
			return one(v.att.device)
		}
		return one(strconv.FormatBool(v.att.deleteOnTermination))
	}
	return nil, false
}

func (sn *snapshot) fields(name string) ([]string, bool) {
	switch name {
	case "snapshot-id":
		return one(sn.id)
	case "volume-id":
		return one(sn.volumeID)
	case "status":
		return one(sn.state)
	case "progress":
		return one(strconv.Itoa(sn.progress) + "%")
	case "description":
		return one(sn.description)
	case "volume-size":
		return one(strconv.Itoa(sn.size))
	}
	return nil, false
}

func (im *image) fields(name string) ([]string, bool) {
	switch name {
	case "image-id":
		return one(im.id)
	case "name":
		return one(im.name)
	case "description":
		return one(im.description)
	case "state":
		return one(im.state)
	case "image-type":
		return one(im.imageType)
	case "architecture":
		return one(im.arch)
	case "root-device-type":
		return one(im.rootType)
	case "root-device-name":
		return one(im.rootDevice)
	case "virtualization-type":
		return one(im.virt)
	case "kernel-id":
		return one(im.kernelID)
	case "ramdisk-id":
		return one(im.ramdiskID)
	case "manifest-location":
		return one(im.location)
	case "is-public":
		return one("false")
	case "block-device-mapping.snapshot-id":
		var v []string
		for _, b := range im.bdm {
			if b.snapshotID != "" {
				v = append(v, b.snapshotID)
			}
		}
		return v, true
	}
	return nil, false
}

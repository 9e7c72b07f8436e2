package ec2endpoint

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Tag limits, as EC2 documents them.
const (
	maxTagsPerResource = 50
	maxTagKey          = 127
	maxTagValue        = 255
)

// resource finds any taggable resource by ID: its type name and whether it
// exists; a prefix that names no resource type is a nil error code "InvalidID".
func (s *Server) resource(id string) (kind string, e *apiError) {
	id = canon(id)
	p, _, _ := strings.Cut(id, "-")
	switch p {
	case "i":
		if s.instances[id] == nil {
			return "", apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		return "instance", nil
	case "vol":
		if s.volumes[id] == nil {
			return "", apiErr("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
		}
		return "volume", nil
	case "snap":
		if s.snapshots[id] == nil {
			return "", apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
		}
		return "snapshot", nil
	case "ami", "emi", "aki", "eki", "ari", "eri":
		if s.images[id] == nil {
			return "", apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
		return "image", nil
	}
	return "", apiErr("InvalidID", "The ID '%s' is not valid", id)
}

func (s *Server) createTags(p *params) (response, *apiError) {
	ids := p.list("ResourceId")
	tags, e := p.tagParams()
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	if len(tags) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter tagSet")
	}
	if e := checkTags(tags); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, e := s.resource(id); e != nil {
			return nil, e
		}
		if sn := s.snapshots[canon(id)]; sn != nil && time.Since(sn.started) < s.delays.Invisible {
			return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
		}
		if im := s.images[canon(id)]; im != nil && time.Since(im.created) < s.delays.Invisible {
			return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
		if inst := s.instances[canon(id)]; inst != nil && time.Since(inst.created) < s.delays.Invisible {
			return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		if v := s.volumes[canon(id)]; v != nil && time.Since(v.created) < s.delays.Invisible {
			return nil, apiErr("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
		}
		n := len(s.tags[canon(id)])
		for _, t := range tags {
			if _, ok := s.tags[canon(id)][t.key]; !ok {
				n++
			}
		}
		if n > maxTagsPerResource {
			return nil, apiErr("TagLimitExceeded", "The maximum number of tags (%d) for resource %s has been reached", maxTagsPerResource, id)
		}
	}
	for _, id := range ids {
		id = canon(id)
		if s.tags[id] == nil {
			s.tags[id] = map[string]string{}
		}
		for _, t := range tags {
			s.tags[id][t.key] = t.value
		}
	}
	return &returnResponse{Return: true}, nil
}

func (s *Server) deleteTags(p *params) (response, *apiError) {
	ids := p.list("ResourceId")
	tags, e := p.tagParams()
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, e := s.resource(id); e != nil {
			return nil, e
		}
	}
	for _, id := range ids {
		id = canon(id)
		if len(tags) == 0 {
			delete(s.tags, id)
			continue
		}
		for _, t := range tags {
			if v, ok := s.tags[id][t.key]; ok && (!t.hasValue || v == t.value) {
				delete(s.tags[id], t.key)
			}
		}
	}
	return &returnResponse{Return: true}, nil
}

func (s *Server) describeTags(p *params) (response, *apiError) {
	fs := p.filters()
	maxResults, e := p.int("MaxResults", s.opts.TagPageSize)
	if e != nil {
		return nil, e
	}
	token := p.get("NextToken")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if maxResults < 5 || maxResults > 1000 {
		return nil, apiErr("InvalidParameterValue", "MaxResults %d: want 5 to 1000", maxResults)
	}
	maxResults = min(maxResults, s.opts.TagPageSize)
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 {
			return nil, apiErr("InvalidNextToken", "The token '%s' is not valid", token)
		}
		start = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.tags))
	for id := range s.tags {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var all []xmlTagDescription
	for _, id := range ids {
		kind, e := s.resource(id)
		if e != nil {
			continue // the resource went; its tags go with it
		}
		keys := make([]string, 0, len(s.tags[id]))
		for k := range s.tags[id] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t := xmlTagDescription{ResourceID: id, ResourceType: kind, Key: k, Value: s.tags[id][k]}
			ok := true
			for _, f := range fs {
				var v string
				switch f.name {
				case "key":
					v = t.Key
				case "value":
					v = t.Value
				case "resource-id":
					v = t.ResourceID
				case "resource-type":
					v = t.ResourceType
				default:
					return nil, apiErr("InvalidParameterValue", "The filter '%s' is invalid", f.name)
				}
				if !anyMatch(f.values, []string{v}) {
					ok = false
					break
				}
			}
			if ok {
				all = append(all, t)
			}
		}
	}
	resp := &describeTagsResponse{}
	if start < len(all) {
		end := min(start+maxResults, len(all))
		resp.Tags = all[start:end]
		if end < len(all) {
			resp.NextToken = strconv.Itoa(end)
		}
	}
	return resp, nil
}

func (s *Server) describeZones(p *params) (response, *apiError) {
	names := p.list("ZoneName")
	fs := p.filters()
	p.get("AllAvailabilityZones")
	p.list("ZoneId")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	resp := &describeZonesResponse{}
	for _, z := range s.opts.Zones {
		if len(names) > 0 && !contains(names, z) {
			continue
		}
		ok := true
		for _, f := range fs {
			var v string
			switch f.name {
			case "zone-name":
				v = z
			case "state":
				v = "available"
			case "region-name":
				v = s.opts.Region
			default:
				return nil, apiErr("InvalidParameterValue", "The filter '%s' is invalid", f.name)
			}
			ok = ok && anyMatch(f.values, []string{v})
		}
		if ok {
			resp.Zones = append(resp.Zones, xmlZone{ZoneName: z, ZoneState: "available", RegionName: s.opts.Region})
		}
	}
	return resp, nil
}

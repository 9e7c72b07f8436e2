package ec2endpoint

import (
	"context"
	"sort"
	"strconv"
	"time"
)

func (s *Server) createSnapshot(p *params) (response, *apiError) {
	volID, e := p.required("VolumeId")
	if e != nil {
		return nil, e
	}
	desc := p.get("Description")
	specs, e := s.tagSpecs(p, "snapshot")
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
	if v.state != "available" && v.state != "in-use" {
		return nil, apiErr("IncorrectState", "Volume '%s' is in the '%s' state.", v.id, v.state)
	}
	sn := &snapshot{id: s.newID("snap"), volumeID: v.id, description: desc, size: v.size, state: "pending", started: time.Now()}
	s.snapshots[sn.id] = sn
	s.setTags(sn.id, specs["snapshot"])
	volPath := v.path
	s.async(func(ctx context.Context) { s.progressSnapshot(ctx, sn, volPath) })
	x := s.xmlSnapshot(sn)
	return &createSnapshotResponse{SnapshotID: x.SnapshotID, VolumeID: x.VolumeID, Status: x.Status, StartTime: x.StartTime,
		Progress: x.Progress, OwnerID: x.OwnerID, VolumeSize: x.VolumeSize, Description: x.Description, Tags: x.Tags}, nil
}

// progressSnapshot copies the volume (node mode) while Progress rises one
// step per Delays.SnapshotStep; the snapshot completes when both the steps
// and the copy are done. Progress stays below 100 % until then.
func (s *Server) progressSnapshot(ctx context.Context, sn *snapshot, volPath string) {
	type result struct {
		path string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		p, err := s.back.snapshot(ctx, sn.id, volPath)
		done <- result{p, err}
	}()
	steps := s.delays.SnapshotSteps
	var res *result
	for step := 1; ; step++ {
		tm := time.NewTimer(s.delays.SnapshotStep)
		select {
		case <-ctx.Done():
			tm.Stop()
			<-done
			return
		case <-tm.C:
		}
		if res == nil {
			select {
			case r := <-done:
				res = &r
			default:
			}
		}
		s.mu.Lock()
		if sn.state != "pending" || s.snapshots[sn.id] != sn { // deleted meanwhile
			s.mu.Unlock()
			if res == nil {
				<-done
			}
			return
		}
		if hold := s.snapHold; step < steps || res == nil || hold {
			sn.progress = min(99, max(sn.progress, step*100/steps))
			s.mu.Unlock()
			if step >= steps && res == nil && !hold {
				r := <-done // the copy is the slower part: wait for it
				res = &r
			}
			continue
		}
		if res.err != nil {
			s.log.Info("snapshot failed", "snapshot", sn.id, "err", res.err)
			sn.state = "error"
		} else {
			sn.path, sn.progress, sn.state = res.path, 100, "completed"
		}
		s.mu.Unlock()
		return
	}
}

func (s *Server) xmlSnapshot(sn *snapshot) xmlSnapshot {
	prog := ""
	if sn.state != "pending" || sn.progress > 0 {
		prog = strconv.Itoa(sn.progress) + "%"
	}
	return xmlSnapshot{
		SnapshotID: sn.id, VolumeID: sn.volumeID, Status: sn.state, StartTime: ts(sn.started),
		Progress: prog, OwnerID: s.opts.OwnerID, VolumeSize: sn.size, Description: sn.description,
		Tags: s.xmlTags(sn.id),
	}
}

// owned reports whether an Owner.N list includes this account's resources.
func (s *Server) owned(owners []string) bool {
	if len(owners) == 0 {
		return true
	}
	for _, o := range owners {
		if o == "self" || o == s.opts.OwnerID {
			return true
		}
	}
	return false
}

func (s *Server) describeSnapshots(p *params) (response, *apiError) {
	ids := p.list("SnapshotId")
	owners := p.list("Owner")
	p.list("RestorableBy")
	fs := p.filters()
	if e := checkFilters(fs, (&snapshot{}).fields); e != nil {
		return nil, e
	}
	p.get("MaxResults")
	p.get("NextToken")
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("snapshot", ids...); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var snaps []*snapshot
	if len(ids) > 0 {
		for _, id := range ids {
			sn := s.snapshots[canon(id)]
			if sn == nil || time.Since(sn.started) < s.delays.Invisible {
				return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
			}
			snaps = append(snaps, sn)
		}
	} else {
		for _, sn := range s.snapshots {
			snaps = append(snaps, sn)
		}
		sort.Slice(snaps, func(i, j int) bool { return snaps[i].id < snaps[j].id })
	}
	resp := &describeSnapshotsResponse{}
	if !s.owned(owners) {
		return resp, nil
	}
	for _, sn := range snaps {
		ok, e := s.matches(sn.id, fs, sn.fields)
		if e != nil {
			return nil, e
		}
		if ok {
			resp.Snapshots = append(resp.Snapshots, s.xmlSnapshot(sn))
		}
	}
	return resp, nil
}

func (s *Server) deleteSnapshot(p *params) (response, *apiError) {
	id, e := p.required("SnapshotId")
	if e != nil {
		return nil, e
	}
	if e := p.unknown(); e != nil {
		return nil, e
	}
	if e := checkIDs("snapshot", id); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.snapshots[canon(id)]
	if sn == nil {
		return nil, apiErr("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
	}
	for _, im := range s.images {
		for _, b := range im.bdm {
			if b.snapshotID == sn.id {
				return nil, apiErr("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", sn.id, im.id)
			}
		}
	}
	delete(s.snapshots, sn.id)
	delete(s.tags, sn.id)
	if path := sn.path; path != "" {
		s.async(func(context.Context) {
			if err := s.back.removeSnapshot(path); err != nil {
				s.log.Info("snapshot delete", "snapshot", sn.id, "err", err)
			}
		})
	}
	return &returnResponse{Return: true}, nil
}

// HoldSnapshots keeps every pending snapshot pending (progress below
// 100 %) until ReleaseSnapshots: a test whose client is slow (a Python
// CLI on a loaded machine) still sees a snapshot in progress.
func (s *Server) HoldSnapshots() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapHold = true
}

// ReleaseSnapshots lets held snapshots complete.
func (s *Server) ReleaseSnapshots() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapHold = false
}

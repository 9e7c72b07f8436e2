package main

import (
	"sort"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/consolenote"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/safetext"
)

// The JSON kscloud prints (--output json) is made of these views, never of
// internal structs: keys are snake_case and every key is always there
// (lists are [] and maps {} when empty), so scripts can rely on the shape;
// text from a guest, a tenant or a cloud is made safe to print (shown), and
// nothing secret is in them: no rendered user-data, no kickstart delivery
// token, no URL credentials. testdata/json-*.golden pin the shapes.

// imageView is an image as images list/show/import print it.
type imageView struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	State       string            `json:"state"`
	Created     time.Time         `json:"created"`
	Build       string            `json:"build"`
	Description string            `json:"description"`
	SnapshotID  string            `json:"snapshot_id"`
	Path        string            `json:"path"`
	Tags        map[string]string `json:"tags"`
}

func viewImage(im cloud.Image) imageView {
	v := imageView{ID: shown(im.ID), Name: shown(im.Name), State: shown(im.State), Created: im.Created.UTC(),
		Build: shown(im.Tags[cloud.TagBuild]), Description: shown(im.Description), SnapshotID: shown(im.SnapshotID),
		Path: im.Path, Tags: map[string]string{}}
	for k, val := range im.Tags {
		v.Tags[shown(k)] = shown(val)
	}
	return v
}

func viewImages(ims []cloud.Image) []imageView {
	out := make([]imageView, 0, len(ims))
	for _, im := range ims {
		out = append(out, viewImage(im))
	}
	return out
}

// buildView is a build as status prints it: what was asked, where, what
// it made and left; not the step values (user-data, the kickstart
// server's token, command lines), which only a resume reads.
type buildView struct {
	ID        string             `json:"id"`
	Kind      string             `json:"kind"`
	Provider  string             `json:"provider"`
	Status    string             `json:"status"`
	Error     string             `json:"error"`
	Created   time.Time          `json:"created"`
	Updated   time.Time          `json:"updated"`
	Spec      specView           `json:"spec"`
	Plan      *planView          `json:"plan"`
	Cloud     *install.CloudRef  `json:"cloud"` // names a eucarc, never holds keys
	Steps     []stepView         `json:"steps"`
	Resources []install.Resource `json:"resources"`
	Result    *install.Result    `json:"result"`
}

// planView is what a build planned (install.Plan): the user-data is
// never shown (it can carry the whole kickstart), nor the HTTP delivery's
// secret path, which is struck from the command lines too.
type planView struct {
	Kernel        string `json:"kernel"`
	Initrd        string `json:"initrd"`
	Cmdline       string `json:"cmdline"`
	Args          string `json:"args"`
	CmdlinePrefix string `json:"cmdline_prefix"`
	UserData      string `json:"user_data"` // "REDACTED" when there is any, else ""
	KickstartFile string `json:"kickstart_file"`
	Media         string `json:"media"`
	HTTPAddr      string `json:"http_addr"`
}

func viewPlan(p *install.Plan) *planView {
	if p == nil {
		return nil
	}
	hide := func(s string) string {
		if p.HTTP != nil && p.HTTP.Token != "" {
			s = strings.ReplaceAll(s, p.HTTP.Token, install.Redacted)
		}
		return shown(s)
	}
	v := &planView{Kernel: hide(p.Kernel), Initrd: hide(p.Initrd), Cmdline: hide(p.Cmdline), Args: hide(p.Args),
		CmdlinePrefix: hide(p.CmdlinePrefix), KickstartFile: hide(p.KickstartFile), Media: hide(p.Media)}
	if len(p.UserData) > 0 {
		v.UserData = install.Redacted
	}
	if p.HTTP != nil {
		v.HTTPAddr = p.HTTP.Addr
	}
	return v
}

// stepView is one step of a build and how far it got (running, done,
// failed): a list, so that step names are values, not keys.
type stepView struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// specView is what a build was asked for, its URLs and installer
// arguments redacted.
type specView struct {
	Name            string `json:"name"`
	Kickstart       string `json:"kickstart"`
	KickstartSHA256 string `json:"kickstart_sha256"`
	Delivery        string `json:"delivery"`
	Kernel          string `json:"kernel"`
	Initrd          string `json:"initrd"`
	Location        string `json:"location"`
	ImageID         string `json:"image_id"`
	Catalog         string `json:"catalog"`
	ExtraArgs       string `json:"extra_args"`
	DiskGiB         int    `json:"disk_gib"`
	MemoryMB        int    `json:"memory_mb"`
	CPUs            int    `json:"cpus"`
	Type            string `json:"instance_type"`
	Zone            string `json:"zone"`
	KeyName         string `json:"key_name"`
	VNC             bool   `json:"vnc"`
	Timeout         string `json:"timeout"`
	Inactivity      string `json:"inactivity"`
	Architecture    string `json:"architecture"`
	Virtualization  string `json:"virtualization"`
}

func viewBuild(b *install.Build) buildView {
	s := b.Spec
	v := buildView{ID: b.ID, Kind: b.Kind, Provider: b.Provider, Status: b.Status, Error: shown(b.Error),
		Created: b.Created, Updated: b.Updated, Cloud: b.Cloud, Steps: []stepView{}, Resources: []install.Resource{},
		Spec: specView{Name: s.Name, Kickstart: shown(s.Kickstart), KickstartSHA256: s.KickstartSHA256, Delivery: s.Delivery,
			Kernel: shown(s.Kernel), Initrd: shown(s.Initrd), Location: shown(s.Location), ImageID: s.ImageID, Catalog: shown(s.Catalog),
			ExtraArgs: shown(s.ExtraArgs), DiskGiB: s.DiskGiB, MemoryMB: s.MemoryMB, CPUs: s.CPUs, Type: s.Type, Zone: s.Zone,
			KeyName: s.KeyName, VNC: s.VNC, Timeout: s.Timeout.String(), Inactivity: s.Inactivity.String(),
			Architecture: s.Architecture, Virtualization: s.Virtualization}}
	for k, st := range b.Steps {
		v.Steps = append(v.Steps, stepView{Name: k, Status: st})
	}
	sort.Slice(v.Steps, func(i, j int) bool { return v.Steps[i].Name < v.Steps[j].Name })
	v.Resources = append(v.Resources, b.Resources...)
	v.Result = viewResult(b.Result)
	v.Plan = viewPlan(b.Plan)
	return v
}

// viewResult is a build's result fit to print: its marker and VNC
// address come from the guest's console.
func viewResult(res *install.Result) *install.Result {
	if res == nil {
		return nil
	}
	r := *res
	r.Marker, r.VNC = shown(r.Marker), shown(r.VNC)
	return &r
}

func viewBuilds(bs []*install.Build) []buildView {
	out := make([]buildView, 0, len(bs))
	for _, b := range bs {
		out = append(out, viewBuild(b))
	}
	return out
}

// vncView is where a VNC console is (kscloud vnc): its password is the
// answer asked for; the note it comes from is written on a console the
// guest also writes to.
type vncView struct {
	Instance string `json:"instance"`
	URL      string `json:"url"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Password string `json:"password"`
	Node     string `json:"node"`
	Loopback bool   `json:"loopback"` // on the node's loopback: reach it through ssh -L
}

func viewVNC(v consolenote.VNC) vncView {
	return vncView{Instance: safetext.Line(v.Instance), URL: safetext.Line(v.URL()), Host: safetext.Line(v.Host), Port: v.Port,
		Password: safetext.Line(v.Password), Node: safetext.Line(v.Node), Loopback: v.Loopback()}
}

// hostView is what uninstall-host removed and kept.
type hostView struct {
	RemovedPools []string `json:"removed_pools"`
	RemovedDirs  []string `json:"removed_dirs"`
	Kept         []string `json:"kept"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

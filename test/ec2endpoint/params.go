package ec2endpoint

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// params is a request's EC2 Query parameters. Every accessor marks what it
// reads; unknown reports the rest, which the endpoint refuses the way
// Eucalyptus 4.x's strict binding does (UnknownParameter), so a client that
// sends something a real cloud would reject finds out here.
type params struct {
	v       url.Values
	used    map[string]bool
	lenient bool // ignore unknown parameters (Eucalyptus 3.x)
}

func newParams(v url.Values) *params { return &params{v: v, used: map[string]bool{}} }

// get returns a single parameter ("" when absent).
func (p *params) get(name string) string {
	p.used[name] = true
	return p.v.Get(name)
}

func (p *params) has(name string) bool {
	p.used[name] = true
	_, ok := p.v[name]
	return ok
}

// required returns a parameter or a MissingParameter error.
func (p *params) required(name string) (string, *apiError) {
	s := p.get(name)
	if s == "" {
		return "", apiErr("MissingParameter", "The request must contain the parameter %s", name)
	}
	return s, nil
}

func (p *params) int(name string, def int) (int, *apiError) {
	s := p.get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, apiErr("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected an integer.", s, name)
	}
	return n, nil
}

func (p *params) bool(name string, def bool) (bool, *apiError) {
	s := p.get(name)
	switch strings.ToLower(s) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, apiErr("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected a boolean.", s, name)
}

// indices returns the sorted N of every "prefix.N" or "prefix.N.…" key.
func (p *params) indices(prefix string) []int {
	seen := map[int]bool{}
	for k := range p.v {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list returns the values of prefix.1, prefix.2, … in order.
func (p *params) list(prefix string) []string {
	var out []string
	for _, n := range p.indices(prefix) {
		out = append(out, p.get(fmt.Sprintf("%s.%d", prefix, n)))
	}
	return out
}

// filter is one Filter.N: a name and its values.
type filter struct {
	name   string
	values []string
}

func (p *params) filters() []filter {
	var out []filter
	for _, n := range p.indices("Filter") {
		pre := fmt.Sprintf("Filter.%d", n)
		out = append(out, filter{name: p.get(pre + ".Name"), values: p.list(pre + ".Value")})
	}
	return out
}

// tagParams reads Tag.N.Key / Tag.N.Value.
func (p *params) tagParams() ([]tagKV, *apiError) {
	var out []tagKV
	for _, n := range p.indices("Tag") {
		pre := fmt.Sprintf("Tag.%d", n)
		k := p.get(pre + ".Key")
		if k == "" {
			return nil, apiErr("InvalidParameterValue", "Tag key must not be empty (%s.Key)", pre)
		}
		out = append(out, tagKV{key: k, value: p.get(pre + ".Value"), hasValue: p.has(pre + ".Value")})
	}
	return out, nil
}

type tagKV struct {
	key, value string
	hasValue   bool
}

// bdmParam is one BlockDeviceMapping.N.
type bdmParam struct {
	device, virtualName, snapshotID string
	noDevice                        bool
	size                            int
	deleteOnTermination             *bool
	volumeType                      string
}

func (p *params) blockDeviceMappings() ([]bdmParam, *apiError) {
	var out []bdmParam
	for _, n := range p.indices("BlockDeviceMapping") {
		pre := fmt.Sprintf("BlockDeviceMapping.%d", n)
		b := bdmParam{
			device:      p.get(pre + ".DeviceName"),
			virtualName: p.get(pre + ".VirtualName"),
			snapshotID:  p.get(pre + ".Ebs.SnapshotId"),
			noDevice:    p.has(pre + ".NoDevice"),
			volumeType:  p.get(pre + ".Ebs.VolumeType"),
		}
		if b.device == "" {
			return nil, apiErr("MissingParameter", "The request must contain the parameter %s.DeviceName", pre)
		}
		size, err := p.int(pre+".Ebs.VolumeSize", 0)
		if err != nil {
			return nil, err
		}
		b.size = size
		if p.get(pre+".Ebs.DeleteOnTermination") != "" {
			d, err := p.bool(pre+".Ebs.DeleteOnTermination", true)
			if err != nil {
				return nil, err
			}
			b.deleteOnTermination = &d
		}
		out = append(out, b)
	}
	return out, nil
}

// auth parameters are read by the signature check, not the action.
var authParams = []string{"Action", "Version", "AWSAccessKeyId", "SignatureVersion", "SignatureMethod", "Signature", "Timestamp", "Expires", "SecurityToken"}

// unknown returns an UnknownParameter error naming the first parameter
// no accessor read, or nil.
func (p *params) unknown() *apiError {
	if p.lenient {
		return nil
	}
	for _, k := range authParams {
		p.used[k] = true
	}
	var left []string
	for k := range p.v {
		if !p.used[k] {
			left = append(left, k)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	return apiErr("UnknownParameter", "The parameter %s is not recognized", left[0])
}

// match reports whether s matches an EC2 filter value, where * matches
// any run of characters and ? any one character.
func match(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	p, t := []rune(pattern), []rune(s)
	star, mark := -1, 0
	i, j := 0, 0
	for j < len(t) {
		switch {
		case i < len(p) && (p[i] == '?' || p[i] == t[j]):
			i++
			j++
		case i < len(p) && p[i] == '*':
			star, mark = i, j
			i++
		case star >= 0:
			i = star + 1
			mark++
			j = mark
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

// versionRe is the shape of an EC2 API version.
var versionRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

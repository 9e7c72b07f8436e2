package ec2endpoint

import (
	"regexp"
	"strings"
)

// idRe is the shape of an EC2 resource ID: a prefix, '-', and 8 (Eucalyptus,
// older AWS) or 17 (AWS's longer IDs) hex digits. Eucalyptus accepts either
// case (ResourceIdentifiers.normalize); so does this endpoint.
var idRe = regexp.MustCompile(`^([a-z]+)-([0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)

// idKinds are the prefixes and the Malformed error of each ID kind
// (EC2 API reference, "Error codes": InvalidInstanceID.Malformed,
// InvalidVolumeID.Malformed, InvalidSnapshotID.Malformed,
// InvalidAMIID.Malformed; Eucalyptus 4.x throws the same codes with
// `Invalid id: "…"` from VmControl and its peers).
var idKinds = map[string]struct {
	prefixes []string
	code     string
	expect   string
}{
	"instance": {[]string{"i"}, "InvalidInstanceID.Malformed", ""},
	"volume":   {[]string{"vol"}, "InvalidVolumeID.Malformed", ` (expecting "vol-...")`},
	"snapshot": {[]string{"snap"}, "InvalidSnapshotID.Malformed", ` (expecting "snap-...")`},
	"image":    {[]string{"ami", "emi", "aki", "eki", "ari", "eri"}, "InvalidAMIID.Malformed", ` (expecting "ami-...")`},
	"kernel":   {[]string{"aki", "eki"}, "InvalidAMIID.Malformed", ` (expecting "aki-...")`},
	"ramdisk":  {[]string{"ari", "eri"}, "InvalidAMIID.Malformed", ` (expecting "ari-...")`},
}

// checkIDs answers the kind's Malformed error for the first ID that is not
// of its shape; empty IDs are the caller's business (MissingParameter).
func checkIDs(kind string, ids ...string) *apiError {
	k := idKinds[kind]
	for _, id := range ids {
		if id == "" {
			continue
		}
		m := idRe.FindStringSubmatch(id)
		if m == nil || !contains(k.prefixes, strings.ToLower(m[1])) {
			return apiErr(k.code, `Invalid id: "%s"%s`, id, k.expect)
		}
	}
	return nil
}

// checkLaunchIDs checks the kernel, ramdisk and mapped snapshot IDs of a
// RunInstances or RegisterImage.
func checkLaunchIDs(kernelID, ramdiskID string, bdms []bdmParam) *apiError {
	if e := checkIDs("kernel", kernelID); e != nil {
		return e
	}
	if e := checkIDs("ramdisk", ramdiskID); e != nil {
		return e
	}
	for _, b := range bdms {
		if e := checkIDs("snapshot", b.snapshotID); e != nil {
			return e
		}
	}
	return nil
}

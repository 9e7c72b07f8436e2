package ec2

import (
	"fmt"
	"regexp"
	"strings"
)

// ID prefixes, AWS's and Eucalyptus's: an EMI is an AMI, an EKI an AKI, an
// ERI an ARI (clc/modules/cluster-manager/.../images/ImageInfoTag.java).
var (
	imagePrefixes   = []string{"ami-", "emi-"}
	kernelPrefixes  = []string{"aki-", "eki-"}
	ramdiskPrefixes = []string{"ari-", "eri-"}
)

// idRe is prefix, then 8 hex digits (AWS before 2016, Eucalyptus 3.x upper
// case, 4.x lower case) or 17 (AWS long IDs, Eucalyptus 4.3+).
var idRe = regexp.MustCompile(`^[a-z]+-([0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)

// checkID reports whether id is a well-formed ID with one of the prefixes.
func checkID(kind, id string, prefixes ...string) error {
	for _, p := range prefixes {
		if strings.HasPrefix(strings.ToLower(id), p) && idRe.MatchString(strings.ToLower(id[:len(p)])+id[len(p):]) {
			return nil
		}
	}
	article := "a"
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		article = "an"
	}
	return fmt.Errorf("%s %q: not %s %s id (%s…)", kind, id, article, kind, strings.Join(prefixes, "…/"))
}

// kindOf names the kind of resource an ID is, from its prefix.
func kindOf(id string) string {
	l := strings.ToLower(id)
	switch {
	case strings.HasPrefix(l, "i-"):
		return "instance"
	case strings.HasPrefix(l, "vol-"):
		return "volume"
	case strings.HasPrefix(l, "snap-"):
		return "snapshot"
	}
	for _, p := range append(append(append([]string{}, imagePrefixes...), kernelPrefixes...), ramdiskPrefixes...) {
		if strings.HasPrefix(l, p) {
			return "image"
		}
	}
	return "resource"
}

// CheckImageID, CheckKernelID and CheckRamdiskID check an AMI/EMI,
// AKI/EKI and ARI/ERI id before anything is launched (flags).
func CheckImageID(id string) error   { return checkID("image", id, imagePrefixes...) }
func CheckKernelID(id string) error  { return checkID("kernel", id, kernelPrefixes...) }
func CheckRamdiskID(id string) error { return checkID("ramdisk", id, ramdiskPrefixes...) }

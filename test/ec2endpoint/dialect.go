package ec2endpoint

import (
	"fmt"
	"time"
)

// Dialect is the EC2 implementation the endpoint plays. They differ where
// the clouds differ; everything else (wire format, state machines, error
// codes) is the EC2 API reference for all three.
//
//	                         aws                  eucalyptus-4              eucalyptus-3
//	unknown parameter        UnknownParameter     UnknownParameter          ignored
//	RunInstances ClientToken idempotent           idempotent                idempotent
//	CreateVolume ClientToken idempotent           UnknownParameter          ignored
//	TagSpecification.N       honoured             UnknownParameter          ignored (dropped)
//	same signature again     accepted             refused after 3 s, ≤15 min refused after 3 s, ≤15 min
//	timestamp ahead          15 min               20 s                      20 s
//	timestamp behind         15 min               15 min + 20 s             15 min + 20 s
//	default path             /                    /services/compute         /services/Eucalyptus
//
// Sources:
//   - AWS: the EC2 API reference (CreateVolume and RunInstances take
//     ClientToken and TagSpecification.N; "Ensuring idempotency"; common
//     error RequestExpired: "more than 15 minutes after the date stamp …
//     or the date stamp is more than 15 minutes in the future"). AWS has
//     no replay cache: identical requests are answered alike.
//   - Eucalyptus 4.x: clc/modules/compute-common/src/main/resources/
//     ec2-2016-11-15-binding.xml includes ec2-ebs-volumes-14-09-01.xml
//     (CreateVolume: size, snapshotId, availabilityZone, volumeType, iops,
//     encrypted — no clientToken, no tagSpecification) and
//     ec2-instances-14-05-01.xml (RunInstances: clientToken since
//     2010-08-31, no tagSpecification); ComputeQueryBinding refuses
//     unbound parameters.
//   - Eucalyptus 3.x: the same RunInstances clientToken binding
//     (ec2-instances-10-08-31.xml); its query binding ignores parameters
//     it does not bind.
//   - Both Eucalyptus: admin guide "Configure Replay Protection"
//     (security_task_replays): a signature seen within 15 minutes is
//     refused unless repeated within bootstrap.webservices.replay_skew_window_sec
//     (default 3 s); bootstrap.webservices.clock_skew_sec allows 20 s of
//     clock drift.
type Dialect string

// The dialects. The zero value is DialectEucalyptus4.
const (
	DialectAWS         Dialect = "aws"
	DialectEucalyptus4 Dialect = "eucalyptus-4"
	DialectEucalyptus3 Dialect = "eucalyptus-3"
)

// Dialects lists every dialect, for tests that run against each.
var Dialects = []Dialect{DialectAWS, DialectEucalyptus4, DialectEucalyptus3}

// ParseDialect checks a dialect name ("" is eucalyptus-4).
func ParseDialect(s string) (Dialect, error) {
	switch d := Dialect(s); d {
	case "":
		return DialectEucalyptus4, nil
	case DialectAWS, DialectEucalyptus4, DialectEucalyptus3:
		return d, nil
	}
	return "", fmt.Errorf("dialect %q: want aws, eucalyptus-4 or eucalyptus-3", s)
}

// lenient: parameters the binding does not know are ignored.
func (d Dialect) lenient() bool { return d == DialectEucalyptus3 }

// tagOnCreate: TagSpecification.N is bound (AWS).
func (d Dialect) tagOnCreate() bool { return d == DialectAWS }

// volumeToken: CreateVolume binds ClientToken (AWS).
func (d Dialect) volumeToken() bool { return d == DialectAWS }

// replayWindow is how long a repeated signature is accepted after its
// first use; 0: no replay check at all.
func (d Dialect) replayCheck() (check bool, grace time.Duration) {
	if d == DialectAWS {
		return false, 0
	}
	return true, 3 * time.Second
}

// skew is how far ahead of the endpoint's clock a request may be, and
// how old it may be.
func (d Dialect) skew() (ahead, behind time.Duration) {
	if d == DialectAWS {
		return 15 * time.Minute, 15 * time.Minute
	}
	return 20 * time.Second, 15*time.Minute + 20*time.Second
}

// path is the URL path the dialect's endpoint lives at.
func (d Dialect) path() string {
	switch d {
	case DialectAWS:
		return "/"
	case DialectEucalyptus3:
		return "/services/Eucalyptus"
	}
	return "/services/compute"
}

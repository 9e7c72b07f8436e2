// Package ec2 is the cloud.Provider for EC2-compatible clouds: Amazon EC2
// and Eucalyptus 3.x/4.x, on github.com/aws/aws-sdk-go-v2/service/ec2.
//
// # Configuration
//
// New takes an endpoint URL with its path (Eucalyptus 4.x:
// http://CLC:8773/services/compute; 3.x: http://CLC:8773/services/Eucalyptus),
// a region, credentials and a signature version, each from the first
// source that has it: the Config, a eucarc file (ReadEucarc: the shell
// file Eucalyptus puts in every credentials zip, with its
// EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P) idiom), the
// euca2ools environment (EC2_URL, EC2_ACCESS_KEY, EC2_SECRET_KEY), then the
// AWS SDK's default chain (AWS_* variables, shared config, SSO, IMDS).
// Effective reports what was chosen.
//
// # Request signatures Eucalyptus accepts
//
// From the Eucalyptus source (github.com/eucalyptus/eucalyptus, tags 3.0.0
// to v4.4.2; paths under clc/modules/msgs/src/main/java/com/eucalyptus/):
//
//   - 3.0, 3.1, 3.2: query signatures only. ws/handlers/HmacHandler.java
//     requires the AWSAccessKeyId and Signature parameters and hands
//     SignatureVersion 1 or 2 to auth/login/Hmacv1LoginModule or
//     Hmacv2LoginModule; SignatureMethod is HmacSHA1 (the default) or
//     HmacSHA256. No Authorization header is read: SigV4 fails.
//   - 3.3 and later: Signature Version 4 as well, in the Authorization
//     header (AWS4-HMAC-SHA256) and in the query (X-Amz-Algorithm), added
//     by commit 101d85ff "Add support for AWS Signature V4 (EUCA-4648)",
//     January 2013, first tagged 3.3-m1 (auth/login/Hmacv4LoginModule.java,
//     ws/util/HmacUtils.java SignatureVariant). The v4 module checks neither
//     the region nor the service of the credential scope, hashes the body
//     of a form POST as AWS does (HmacHandler.processParametersForVariant
//     keeps only query-string parameters for v4), and retries a mismatch
//     with the path "/" for the AWS Java SDK. SigV2 stays accepted.
//   - 4.2 dropped SignatureVersion 1 (commit f7b87a04, EUCA-10449, removed
//     Hmacv1LoginModule); 4.x keeps v2 (HmacSHA1/HmacSHA256) and v4.
//   - Every version: the Timestamp (v2) or X-Amz-Date (v4) may be at most
//     StackConfiguration.CLOCK_SKEW_SEC (20 s) in the future and 15 min old
//     (ws/handlers/QueryTimestampHandler.java), and a signature seen in the
//     last 15 minutes is refused as a replay
//     (auth/login/SecurityContext.enqueueSignature). ISO 8601 timestamps
//     with milliseconds parse everywhere (crypto/util/Timestamps.java).
//   - The v2 check (Hmacv2LoginModule.makeSubjectString) accepts the Host
//     header with or without its port, and canonicalises with commons-codec
//     URLCodec, retrying with '*' as %2A: names and values that hold '~'
//     (which RFC 3986 and AWS leave as is, URLCodec encodes) cannot verify
//     on 3.x with v2. Keep '~' out of names, descriptions and tags there.
//
// The clients Eucalyptus shipped agree: euca2ools 3.0–3.2
// (github.com/eucalyptus/euca2ools, euca2ools/commands/ec2/__init__.py)
// sign EC2 requests with requestbuilder's QuerySigV2Auth; euca2ools 3.3
// (for Eucalyptus 4.2) switched to HmacV4Auth.
//
// So: SignatureV4 (the SDK's own signer) for AWS and Eucalyptus 3.3+;
// SignatureV2 for Eucalyptus 3.0–3.2, or any 3.x/4.x. Without a Signature
// the endpoint's path decides (DefaultSignature): /services/Eucalyptus,
// 3.x's path, gets v2; anything else v4.
// SignatureV2 is a finalize-step middleware that replaces the SDK's
// "Signing" middleware and signs the form body with HmacSHA256, with a
// millisecond Timestamp that strictly increases per client so that no two
// requests (a poll, an SDK retry) ever repeat a signature Eucalyptus would
// refuse as a replay.
//
// Other Eucalyptus notes: IDs are emi-/eki-/eri- where AWS has
// ami-/aki-/ari- (accepted everywhere an image, kernel or ramdisk ID is);
// Eucalyptus has no TagSpecification, so at a /services/ endpoint (or one
// that refused it once) tags are set with CreateTags right after each
// create, retried while the new id is "not found" (EC2's eventual
// consistency); elsewhere (AWS) they go in the create call (the call
// returns only when the resource is tagged either way); Eucalyptus
// 4.x binds compute requests strictly (ComputeQueryBinding:
// UnknownParameterStrategy.ERROR), so the SDK's automatic ClientToken is
// left out of CreateVolume, whose Eucalyptus message has no such field;
// an API version newer than the cloud knows (the SDK sends 2016-11-15,
// 4.4 knows up to 2016-09-15) falls back to the cloud's default binding
// (msgs/.../ws/protocol/BaseQueryBinding.java).
//
// # Errors and waits
//
// Errors are one line and name the object: `volume "vol-1": delete:
// VolumeInUse: …`. The EC2 codes that mean "no such resource"
// (InvalidInstanceID.NotFound, InvalidVolume.NotFound,
// InvalidSnapshot.NotFound, InvalidAMIID.NotFound, their .Malformed
// siblings, InvalidID …) wrap cloud.ErrNotFound; IncorrectState,
// IncorrectInstanceState, VolumeInUse and InvalidSnapshot.InUse wrap
// cloud.ErrIncorrectState. A describe that answers with an empty set (some
// Eucalyptus 3.x calls do for unknown IDs) is "not found" too.
//
// Calls return as soon as the cloud answers; waiting is the caller's. The
// Waiter helpers poll with exponential backoff (1 s doubling to 15 s,
// ±20 % jitter), bounded by a per-kind timeout and the context, and say
// what they waited for: "waiting for volume vol-1 to be available: …".
// They take the cloud interfaces and so work for every provider.
package ec2

// Package userdata reads and writes the user-data that tells nchookd how to boot
// an instance's installer.
//
// A user (or kscloud) launches an instance with user-data carrying a line
//
//	bootparams=<kernel command line>
//
// and optionally the directives kscloud.mode=bake|in-place, kscloud.installer=NAME
// and kscloud.vnc=yes|no, plus an inline kickstart as a text/x-kickstart MIME part
// (DESIGN.md §4). On the node, the pre-boot hook decodes the instance's base64
// <userData> with [DecodeBase64] and extracts the directives with [Parse]; the
// user-data may be plain text, gzip-compressed, a cloud-init MIME multipart, or a
// shell script / cloud-config carrying the directives as comment lines, so that one
// user-data can serve both the installer and cloud-init. On the client, `kscloud
// userdata` builds such user-data with [Render], and Parse reads it back.
//
// Everything in user-data is untrusted (DESIGN.md §7): decompression and MIME
// parsing are bounded by [Limits], the kernel command line is checked by
// [ValidateCmdline] (no control characters, at most [MaxCmdline] bytes), and every
// error is an [*Error] whose message is a single line that never echoes raw control
// characters from the input. Callers test the cause with errors.Is against the
// Err* sentinels.
//
// The package is pure Go, has no package-level initialisation beyond a few
// sentinel errors, and imports only the standard library, because it is linked
// into the hook binary whose start-up cost matters.
package userdata

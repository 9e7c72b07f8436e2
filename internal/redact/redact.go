// Package redact takes credentials out of URLs before they are recorded
// or printed: the user information of a kickstart URL (user:pass@), its
// query values (token=, a presigned URL's signature) and its fragment.
// Both binaries use it (kscloud for its output and provenance, nchookd for
// the installer command lines it shows), so it depends on nothing of
// either.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Redacted stands where a credential was.
const Redacted = "REDACTED"

// URL returns a URL fit to record or print: scheme, host, port and
// path are kept (they say where a kickstart came from), the user
// information (user:password@) becomes REDACTED@, every query value and
// the fragment become REDACTED (a token= or a presigned URL's
// X-Amz-Signature=; the names stay). Anything that is not such a URL (a
// file path) is returned unchanged.
func URL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	// An '@' past where the parser's authority ends ("http://u:123#x@h/"
	// parses as host u, port 123): a password may hold an unencoded '/',
	// '?' or '#'. Treated as unparseable, so nothing before that '@' is
	// kept (an '@' in a path or query costs its host name, never a secret).
	if _, rest, _ := strings.Cut(s, "://"); strings.LastIndex(rest, "@") > strings.IndexAny(rest+"/", "/?#") {
		err = errors.New("'@' after the authority")
	}
	if err != nil || u.Scheme == "" || u.Host == "" {
		// Unparseable: keep only what precedes any credential or query.
		return redactRaw(s)
	}
	changed := false
	if u.User != nil {
		u.User = url.User(Redacted)
		changed = true
	}
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
		changed = true
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = Redacted, ""
		changed = true
	}
	if !changed {
		return s
	}
	return u.String()
}

// redactQuery keeps a query's names and replaces every value.
func redactQuery(q string) string {
	parts := strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		parts[i] = k + "=" + Redacted
	}
	return strings.Join(parts, "&")
}

// redactRaw cuts an unparseable URL-like string after its scheme and host
// (past the last @: a password may hold an unencoded '/', '?' or '#',
// which is often why it does not parse), dropping its query and fragment.
func redactRaw(s string) string {
	scheme, rest, _ := strings.Cut(s, "://")
	cred := false
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest, cred = rest[at+1:], true
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i] + "?" + Redacted
	}
	auth, path, _ := strings.Cut(rest, "/")
	if cred {
		auth = Redacted + "@" + auth
	}
	if path != "" || strings.Contains(rest, "/") {
		return scheme + "://" + auth + "/" + path
	}
	return scheme + "://" + auth
}

// reURL finds URLs in free text (error messages, command lines).
var reURL = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// Text redacts every URL in s (see URL): error messages and
// kernel command lines that name a kickstart URL.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return reURL.ReplaceAllStringFunc(s, URL)
}

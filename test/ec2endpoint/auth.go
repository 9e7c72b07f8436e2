package ec2endpoint

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxAge is how long a signature stays valid, and how long Eucalyptus
// remembers it for its replay check (SecurityContext).
const maxAge = 15 * time.Minute

// authenticate checks the request's signature (SigV4 in the Authorization
// header, or SigV2 in the parameters) against the configured keys, the
// request time, and the replay cache. It is written from the AWS
// specifications, independently of the client's signer, so that a client
// bug cannot cancel itself out.
func (s *Server) authenticate(r *http.Request, body []byte, all url.Values, now time.Time) *apiError {
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "AWS4-HMAC-SHA256") {
		return s.verifyV4(r, body, auth, now)
	}
	if all.Get("X-Amz-Algorithm") != "" {
		return apiErr("AuthFailure", "Signature Version 4 in the query string is not supported by this endpoint")
	}
	switch all.Get("SignatureVersion") {
	case "2":
		return s.verifyV2(r, all, now)
	case "":
		return apiErr("AuthFailure", "AWS was not able to authenticate the request: access credentials are missing")
	default:
		return apiErr("AuthFailure", "Signature version %s is not supported", all.Get("SignatureVersion"))
	}
}

func (s *Server) secretFor(akid string) (string, bool) {
	if akid == s.opts.AccessKey {
		return s.opts.SecretKey, true
	}
	return "", false
}

// checkTime applies the dialect's clock limits to a request time.
func (s *Server) checkTime(t, now time.Time) *apiError {
	ahead, behind := s.opts.Dialect.skew()
	if t.After(now.Add(ahead)) {
		return apiErr("RequestExpired", "Request is from the future: %s (now %s)", t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if t.Before(now.Add(-behind)) {
		return apiErr("RequestExpired", "Request has expired: %s (now %s)", t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// ---- Signature Version 4 ----

func (s *Server) verifyV4(r *http.Request, body []byte, auth string, now time.Time) *apiError {
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimSpace(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256")), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = v
		}
	}
	cred, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if cred == "" || signed == "" || sig == "" {
		return apiErr("AuthFailure", "Authorization header is missing Credential, SignedHeaders or Signature")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return apiErr("AuthFailure", "Credential %q is not AKID/date/region/service/aws4_request", cred)
	}
	secret, ok := s.secretFor(scope[0])
	if !ok {
		return apiErr("AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return apiErr("AuthFailure", "X-Amz-Date %q is not yyyyMMddTHHmmssZ", amzDate)
	}
	if e := s.checkTime(t, now); e != nil {
		return e
	}
	if scope[1] != amzDate[:8] {
		return apiErr("SignatureDoesNotMatch", "Credential date %s does not match X-Amz-Date %s", scope[1], amzDate)
	}
	headers := strings.Split(signed, ";")
	if !sort.StringsAreSorted(headers) || !contains(headers, "host") {
		return apiErr("SignatureDoesNotMatch", "SignedHeaders %q must be sorted and include host", signed)
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(canonicalPath(r.URL.EscapedPath()) + "\n")
	canon.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, h := range headers {
		canon.WriteString(h + ":" + headerValue(r, h) + "\n")
	}
	canon.WriteString("\n" + signed + "\n" + payload)
	credScope := scope[1] + "/" + scope[2] + "/" + scope[3] + "/aws4_request"
	want := SignV4(secret, credScope, StringToSignV4(amzDate, credScope, canon.String()))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(sig))) {
		return apiErr("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	if e := s.replay("v4:" + sig); e != nil {
		return e
	}
	s.countSignature("v4")
	return nil
}

// StringToSignV4 is the Signature Version 4 string to sign for a
// canonical request, at amzDate (yyyyMMddTHHmmssZ), in scope
// (date/region/service/aws4_request).
func StringToSignV4(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// SignV4 signs a string to sign with the key derived from secret and scope
// (hex, as in the Authorization header).
func SignV4(secret, scope, stringToSign string) string {
	k := []byte("AWS4" + secret)
	for _, p := range strings.Split(scope, "/") {
		k = hmacSum(sha256.New, k, p)
	}
	return hex.EncodeToString(hmacSum(sha256.New, k, stringToSign))
}

func hmacSum(h func() hash.Hash, key []byte, data string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func canonicalPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// canonicalQuery is SigV4's canonical query string: names and values
// encoded per RFC 3986, sorted by encoded name (byte order), then by
// value for a repeated name — not as whole "name=value" strings, which
// puts InstanceId.10 before InstanceId.2's "=".
func canonicalQuery(q url.Values) string {
	return sortedByName(q, "")
}

// sortedByName encodes every name=value pair of q but skip, sorted by the
// encoded name in byte order, then by the encoded value, joined with "&".
// Both SigV2 ("sort the UTF-8 query string components by parameter name
// with natural byte ordering") and SigV4 ("sort the parameter names by
// character code point in ascending order … then by value") sort so.
func sortedByName(q url.Values, skip string) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		if k == skip {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, kv{rfc3986(k), rfc3986(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k + "=" + p.v)
	}
	return b.String()
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length": // Go moves it out of the header map
		return strconv.FormatInt(r.ContentLength, 10)
	}
	vs := r.Header.Values(name)
	for i, v := range vs {
		vs[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vs, ",")
}

// ---- Signature Version 2 ----

func (s *Server) verifyV2(r *http.Request, all url.Values, now time.Time) *apiError {
	secret, ok := s.secretFor(all.Get("AWSAccessKeyId"))
	if !ok {
		return apiErr("AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	var newHash func() hash.Hash
	switch all.Get("SignatureMethod") {
	case "HmacSHA256":
		newHash = sha256.New
	case "HmacSHA1", "":
		newHash = sha1.New
	default:
		return apiErr("AuthFailure", "SignatureMethod %q is not HmacSHA256 or HmacSHA1", all.Get("SignatureMethod"))
	}
	switch {
	case all.Get("Timestamp") != "":
		t, err := parseISO(all.Get("Timestamp"))
		if err != nil {
			return apiErr("AuthFailure", "Timestamp %q is not ISO 8601", all.Get("Timestamp"))
		}
		if e := s.checkTime(t, now); e != nil {
			return e
		}
	case all.Get("Expires") != "":
		t, err := parseISO(all.Get("Expires"))
		if err != nil {
			return apiErr("AuthFailure", "Expires %q is not ISO 8601", all.Get("Expires"))
		}
		if now.After(t) {
			return apiErr("RequestExpired", "Request has expired: Expires %s", all.Get("Expires"))
		}
	default:
		return apiErr("MissingParameter", "The request must contain the parameter Timestamp or Expires")
	}
	sig := all.Get("Signature")
	if sig == "" {
		return apiErr("MissingParameter", "The request must contain the parameter Signature")
	}
	// Eucalyptus accepts the Host header with and without its port
	// (Hmacv2LoginModule); so does this endpoint.
	hosts := []string{r.Host}
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		hosts = append(hosts, h)
	}
	for _, host := range hosts {
		sts := r.Method + "\n" + strings.ToLower(host) + "\n" + canonicalPath(r.URL.EscapedPath()) + "\n" + canonicalV2(all)
		want := base64.StdEncoding.EncodeToString(hmacSum(newHash, []byte(secret), sts))
		if hmac.Equal([]byte(want), []byte(sig)) {
			if e := s.replay("v2:" + sig); e != nil {
				return e
			}
			s.countSignature("v2")
			return nil
		}
	}
	return apiErr("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
}

// canonicalV2 is SigV2's canonical query string: every parameter but
// Signature, sorted by name.
func canonicalV2(all url.Values) string {
	return sortedByName(all, "Signature")
}

// rfc3986 percent-encodes all but the unreserved characters.
func rfc3986(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		}
	}
	return b.String()
}

func parseISO(s string) (time.Time, error) {
	var err error
	for _, f := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.000"} {
		var t time.Time
		if t, err = time.Parse(f, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ---- replay cache ----

// replays remembers signatures as Eucalyptus does (SecurityContext): a
// signature used again more than the grace (replay_skew_window_sec, 3 s)
// after its first use, within the time it stays valid, is refused. The
// aws dialect has no such check: AWS limits requests by time only.
type replays struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (s *Server) replay(sig string) *apiError {
	check, grace := s.opts.Dialect.replayCheck()
	if s.opts.AllowReplay || !check {
		return nil
	}
	_, behind := s.opts.Dialect.skew()
	now := time.Now()
	s.replays.mu.Lock()
	defer s.replays.mu.Unlock()
	if s.replays.seen == nil {
		s.replays.seen = map[string]time.Time{}
	}
	if len(s.replays.seen) > 4096 {
		for k, t := range s.replays.seen {
			if now.Sub(t) > behind {
				delete(s.replays.seen, k)
			}
		}
	}
	if t, ok := s.replays.seen[sig]; ok && now.Sub(t) <= behind {
		if now.Sub(t) <= grace {
			return nil
		}
		return apiErr("AuthFailure", "Message replay detected. Same signature was used within the last 15 minutes")
	}
	s.replays.seen[sig] = now
	return nil
}

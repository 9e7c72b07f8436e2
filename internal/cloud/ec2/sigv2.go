package ec2

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Signature versions the provider can sign requests with.
const (
	SignatureV4 = "v4" // AWS Signature Version 4 (the SDK's signer; the default)
	SignatureV2 = "v2" // AWS Signature Version 2, HmacSHA256 query signing (Eucalyptus 3.0–3.2)
)

// ParseSignature checks a --signature value: "v2", "v4" or "" (v4).
func ParseSignature(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "v4", "4", "sigv4":
		return SignatureV4, nil
	case "v2", "2", "sigv2":
		return SignatureV2, nil
	}
	return "", fmt.Errorf("signature %q: want v2 or v4", s)
}

// v2TimeFormat is the Timestamp parameter's format: ISO 8601 with
// milliseconds, which every Eucalyptus 3.x/4.x parses
// (crypto/util/Timestamps.java). Milliseconds keep two requests made within
// the same second from carrying the same signature, which Eucalyptus
// rejects as a replay for 15 minutes (SecurityContext.enqueueSignature).
const v2TimeFormat = "2006-01-02T15:04:05.000Z"

// sigV2 is a finalize-step middleware that takes the place of the SDK's
// "Signing" middleware: it adds AWSAccessKeyId, SignatureVersion=2,
// SignatureMethod=HmacSHA256, Timestamp (and SecurityToken) to the query
// parameters of an EC2 Query request (the form body of a POST, the URL
// query of a GET), and the Signature computed over them.
type sigV2 struct {
	creds aws.CredentialsProvider
	now   func() time.Time
	// clock hands out the timestamps; nil: own, this client's alone.
	clock *v2Clock
	own   v2Clock
}

// v2Clock hands out strictly increasing millisecond timestamps.
type v2Clock struct {
	mu   sync.Mutex
	last time.Time
}

// processV2Clock is shared by every client on the real clock: Eucalyptus
// refuses a signature seen in the last 15 minutes whichever client sent
// it, and two clients of one process (a provider per command, per test)
// may sign the same request in the same millisecond.
var processV2Clock = &v2Clock{}

// ID keeps the name of the middleware it replaces, so the rest of the
// stack (which orders itself relative to "Signing") is undisturbed.
func (*sigV2) ID() string { return "Signing" }

// timestamp returns a strictly increasing millisecond timestamp: no two
// requests of one client (of this process, on the real clock) carry the
// same Timestamp, hence the same signature.
func (s *sigV2) timestamp() string {
	c := s.clock
	if c == nil {
		c = &s.own
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := s.now().UTC().Truncate(time.Millisecond)
	if !t.After(c.last) {
		t = c.last.Add(time.Millisecond)
	}
	c.last = t
	return t.Format(v2TimeFormat)
}

func (s *sigV2) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("signature v2: unexpected transport type %T", in.Request)
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("signature v2: credentials: %w", err)
	}
	var body []byte
	if st := req.GetStream(); st != nil {
		if body, err = io.ReadAll(st); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("signature v2: read body: %w", err)
		}
	}
	inQuery := req.Method == "GET" || len(body) == 0 && req.URL.RawQuery != ""
	raw := string(body)
	if inQuery {
		raw = req.URL.RawQuery
	}
	params, err := url.ParseQuery(raw)
	if err != nil {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("signature v2: parse parameters: %w", err)
	}
	for _, k := range []string{"Signature", "SignatureVersion", "SignatureMethod", "AWSAccessKeyId", "Timestamp", "Expires", "SecurityToken"} {
		params.Del(k)
	}
	params.Set("AWSAccessKeyId", creds.AccessKeyID)
	params.Set("SignatureVersion", "2")
	params.Set("SignatureMethod", "HmacSHA256")
	params.Set("Timestamp", s.timestamp())
	if creds.SessionToken != "" {
		params.Set("SecurityToken", creds.SessionToken)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	sts := StringToSignV2(req.Method, host, req.URL.EscapedPath(), params)
	params.Set("Signature", SignV2(creds.SecretAccessKey, sts))
	enc := EncodeV2(params)

	if inQuery {
		req.URL.RawQuery = enc
		in.Request = req
	} else {
		r2, err := req.SetStream(bytes.NewReader([]byte(enc)))
		if err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("signature v2: set body: %w", err)
		}
		in.Request = r2
	}
	return next.HandleFinalize(ctx, in)
}

// StringToSignV2 is the Signature Version 2 string to sign: the verb, the
// lower-cased Host header, the request path ("/" when empty) and the
// canonical query string, one per line.
func StringToSignV2(method, host, path string, params url.Values) string {
	if path == "" {
		path = "/"
	}
	return method + "\n" + strings.ToLower(host) + "\n" + path + "\n" + canonicalV2(params)
}

// canonicalV2 sorts the parameters by name (byte order) and encodes names
// and values per RFC 3986, leaving out Signature.
func canonicalV2(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(EscapeV2(k))
			b.WriteByte('=')
			b.WriteString(EscapeV2(v))
		}
	}
	return b.String()
}

// EncodeV2 encodes params as canonicalV2 does, Signature included.
func EncodeV2(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range params[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(EscapeV2(k))
			b.WriteByte('=')
			b.WriteString(EscapeV2(v))
		}
	}
	return b.String()
}

// SignV2 is base64(HMAC-SHA256(secret, stringToSign)).
func SignV2(secret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// EscapeV2 percent-encodes s per RFC 3986 as Signature Version 2 requires:
// every byte but A–Z a–z 0–9 - _ . ~ becomes %XX (upper-case hex), a space
// %20, never '+'.
func EscapeV2(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// addSigV2 swaps the SDK's v4 "Signing" middleware for sigV2.
func addSigV2(s *sigV2) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		if _, err := st.Finalize.Swap("Signing", s); err != nil {
			return fmt.Errorf("signature v2: %w", err)
		}
		return nil
	}
}

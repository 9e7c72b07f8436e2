// Package opennebula is kscloud's OpenNebula provider: an XML-RPC client
// of oned (5.12 → 7.x) mapped onto the cloud interfaces, plus the
// OpenNebula-specific install steps (in place: hold, lease into ip=,
// release, POWEROFF, updateconf, resume; bake: DATABLOCK target,
// disksaveas, provenance on the image). Facts and their sources:
// shared/research/opennebula.md.
//
// Mapping: instances are VMs ("vm-<ID>"); volumes are persistent
// DATABLOCK images ("vol-<ID>"); snapshots are clones of them
// ("snap-<ID>"); images are images ("img-<ID>"; a bare number is accepted
// wherever an image is named). Tags are attributes: kscloud:build,
// kscloud:creator and kscloud:role become KSCLOUD_BUILD, KSCLOUD_CREATOR
// and KSCLOUD_ROLE (names are [A-Z0-9_]); any other key travels as a
// KSCLOUD_TAG=[KEY, VALUE] vector. On VMs they are in USER_TEMPLATE, on
// images in TEMPLATE.
package opennebula

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/kolo/xmlrpc"

	"github.com/kscloud/kscloud/internal/cloud"
)

// OpenNebula error codes (include/Request.h, identical 5.12 → 7.0).
const (
	CodeAuthentication = 0x100
	CodeAuthorization  = 0x200
	CodeNoExists       = 0x400
	CodeAction         = 0x800
	CodeXMLRPCAPI      = 0x1000
	CodeInternal       = 0x2000
	CodeAllocate       = 0x4000
	CodeLocked         = 0x8000
)

// ErrAuth wraps authentication and authorization failures.
var ErrAuth = errors.New("not authorized")

// Error is a failure oned returned: its message (with oned's "[method] "
// prefix) and code.
type Error struct {
	Method string
	Code   int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap maps the code onto the cloud sentinels.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeNoExists:
		return cloud.ErrNotFound
	case CodeAction:
		return cloud.ErrIncorrectState
	case CodeAuthentication, CodeAuthorization:
		return ErrAuth
	}
	return nil
}

// client speaks XML-RPC to oned: kolo/xmlrpc encodes and decodes, the
// request is ours so it carries the context (as goca's CallContext does).
type client struct {
	url     string
	session string
	user    string
	http    *http.Client
	calls   func(method string) // counts calls (tests, bench)
}

// call runs method with the session first and returns the success value
// (an int or a string). A *tmpl argument is sent as its XML text.
func (c *client) call(ctx context.Context, method string, args ...any) (any, error) {
	args = slices.Clone(args)
	for i, a := range args {
		if t, ok := a.(*tmpl); ok {
			if t.bad != "" {
				return nil, fmt.Errorf("opennebula %s: attribute %s: the value contains \"]]>\", which OpenNebula cannot store", method, t.bad)
			}
			args[i] = t.String()
		}
	}
	body, err := xmlrpc.EncodeMethodCall(method, append([]any{c.session}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("opennebula %s: encode: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("opennebula %s: %w", c.url, err)
	}
	req.Header.Set("Content-Type", "text/xml")
	if c.calls != nil {
		c.calls(method)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("opennebula %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxReply)+1))
	if err != nil {
		return nil, fmt.Errorf("opennebula %s: reading the reply to %s: %w", c.url, method, err)
	}
	if len(data) > maxReply {
		return nil, fmt.Errorf("opennebula %s: the reply to %s is over %d MiB: not read", c.url, method, maxReply>>20)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("opennebula %s: %s answered HTTP %s", c.url, method, resp.Status)
	}
	r := xmlrpc.Response(data)
	if err := r.Err(); err != nil {
		var f xmlrpc.FaultError
		if errors.As(err, &f) {
			return nil, &Error{Method: method, Code: f.Code, Msg: fmt.Sprintf("[%s] XML-RPC fault %d: %s", method, f.Code, f.String)}
		}
		return nil, fmt.Errorf("opennebula %s: bad reply to %s: %w", c.url, method, err)
	}
	var out []any
	if err := r.Unmarshal(&out); err != nil {
		return nil, fmt.Errorf("opennebula %s: bad reply to %s: %w", c.url, method, err)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("opennebula %s: reply to %s has %d elements, want at least 2", c.url, method, len(out))
	}
	ok, isBool := out[0].(bool)
	if !isBool {
		return nil, fmt.Errorf("opennebula %s: reply to %s does not start with a boolean", c.url, method)
	}
	if ok {
		return out[1], nil
	}
	msg, _ := out[1].(string)
	code := 0
	if len(out) > 2 {
		if n, isInt := out[2].(int64); isInt {
			code = int(n)
		}
	}
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\n", " "))
	e := &Error{Method: method, Code: code, Msg: msg}
	if code == CodeAuthentication {
		e.Msg = fmt.Sprintf("%s (OpenNebula at %s, user %q)", msg, c.url, c.user)
	}
	return nil, e
}

// maxReply bounds what is read of one XML-RPC reply: a real
// one.vmpool.infoextended of a large cloud is big, but not this big.
var maxReply = 256 << 20

// callInt runs a call whose success value is an id.
func (c *client) callInt(ctx context.Context, method string, args ...any) (int, error) {
	v, err := c.call(ctx, method, args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("opennebula %s: %s returned %T, want an id", c.url, method, v)
	}
	if n < 0 || int64(int(n)) != n {
		return 0, fmt.Errorf("opennebula %s: %s returned id %d: oned's ids are never negative", c.url, method, n)
	}
	return int(n), nil
}

// callString runs a call whose success value is a string (XML, version).
func (c *client) callString(ctx context.Context, method string, args ...any) (string, error) {
	v, err := c.call(ctx, method, args...)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("opennebula %s: %s returned %T, want a string", c.url, method, v)
	}
	return s, nil
}

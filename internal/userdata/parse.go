package userdata

import (
	"bytes"
	"strconv"
	"strings"
)

// Mode says what happens after the installer finishes.
type Mode string

const (
	// ModeBake lets the installer's power action end the instance, so that
	// kscloud can turn its disk into an image. It is the default.
	ModeBake Mode = "bake"
	// ModeInPlace reboots the instance from its freshly installed disk.
	ModeInPlace Mode = "in-place"
)

// Request holds the directives found in an instance's user-data.
type Request struct {
	// BootParams is the kernel command line: the text after "bootparams=",
	// verbatim except that trailing '\r', spaces and tabs are removed. It has
	// passed ValidateCmdline.
	BootParams string
	// HasBootParams reports whether a bootparams= line was found. Without one
	// nchookd leaves the instance alone.
	HasBootParams bool
	// Mode is the kscloud.mode directive, ModeBake when not given.
	Mode Mode
	// ModeSet reports whether kscloud.mode was given.
	ModeSet bool
	// Installer is the kscloud.installer directive: the name of a kernel+initrd
	// in the operator's catalog, "" when absent. It matches
	// ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
	Installer string
	// VNC is the kscloud.vnc directive (yes|no|true|false|1|0, any case).
	VNC bool
	// Kickstart is the body of the text/x-kickstart MIME part, nil when there is
	// none. It is a copy, decompressed if it was compressed.
	Kickstart []byte
}

// Limits bounds the work Parse does on untrusted user-data. A zero or negative
// field means the default from DefaultLimits.
type Limits struct {
	// MaxInput is the largest user-data accepted, in bytes, after base64
	// decoding and before decompression.
	MaxInput int
	// MaxExpanded is the total number of bytes all gzip decompression in the
	// user-data may produce, across all parts.
	MaxExpanded int
	// MaxParts is the total number of MIME parts across all nesting levels.
	MaxParts int
	// MaxDepth is the deepest multipart nesting accepted; a top-level multipart
	// has depth 1. Compressed layers on one path are limited to MaxDepth+1.
	MaxDepth int
	// MaxKickstart is the largest inline kickstart accepted, in bytes.
	MaxKickstart int
}

// DefaultLimits returns the limits nchookd uses: 64 KiB of input, 1 MiB
// decompressed, 64 MIME parts, multipart depth 4, and a 256 KiB kickstart.
func DefaultLimits() Limits {
	return Limits{
		MaxInput:     64 << 10,
		MaxExpanded:  1 << 20,
		MaxParts:     64,
		MaxDepth:     4,
		MaxKickstart: 256 << 10,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxInput <= 0 {
		l.MaxInput = d.MaxInput
	}
	if l.MaxExpanded <= 0 {
		l.MaxExpanded = d.MaxExpanded
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxKickstart <= 0 {
		l.MaxKickstart = d.MaxKickstart
	}
	return l
}

// The directive keys, in the order Render writes them.
const (
	keyBootParams = iota
	keyMode
	keyInstaller
	keyVNC
	numKeys
)

var keyNames = [numKeys]string{"bootparams", "kscloud.mode", "kscloud.installer", "kscloud.vnc"}

// Parse extracts nchookd's directives from decoded user-data (see DecodeBase64).
//
// The user-data may be, in any combination: plain text with a line
// "bootparams=..."; gzip-compressed data; a MIME multipart as cloud-init writes
// it, with parts possibly base64 or quoted-printable encoded and/or gzip
// compressed (Content-Type application/gzip or application/x-gzip, or the gzip
// magic bytes), nested up to lim.MaxDepth; a shell script or cloud-config
// carrying the directives as comment lines such as "# bootparams=...".
//
// A directive is a line whose key starts the line, after optional white space
// and '#' marks, immediately followed by '='. The keys are "bootparams",
// "kscloud.mode", "kscloud.installer" and "kscloud.vnc"; any other
// "kscloud.<key>=" is an error (ErrUnknownDirective). Directives are read from
// the whole text of non-MIME user-data and from every text/* MIME part except
// text/x-kickstart, whose body becomes Request.Kickstart (at most one such part).
// A key repeated with the same value is accepted; with a different value it is
// an error (ErrConflict).
//
// Empty user-data, or user-data without directives, gives a Request with
// HasBootParams false and Mode ModeBake, and no error. Errors are *Error values.
func Parse(data []byte, lim Limits) (*Request, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxInput {
		return nil, &Error{Err: errf(ErrTooLarge, "input is %d bytes, %d over the %d-byte limit",
			len(data), len(data)-lim.MaxInput, lim.MaxInput)}
	}
	p := parser{lim: lim, budget: lim.MaxExpanded}
	if err := p.document(data, "", "", 0, 0, false); err != nil {
		return nil, err
	}
	req := p.req
	if !req.ModeSet {
		req.Mode = ModeBake
	}
	return &req, nil
}

// parser holds the state of one Parse call.
type parser struct {
	lim    Limits
	budget int // bytes gzip decompression may still produce
	parts  int // MIME parts seen so far, all levels

	req     Request
	have    [numKeys]bool
	value   [numKeys]string // normalised value, for conflict detection
	firstAt [numKeys]string // where the directive was first seen
	ksAt    string          // where the kickstart was found
	vncSet  bool
}

// document processes data of unknown type: the whole user-data, or the output of
// a gzip part. gz says data came straight out of gzip decompression; zdepth
// counts gzip layers on this path.
func (p *parser) document(data []byte, where, path string, depth, zdepth int, gz bool) error {
	if isGzip(data) {
		at := join(where, "gzip")
		if gz {
			return &Error{Where: at, Err: errf(ErrNesting, "compressed data inside compressed data")}
		}
		out, err := p.gunzip(data, zdepth)
		if err != nil {
			return &Error{Where: at, Err: err}
		}
		return p.document(out, where, path, depth, zdepth+1, true)
	}
	h, body, isMIME, err := sniffMIME(data)
	if err != nil {
		return &Error{Where: join(where, "MIME header"), Err: err}
	}
	if isMIME {
		return p.entity(h, body, where, path, depth, zdepth)
	}
	return p.text(data, where)
}

// entity processes one MIME entity: the whole user-data when it is MIME, or one
// part of a multipart. depth is the depth of the enclosing multipart (0 at the
// top level).
func (p *parser) entity(h header, body []byte, where, path string, depth, zdepth int) error {
	mt, params, err := h.mediaType()
	if err != nil {
		return &Error{Where: join(where, "Content-Type"), Err: err}
	}
	body, err = h.decodeBody(body)
	if err != nil {
		step := "Content-Transfer-Encoding"
		if enc := h.encoding(); enc == "base64" || enc == "quoted-printable" {
			step = enc
		}
		return &Error{Where: join(where, step), Err: err}
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		return p.multipart(body, params["boundary"], where, path, depth+1, zdepth)
	case mt == "application/gzip" || mt == "application/x-gzip":
		if !isGzip(body) {
			return &Error{Where: join(where, "gzip"), Err: errf(ErrGzip, "%s part does not start with the gzip magic", mt)}
		}
		// document decompresses it and sniffs what comes out, as cloud-init does.
		return p.document(body, where, path, depth, zdepth, false)
	case strings.HasPrefix(mt, "text/"):
		if isGzip(body) {
			out, err := p.gunzip(body, zdepth)
			if err != nil {
				return &Error{Where: join(where, "gzip"), Err: err}
			}
			if isGzip(out) {
				return &Error{Where: join(where, "gzip"), Err: errf(ErrNesting, "compressed data inside compressed data")}
			}
			body = out
		}
		if mt == "text/x-kickstart" {
			return p.kickstart(body, where)
		}
		return p.text(body, where)
	default:
		// Other types (images, application/octet-stream, ...) carry no directives.
		return nil
	}
}

// multipart processes the body of a multipart entity at the given depth.
func (p *parser) multipart(body []byte, boundary, where, path string, depth, zdepth int) error {
	at := where
	if at == "" {
		at = "MIME"
	}
	if depth > p.lim.MaxDepth {
		return &Error{Where: at, Err: errf(ErrNesting, "multipart nesting exceeds the depth limit of %d", p.lim.MaxDepth)}
	}
	if boundary == "" {
		return &Error{Where: at, Err: errf(ErrMIME, "multipart without a boundary parameter")}
	}
	dash := "--" + boundary
	_, next, closing, ok := findDelimiter(body, 0, dash)
	if !ok {
		return &Error{Where: at, Err: errf(ErrMIME, "boundary %s not found", quote(boundary))}
	}
	for n := 1; !closing; n++ {
		start := next
		var lineStart int
		lineStart, next, closing, ok = findDelimiter(body, start, dash)
		if !ok {
			return &Error{Where: at, Err: errf(ErrMIME, "part %d has no closing boundary (truncated user-data?)", n)}
		}
		p.parts++
		if p.parts > p.lim.MaxParts {
			return &Error{Where: at, Err: errf(ErrTooManyParts, "more than %d MIME parts", p.lim.MaxParts)}
		}
		cpath := strconv.Itoa(n)
		if path != "" {
			cpath = path + "." + cpath
		}
		cwhere := "MIME part " + cpath
		h, pbody, err := parseHeader(body[start:partEnd(body, start, lineStart)])
		if err != nil {
			return &Error{Where: join(cwhere, "header"), Err: err}
		}
		if err := p.entity(h, pbody, cwhere, cpath, depth, zdepth); err != nil {
			return err
		}
	}
	return nil
}

// gunzip decompresses a gzip stream within the remaining expansion budget and
// charges what it produced to the budget.
func (p *parser) gunzip(data []byte, zdepth int) ([]byte, error) {
	if zdepth >= p.lim.MaxDepth+1 {
		return nil, errf(ErrNesting, "compressed data nesting exceeds the limit of %d layers", p.lim.MaxDepth+1)
	}
	out, err := gunzipBounded(data, p.budget)
	if err != nil {
		if err == errOverBudget {
			return nil, errf(ErrTooLarge, "expanded size exceeds %d bytes", p.lim.MaxExpanded)
		}
		return nil, err
	}
	p.budget -= len(out)
	return out, nil
}

// kickstart records the body of a text/x-kickstart part.
func (p *parser) kickstart(body []byte, where string) error {
	if p.req.Kickstart != nil {
		return &Error{Where: where, Err: errf(ErrConflict, "second text/x-kickstart part (the first is at %s)", topLevel(p.ksAt))}
	}
	if len(body) == 0 {
		return &Error{Where: where, Err: errf(ErrBadValue, "text/x-kickstart part is empty")}
	}
	if len(body) > p.lim.MaxKickstart {
		return &Error{Where: where, Err: errf(ErrTooLarge, "kickstart is %d bytes, %d over the %d-byte limit",
			len(body), len(body)-p.lim.MaxKickstart, p.lim.MaxKickstart)}
	}
	p.req.Kickstart = bytes.Clone(body)
	p.ksAt = where
	return nil
}

// text reads directives from every line of data. A UTF-8 byte order mark, as
// some editors write, does not hide a directive on the first line.
func (p *parser) text(data []byte, where string) error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if err := p.line(line, where, n); err != nil {
			return err
		}
	}
	return nil
}

// line handles one line of text: n is its 1-based number within where.
func (p *parser) line(line []byte, where string, n int) error {
	key, val, ok, err := directive(line)
	if !ok {
		return nil
	}
	at := join(where, "line "+strconv.Itoa(n))
	if err != nil {
		return &Error{Where: at, Err: err}
	}
	norm, err := p.set(key, val)
	if err != nil {
		return &Error{Where: join(at, keyNames[key]), Err: err}
	}
	if p.have[key] {
		if p.value[key] != norm {
			return &Error{Where: join(at, keyNames[key]), Err: errf(ErrConflict, "%s differs from %s given at %s",
				quote(norm), quote(p.value[key]), p.firstAt[key])}
		}
		return nil
	}
	p.have[key], p.value[key], p.firstAt[key] = true, norm, at
	return nil
}

// directive recognises a directive line. ok is false when the line is not a
// directive; err is set (with ok true) for an unknown "kscloud." key.
func directive(line []byte) (key int, val []byte, ok bool, err error) {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '#') {
		i++
	}
	rest := line[i:]
	const bp, ks = "bootparams=", "kscloud."
	if bytes.HasPrefix(rest, []byte(bp)) {
		return keyBootParams, rest[len(bp):], true, nil
	}
	if !bytes.HasPrefix(rest, []byte(ks)) {
		return 0, nil, false, nil
	}
	name := rest[len(ks):]
	j := 0
	for j < len(name) && isKeyChar(name[j]) {
		j++
	}
	if j == len(name) || name[j] != '=' {
		return 0, nil, false, nil // "kscloud.example.com is ...": not a directive
	}
	val = name[j+1:]
	switch string(name[:j]) {
	case "mode":
		return keyMode, val, true, nil
	case "installer":
		return keyInstaller, val, true, nil
	case "vnc":
		return keyVNC, val, true, nil
	}
	return 0, nil, true, errf(ErrUnknownDirective, "unknown directive %s (known: bootparams, kscloud.mode, kscloud.installer, kscloud.vnc)",
		quote(rest[:len(ks)+j]))
}

func isKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// set validates the value of a directive, stores it in the request (the first
// occurrence wins; later ones must agree) and returns its normalised form.
func (p *parser) set(key int, raw []byte) (string, error) {
	switch key {
	case keyBootParams:
		v := string(bytes.TrimRight(raw, " \t\r"))
		if err := checkCmdline(v); err != nil {
			return "", err
		}
		if !p.req.HasBootParams {
			p.req.BootParams, p.req.HasBootParams = v, true
		}
		return v, nil
	case keyMode:
		m, err := parseMode(string(bytes.Trim(raw, " \t\r")))
		if err != nil {
			return "", err
		}
		if !p.req.ModeSet {
			p.req.Mode, p.req.ModeSet = m, true
		}
		return string(m), nil
	case keyInstaller:
		v := string(bytes.Trim(raw, " \t\r"))
		if err := checkInstaller(v); err != nil {
			return "", err
		}
		if p.req.Installer == "" {
			p.req.Installer = v
		}
		return v, nil
	default: // keyVNC
		on, err := parseBool(string(bytes.Trim(raw, " \t\r")))
		if err != nil {
			return "", err
		}
		if !p.vncSet {
			p.req.VNC, p.vncSet = on, true
		}
		if on {
			return "yes", nil
		}
		return "no", nil
	}
}

func parseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeBake, ModeInPlace:
		return Mode(s), nil
	}
	return "", errf(ErrBadValue, "%s is not %q or %q", quote(s), ModeBake, ModeInPlace)
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "true", "1":
		return true, nil
	case "no", "false", "0":
		return false, nil
	}
	return false, errf(ErrBadValue, "%s is not one of yes, no, true, false, 1, 0", quote(s))
}

// CheckInstaller checks an installer name as kscloud.installer= takes it
// (the same names name an OpenNebula catalog installer); the error wraps
// ErrBadValue.
func CheckInstaller(name string) error { return checkInstaller(name) }

// checkInstaller checks an installer name against ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
func checkInstaller(s string) error {
	ok := len(s) >= 1 && len(s) <= 64 && s[0] != '.' && s[0] != '_' && s[0] != '-'
	for i := 0; ok && i < len(s); i++ {
		ok = isKeyChar(s[i])
	}
	if !ok {
		return errf(ErrBadValue, "installer name %s must be 1-64 characters from A-Z a-z 0-9 . _ - starting with a letter or digit", quote(s))
	}
	return nil
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// topLevel names the location of something found outside any MIME part.
func topLevel(where string) string {
	if where == "" {
		return "the top level"
	}
	return where
}

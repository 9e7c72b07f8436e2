package userdata

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Sentinel errors. Every error returned by this package is an [*Error] wrapping
// exactly one of these; test for them with errors.Is.
var (
	// ErrBase64 means the user-data (or a MIME part) is not valid base64.
	ErrBase64 = errors.New("invalid base64")
	// ErrTooLarge means a size limit was exceeded: the input, the total
	// decompressed size, the kickstart, or the rendered user-data.
	ErrTooLarge = errors.New("too large")
	// ErrNesting means MIME multiparts are nested deeper than Limits.MaxDepth,
	// or compressed data is nested inside compressed data.
	ErrNesting = errors.New("nested too deeply")
	// ErrTooManyParts means the user-data has more than Limits.MaxParts MIME parts.
	ErrTooManyParts = errors.New("too many MIME parts")
	// ErrMIME means the MIME structure is malformed.
	ErrMIME = errors.New("malformed MIME")
	// ErrGzip means gzip-compressed data is corrupt or truncated.
	ErrGzip = errors.New("invalid gzip data")
	// ErrUnknownDirective means a "kscloud.<key>=" line names an unknown key.
	ErrUnknownDirective = errors.New("unknown directive")
	// ErrConflict means one directive was given twice with different values,
	// or the user-data carries more than one kickstart.
	ErrConflict = errors.New("conflicting directives")
	// ErrBadValue means a directive (or a Render input) has an invalid value.
	ErrBadValue = errors.New("invalid value")
	// ErrCmdline means the kernel command line fails [ValidateCmdline].
	ErrCmdline = errors.New("invalid kernel command line")
)

// Error is the one error type returned by this package. Its message is a single
// line starting in lower case, "user-data: <Where>: <Err>", for example
//
//	user-data: MIME part 3: gzip: expanded size exceeds 1048576 bytes
//
// It never contains raw bytes from the user-data: values are quoted with %q and
// truncated.
type Error struct {
	// Where locates the problem, e.g. "line 4: kscloud.mode", "MIME part 2.1",
	// "gzip"; empty when the problem concerns the user-data as a whole.
	Where string
	// Err describes the problem; it wraps one of the Err* sentinels.
	Err error
}

// Error returns the single-line message.
func (e *Error) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Where == "" {
		return "user-data: " + msg
	}
	return "user-data: " + e.Where + ": " + msg
}

// Unwrap returns Err, so that errors.Is(err, ErrTooLarge) and friends work.
func (e *Error) Unwrap() error { return e.Err }

// detailError carries a specific message while wrapping a sentinel, so that the
// message can say exactly what is wrong without repeating the sentinel's text.
type detailError struct {
	sentinel error
	msg      string
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.sentinel }

// errf returns an error with a formatted message that wraps sentinel. Arguments
// that come from user-data must go through quote.
func errf(sentinel error, format string, args ...any) error {
	return &detailError{sentinel: sentinel, msg: fmt.Sprintf(format, args...)}
}

// wrap attaches a location to err. If err is already an *Error, its location is
// appended to where, so that nested steps compose into one message.
func wrap(where string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Where: join(where, e.Where), Err: e.Err}
	}
	return &Error{Where: where, Err: err}
}

// join joins location components with ": ", skipping empty ones.
func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

// maxQuoted is how many bytes of a user-supplied value an error message shows.
const maxQuoted = 60

// quote renders an untrusted value for an error message: truncated to about
// maxQuoted bytes (on a rune boundary when the text is UTF-8) and quoted with
// strconv.Quote, so control characters, invalid UTF-8 and newlines are escaped.
func quote[T ~string | ~[]byte](v T) string {
	s := string(v[:min(len(v), maxQuoted+utf8.UTFMax)])
	if len(v) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > maxQuoted-utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

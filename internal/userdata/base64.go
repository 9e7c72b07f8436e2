package userdata

import "encoding/base64"

// DecodeBase64 decodes the <userData> text of a Eucalyptus instance.xml: standard
// base64 (RFC 4648 alphabet with '+' and '/'), whitespace and newlines anywhere
// tolerated, missing '=' padding tolerated. Empty input (or only whitespace) gives
// empty output and no error. Errors wrap [ErrBase64] and give the offset of the
// offending character in s.
func DecodeBase64(s string) ([]byte, error) {
	out, err := decodeBase64(s)
	if err != nil {
		return nil, &Error{Where: "base64", Err: err}
	}
	return out, nil
}

// decodeBase64 is DecodeBase64 for strings and byte slices without the location
// wrapper, so that Parse can decode MIME parts without copying them first.
func decodeBase64[T ~string | ~[]byte](s T) ([]byte, error) {
	// One pass to validate and strip whitespace, so that errors name an offset in
	// the caller's text and the decoder sees canonical, padded input.
	buf := make([]byte, 0, len(s)+3)
	pad := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			continue
		case c == '=':
			pad++
			if pad > 2 {
				return nil, errf(ErrBase64, "too much '=' padding at offset %d", i)
			}
		case isBase64Char(c):
			if pad > 0 {
				return nil, errf(ErrBase64, "data after '=' padding at offset %d", i)
			}
			buf = append(buf, c)
		default:
			return nil, errf(ErrBase64, "illegal character %s at offset %d", quote([]byte{c}), i)
		}
	}
	switch len(buf) % 4 {
	case 1:
		return nil, errf(ErrBase64, "truncated: %d base64 characters is not a valid length", len(buf))
	case 2:
		buf = append(buf, '=', '=')
	case 3:
		buf = append(buf, '=')
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(buf)))
	n, err := base64.StdEncoding.Decode(out, buf)
	if err != nil {
		// Unreachable after the validation above; reported rather than trusted.
		return nil, errf(ErrBase64, "%v", err)
	}
	return out[:n], nil
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}

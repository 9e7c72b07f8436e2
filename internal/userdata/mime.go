package userdata

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
)

// This file holds a small MIME reader for user-data as cloud-init writes it. The
// whole user-data is in memory and bounded, so parts are sub-slices of it rather
// than streams, and every malformation is an error rather than a guess.

// header holds the MIME header fields Parse cares about.
type header struct {
	contentType    string
	hasContentType bool
	cte            string // Content-Transfer-Encoding as written; see encoding
	hasCTE         bool
	mimeVersion    bool
}

// sniffMIME reports whether data is a MIME entity (a header block with a
// Content-Type or MIME-Version field, then a blank line), and if so splits it.
// Text whose first line is not a header field is not MIME. Text whose first field
// is Content-Type or MIME-Version is MIME, and a malformed header is an error;
// otherwise a malformed header block just means the data is not MIME.
func sniffMIME(data []byte) (h header, body []byte, isMIME bool, err error) {
	name, ok := fieldName(data)
	if !ok {
		return header{}, nil, false, nil
	}
	committed := strings.EqualFold(name, "Content-Type") || strings.EqualFold(name, "MIME-Version")
	h, body, err = parseHeader(data)
	if err != nil {
		if committed {
			return header{}, nil, false, err
		}
		return header{}, nil, false, nil
	}
	if !h.hasContentType && !h.mimeVersion {
		return header{}, nil, false, nil
	}
	return h, body, true, nil
}

// fieldName returns the name of the header field starting data, if data starts
// with one: a run of letters, digits and '-', then ':'.
func fieldName(data []byte) (string, bool) {
	i := 0
	for i < len(data) && isFieldChar(data[i]) {
		i++
	}
	if i == 0 || i == len(data) || data[i] != ':' {
		return "", false
	}
	return string(data[:i]), true
}

func isFieldChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

// parseHeader splits an entity into its header fields and body. The header block
// ends at the first empty line; an entity without one is all header. Folded
// (continued) lines are unfolded. A line that is neither a field nor a
// continuation is an error, as are repeated Content-Type or
// Content-Transfer-Encoding fields.
func parseHeader(data []byte) (header, []byte, error) {
	var h header
	var ct, cte strings.Builder // unfolded values; Builders keep long folds linear
	var cur *strings.Builder    // value being unfolded, nil for fields Parse ignores
	inField := false
	body := []byte(nil)
	for n := 1; len(data) > 0; n++ {
		line, rest := data, []byte(nil)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, rest = data[:i], data[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			body = rest
			break
		}
		data = rest
		if line[0] == ' ' || line[0] == '\t' {
			if !inField {
				return header{}, nil, errf(ErrMIME, "header line %d is a continuation without a field", n)
			}
			if cur != nil {
				cur.WriteByte(' ')
				cur.Write(bytes.TrimSpace(line))
			}
			continue
		}
		name, ok := fieldName(line)
		if !ok {
			return header{}, nil, errf(ErrMIME, "header line %d is not a header field: %s", n, quote(line))
		}
		inField = true
		value := bytes.TrimSpace(line[len(name)+1:])
		cur = nil
		switch {
		case strings.EqualFold(name, "Content-Type"):
			if h.hasContentType {
				return header{}, nil, errf(ErrMIME, "header line %d: repeated Content-Type", n)
			}
			h.hasContentType = true
			cur = &ct
		case strings.EqualFold(name, "Content-Transfer-Encoding"):
			if h.hasCTE {
				return header{}, nil, errf(ErrMIME, "header line %d: repeated Content-Transfer-Encoding", n)
			}
			h.hasCTE = true
			cur = &cte
		case strings.EqualFold(name, "MIME-Version"):
			h.mimeVersion = true
		}
		if cur != nil {
			cur.Write(value)
		}
	}
	h.contentType, h.cte = ct.String(), cte.String()
	return h, body, nil
}

// mediaType returns the lowercased media type and its parameters; text/plain
// when there is no Content-Type field (RFC 2045 §5.2).
func (h header) mediaType() (string, map[string]string, error) {
	if !h.hasContentType {
		return "text/plain", nil, nil
	}
	mt, params, err := mime.ParseMediaType(h.contentType)
	if err != nil {
		return "", nil, errf(ErrMIME, "cannot parse %s", quote(h.contentType))
	}
	return mt, params, nil
}

// encoding returns the Content-Transfer-Encoding, lowercased.
func (h header) encoding() string {
	return strings.ToLower(strings.TrimSpace(h.cte))
}

// decodeBody undoes the Content-Transfer-Encoding. Both decodings shrink the
// data, so their output is bounded by the input.
func (h header) decodeBody(body []byte) ([]byte, error) {
	switch enc := h.encoding(); enc {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		return decodeBase64(body)
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return nil, errf(ErrMIME, "invalid data")
		}
		return out, nil
	default:
		return nil, errf(ErrMIME, "unsupported Content-Transfer-Encoding %s", quote(enc))
	}
}

// findDelimiter finds the first boundary delimiter line of a multipart body at or
// after from. dash is "--" + boundary. A delimiter line starts at the beginning
// of a line with dash, optionally followed by "--" (the close delimiter), then
// optional spaces and tabs, then the end of the line. It returns the offset where
// the line starts, the offset just past its line break, and whether it is the
// close delimiter.
func findDelimiter(body []byte, from int, dash string) (lineStart, next int, closing, ok bool) {
	for i := from; i < len(body); {
		j := bytes.Index(body[i:], []byte(dash))
		if j < 0 {
			return 0, 0, false, false
		}
		j += i
		i = j + 1
		if j > 0 && body[j-1] != '\n' {
			continue
		}
		k := j + len(dash)
		closing := bytes.HasPrefix(body[k:], []byte("--"))
		if closing {
			k += 2
		}
		for k < len(body) && (body[k] == ' ' || body[k] == '\t') {
			k++
		}
		switch {
		case k == len(body):
			return j, k, closing, true
		case body[k] == '\n':
			return j, k + 1, closing, true
		case body[k] == '\r' && (k+1 == len(body) || body[k+1] == '\n'):
			return j, min(k+2, len(body)), closing, true
		}
		// The boundary is only a prefix of this line ("--boundaryX"): keep looking.
	}
	return 0, 0, false, false
}

// partEnd returns the end of the part content that starts at start and is
// followed by a delimiter line starting at lineStart: the line break before the
// delimiter belongs to the delimiter (RFC 2046 §5.1.1).
func partEnd(body []byte, start, lineStart int) int {
	end := lineStart
	if end > start && body[end-1] == '\n' {
		end--
		if end > start && body[end-1] == '\r' {
			end--
		}
	}
	return end
}

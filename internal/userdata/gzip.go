package userdata

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
)

// errOverBudget is returned by gunzipBounded when the output would exceed its
// budget; the caller turns it into an ErrTooLarge error naming the limit.
var errOverBudget = errors.New("over budget")

// gunzipBounded decompresses a gzip stream (possibly several concatenated
// members, nothing else after them) whose output may be at most budget bytes. It stops as soon as the
// output exceeds the budget, and its output buffer never grows beyond budget+1
// bytes, so a compression bomb costs at most about twice the budget in
// allocations and the time to inflate that much.
func gunzipBounded(data []byte, budget int) ([]byte, error) {
	// A bytes.Reader is an io.ByteReader, so the decompressor reads from it
	// without buffering ahead and br.Len() tells where each member ends.
	br := bytes.NewReader(data)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, gzipError(err)
	}
	limit := budget + 1 // one byte more than allowed, to detect overflow
	buf := make([]byte, 0, min(limit, max(512, 4*len(data))))
	for {
		zr.Multistream(false)
		for {
			if len(buf) > budget {
				return nil, errOverBudget
			}
			if len(buf) == cap(buf) {
				grown := make([]byte, len(buf), min(limit, 2*cap(buf)))
				copy(grown, buf)
				buf = grown
			}
			n, err := zr.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, gzipError(err)
			}
		}
		if len(buf) > budget {
			return nil, errOverBudget
		}
		if br.Len() == 0 {
			return buf, nil
		}
		// Another member may follow (concatenated gzip files); anything else
		// is an error rather than silently ignored.
		if !isGzip(data[len(data)-br.Len():]) {
			return nil, errf(ErrGzip, "trailing data after the compressed data (%d bytes)", br.Len())
		}
		if err := zr.Reset(br); err != nil {
			return nil, gzipError(err)
		}
	}
}

// gzipError turns an error from compress/gzip into an ErrGzip error. The
// standard library's messages contain no user data, but are reworded so that
// the message does not say "gzip" twice.
func gzipError(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, gzip.ErrHeader):
		return errf(ErrGzip, "invalid gzip header")
	case errors.Is(err, gzip.ErrChecksum):
		return errf(ErrGzip, "checksum mismatch")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errf(ErrGzip, "truncated compressed data")
	case errors.As(err, &corrupt):
		return errf(ErrGzip, "corrupt compressed data at offset %d", int64(corrupt))
	}
	return errf(ErrGzip, "cannot decompress")
}

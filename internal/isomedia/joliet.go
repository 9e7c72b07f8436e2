package isomedia

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Joliet (Microsoft's ISO 9660 extension, genisoimage/xorriso -J): a
// supplementary volume descriptor whose directory tree names files in
// UCS-2 big-endian, up to 64 characters, case kept. A medium made with
// Joliet but without Rock Ridge has only mangled 8.3 upper-case names in
// its primary tree; its real names are in this one. The iso9660 package
// does not read it, so this file does: volume descriptors from sector 16,
// then directory records (ECMA-119 9.1) of the Joliet tree.

const sector = 2048

// entry is a file or directory of either tree.
type entry interface {
	IsDir() bool
	Size() int64
	Reader() io.Reader
}

// jolietFile is one directory record of the Joliet tree.
type jolietFile struct {
	ra   io.ReaderAt
	name string
	lba  uint32
	size uint32
	dir  bool
}

func (f *jolietFile) IsDir() bool  { return f.dir }
func (f *jolietFile) Size() int64  { return int64(f.size) }
func (f *jolietFile) Name() string { return f.name }
func (f *jolietFile) Reader() io.Reader {
	return io.NewSectionReader(f.ra, int64(f.lba)*sector, int64(f.size))
}

// maxDir bounds a directory's extent (a hostile image's claimed size).
const maxDir = 16 << 20

// jolietRoot finds the Joliet supplementary volume descriptor (type 2,
// escape sequence %/@, %/C or %/E) and returns its root directory, or
// nil when the medium has none. The descriptor set must end (type 255)
// within 64 descriptors: the iso9660 package reads and keeps descriptors
// until one ends it, so OpenFile calls this first.
func jolietRoot(ra io.ReaderAt) (*jolietFile, error) {
	buf := make([]byte, sector)
	var joliet *jolietFile
	for s := int64(16); s < 16+64; s++ {
		if _, err := ra.ReadAt(buf, s*sector); err != nil {
			return nil, err
		}
		if string(buf[1:6]) != "CD001" {
			return nil, errors.New("volume descriptor without CD001")
		}
		switch buf[0] {
		case 255: // terminator
			return joliet, nil
		case 2:
			esc := buf[88:120]
			if joliet != nil || !bytes.Contains(esc, []byte("%/@")) && !bytes.Contains(esc, []byte("%/C")) && !bytes.Contains(esc, []byte("%/E")) {
				continue
			}
			f, err := parseRecord(ra, buf[156:190])
			if err != nil {
				return nil, fmt.Errorf("joliet root: %w", err)
			}
			if !f.dir {
				return nil, errors.New("joliet root is not a directory")
			}
			joliet = f
		}
	}
	return nil, errors.New("no volume descriptor set terminator in the first 64 descriptors")
}

// parseRecord reads one directory record (its length byte first).
func parseRecord(ra io.ReaderAt, rec []byte) (*jolietFile, error) {
	if len(rec) < 34 || int(rec[0]) > len(rec) || rec[0] < 34 {
		return nil, errors.New("short directory record")
	}
	nl := int(rec[32])
	if 33+nl > int(rec[0]) {
		return nil, errors.New("directory record name overruns the record")
	}
	f := &jolietFile{ra: ra, lba: binary.LittleEndian.Uint32(rec[2:6]), size: binary.LittleEndian.Uint32(rec[10:14]), dir: rec[25]&0x02 != 0}
	name := rec[33 : 33+nl]
	if nl == 1 && name[0] <= 1 { // "." (0) and ".." (1), skipped by children
		f.name = [...]string{".", ".."}[name[0]]
		return f, nil
	}
	if nl%2 != 0 {
		return nil, errors.New("joliet name of odd length")
	}
	u := make([]uint16, nl/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(name[2*i:])
	}
	n := string(utf16.Decode(u))
	if i := strings.LastIndexByte(n, ';'); i >= 0 && !f.dir {
		n = n[:i] // ";1"
	}
	if !f.dir {
		n = strings.TrimSuffix(n, ".") // a name without an extension, "VMLINUZ."
	}
	f.name = n
	return f, nil
}

// children lists a directory (without "." and ".."). Associated files
// are left out, and so are multi-extent files (over 4 GiB, several
// records of one name): an installer's kernel and initrd never are.
func (f *jolietFile) children() ([]*jolietFile, error) {
	if !f.dir {
		return nil, errors.New("not a directory")
	}
	if f.size > maxDir {
		return nil, fmt.Errorf("directory of %d bytes", f.size)
	}
	buf := make([]byte, f.size)
	if _, err := f.ra.ReadAt(buf, int64(f.lba)*sector); err != nil {
		return nil, err
	}
	var out []*jolietFile
	multi := "" // the name of a multi-extent file being skipped
	for off := 0; off < len(buf); {
		l := int(buf[off])
		if l == 0 { // records do not cross sectors: the rest of this one is padding
			off = (off/sector + 1) * sector
			continue
		}
		if off+l > len(buf) {
			return nil, errors.New("directory record overruns its directory")
		}
		k, err := parseRecord(f.ra, buf[off:off+l])
		if err != nil {
			return nil, err
		}
		flags := buf[off+25]
		off += l
		switch {
		case k.name == "." || k.name == ".." || flags&0x04 != 0:
		case flags&0x80 != 0:
			multi = k.name
		case multi != "" && k.name == multi:
			multi = "" // its last extent
		default:
			multi = ""
			out = append(out, k)
		}
	}
	return out, nil
}

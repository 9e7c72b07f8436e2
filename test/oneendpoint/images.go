package oneendpoint

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Image states (include/Image.h) and types.
const (
	ImgInit      = 0
	ImgReady     = 1
	ImgUsed      = 2
	ImgDisabled  = 3
	ImgLocked    = 4
	ImgError     = 5
	ImgClone     = 6
	ImgDelete    = 7
	ImgUsedPers  = 8
	ImgLockedUse = 9
)

var imageTypes = []string{"OS", "CDROM", "DATABLOCK", "KERNEL", "RAMDISK", "CONTEXT", "BACKUP"}

func imageTypeNum(s string) int {
	for i, t := range imageTypes {
		if strings.EqualFold(t, s) {
			return i
		}
	}
	return -1
}

var imageStateNames = []string{"INIT", "READY", "USED", "DISABLED", "LOCKED", "ERROR", "CLONE", "DELETE", "USED_PERS", "LOCKED_USED", "LOCKED_USED_PERS"}

type datastore struct {
	id           int
	name         string
	typ          int // 0 image, 1 system, 2 file
	dsMad, tmMad string
	path         string
}

type image struct {
	id         int
	name       string
	typ        int
	persistent bool
	state      int
	prevState  int
	regtime    int64
	path       string // PATH given at allocate
	source     string // the file
	format     string
	sizeMB     int
	ds         *datastore
	vms        []int
	cloningOps int
	tmpl       *Template
}

func (s *Server) datastoreByID(id int) *datastore {
	for _, d := range s.ds {
		if d.id == id {
			return d
		}
	}
	return nil
}

func (s *Server) imageAllocate(p params) (any, error) {
	str, err := p.str(1)
	if err != nil {
		return nil, err
	}
	dsID, err := p.int(2)
	if err != nil {
		return nil, err
	}
	if p.n() > 3 {
		if _, err := p.boolean(3); err != nil {
			return nil, err
		}
	}
	t, err := ParseTemplate(str)
	if err != nil {
		return nil, &rpcError{code: ErrInternal, msg: err.Error()}
	}
	ds := s.datastoreByID(dsID)
	if ds == nil {
		return nil, noExists("datastore", dsID)
	}
	if ds.typ == 1 {
		// RequestManagerAllocate.cc ImageAllocate: this text from 6.6 (with
		// BACKUP_DS), "New images cannot be allocated in a system
		// datastore." up to 6.4.
		msg := "New images can only be allocated in a files or image datastore."
		if !s.versionAtLeast(6, 6) {
			msg = "New images cannot be allocated in a system datastore."
		}
		return nil, allocateError("image", msg)
	}
	name := t.Get("NAME")
	if err := validName(name); err != nil {
		return nil, allocateError("image", err.Error())
	}
	if id, ok := s.imageNamed(name); ok {
		return nil, allocateError("image", fmt.Sprintf("NAME is already taken by IMAGE %d.", id))
	}
	typ := 0
	if ts := t.Get("TYPE"); ts != "" {
		if typ = imageTypeNum(ts); typ < 0 {
			return nil, allocateError("image", "Unknown type "+ts)
		}
	}
	fileType := typ == 3 || typ == 4 || typ == 5
	// ImagePool::allocate (5.12 → 7.0).
	if ds.typ == 2 && !fileType {
		return nil, allocateError("image", "Only IMAGES of type KERNEL, RAMDISK and CONTEXT can be registered in a FILE_DS datastore")
	}
	if ds.typ == 0 && fileType {
		return nil, allocateError("image", "IMAGES of type KERNEL, RAMDISK and CONTEXT cannot be registered in an IMAGE_DS datastore")
	}
	path, size := t.Get("PATH"), t.Get("SIZE")
	if path == "" && t.Get("SOURCE") == "" && (typ != 0 && typ != 2 || size == "") {
		return nil, allocateError("image", "No PATH nor SOURCE in template.")
	}
	sizeMB := 0
	if path == "" {
		n, err := strconv.Atoi(size)
		if err != nil || n <= 0 {
			return nil, allocateError("image", "SIZE attribute must be a positive integer value.")
		}
		sizeMB = n
	}
	if strings.HasPrefix(path, "/") {
		for _, d := range []string{"/var/lib/one", "/etc/one"} {
			if strings.HasPrefix(path, d) {
				return nil, allocateError("image", "Not allowed to copy images from "+d)
			}
		}
	}
	im := &image{id: s.nextImg, name: name, typ: typ, state: ImgLocked, regtime: now(), path: path, sizeMB: sizeMB,
		ds: ds, format: "raw", persistent: strings.EqualFold(t.Get("PERSISTENT"), "YES")}
	if f := t.Get("FORMAT"); f != "" {
		im.format = f
	}
	s.nextImg++
	im.source = fmt.Sprintf("%s/%x", ds.path, sha256.Sum256([]byte(fmt.Sprintf("%d-%d", im.id, time.Now().UnixNano()))))
	for _, k := range []string{"NAME", "TYPE", "PERSISTENT", "PATH", "SOURCE", "SIZE", "FORMAT"} {
		t.Erase(k)
	}
	t.Set("DEV_PREFIX", firstNonEmpty(t.Get("DEV_PREFIX"), "vd"))
	im.tmpl = t
	s.imgs[im.id] = im
	s.copyIn(im, t.Get("MD5"), t.Get("SHA1"))
	return im.id, nil
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

// copyIn plays the datastore driver's cp: download or copy PATH (checking
// MD5/SHA1 as downloader.sh does), or make an empty DATABLOCK; LOCKED →
// READY, or ERROR with TEMPLATE/ERROR.
func (s *Server) copyIn(im *image, md5sum, sha1sum string) {
	path, source, sizeMB := im.path, im.source, im.sizeMB
	go func() {
		start := time.Now()
		err := fetchInto(path, source, sizeMB, md5sum, sha1sum)
		if d := s.opts.Image - time.Since(start); d > 0 {
			time.Sleep(d)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.imgs[im.id] != im || im.state != ImgLocked {
			return
		}
		if err != nil {
			im.state = ImgError
			im.tmpl.Set("ERROR", time.Now().Format("Mon Jan 2 15:04:05 2006")+": Error copying image in the datastore: "+err.Error())
			return
		}
		if fi, err := os.Stat(source); err == nil && im.sizeMB == 0 {
			im.sizeMB = int((fi.Size() + 1<<20 - 1) >> 20)
		}
		im.state = ImgReady
	}()
}

func fetchInto(path, dst string, sizeMB int, md5sum, sha1sum string) error {
	if path == "" {
		f, err := os.Create(dst)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(int64(sizeMB) << 20)
	}
	var r io.Reader
	switch {
	case strings.HasPrefix(path, "http://"), strings.HasPrefix(path, "https://"):
		resp, err := http.Get(path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("Error downloading %s: %s", path, resp.Status)
		}
		r = resp.Body
	default:
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	var h hash.Hash
	want := ""
	switch {
	case sha1sum != "":
		h, want = sha1.New(), sha1sum
	case md5sum != "":
		h, want = md5.New(), md5sum
	}
	w := io.Writer(out)
	if h != nil {
		w = io.MultiWriter(out, h)
	}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	if h != nil && !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), want) {
		return fmt.Errorf("checksum mismatch for %s", path)
	}
	return nil
}

// copyFile copies sparse files cheaply.
func copyFile(src, dst string) error {
	out, err := exec.Command("cp", "--sparse=always", "--reflink=auto", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *Server) imageNamed(name string) (int, bool) {
	for _, id := range sortedIDs(s.imgs) {
		if s.imgs[id].name == name {
			return id, true
		}
	}
	return 0, false
}

func (s *Server) imageArg(p params) (*image, error) {
	id, err := p.int(1)
	if err != nil {
		return nil, err
	}
	im, ok := s.imgs[id]
	if !ok {
		return nil, noExists("image", id)
	}
	return im, nil
}

func (s *Server) imageInfo(p params) (any, error) {
	im, err := s.imageArg(p)
	if err != nil {
		return nil, err
	}
	if p.n() > 2 {
		if _, err := p.boolean(2); err != nil {
			return nil, err
		}
	}
	return s.imageXML(im), nil
}

func (s *Server) imageXML(im *image) string {
	var b strings.Builder
	pers := 0
	if im.persistent {
		pers = 1
	}
	fmt.Fprintf(&b, "<IMAGE><ID>%d</ID><UID>%d</UID><GID>1</GID><UNAME>%s</UNAME><GNAME>users</GNAME><NAME>%s</NAME>",
		im.id, s.uid, s.opts.User, cdata(im.name))
	b.WriteString("<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A><GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>")
	fmt.Fprintf(&b, "<TYPE>%d</TYPE><DISK_TYPE>0</DISK_TYPE><PERSISTENT>%d</PERSISTENT><REGTIME>%d</REGTIME>", im.typ, pers, im.regtime)
	fmt.Fprintf(&b, "<SOURCE>%s</SOURCE><PATH>%s</PATH><FORMAT>%s</FORMAT><FS><![CDATA[]]></FS><SIZE>%d</SIZE>",
		cdata(im.source), cdata(im.path), cdata(im.format), im.sizeMB)
	fmt.Fprintf(&b, "<STATE>%d</STATE><PREV_STATE>%d</PREV_STATE><RUNNING_VMS>%d</RUNNING_VMS><CLONING_OPS>%d</CLONING_OPS><CLONING_ID>-1</CLONING_ID><TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT>",
		im.state, im.prevState, len(im.vms), im.cloningOps)
	fmt.Fprintf(&b, "<DATASTORE_ID>%d</DATASTORE_ID><DATASTORE>%s</DATASTORE><VMS>", im.ds.id, im.ds.name)
	for _, v := range im.vms {
		fmt.Fprintf(&b, "<ID>%d</ID>", v)
	}
	b.WriteString("</VMS><CLONES/><APP_CLONES/>")
	b.WriteString(im.tmpl.XML("TEMPLATE"))
	b.WriteString("<SNAPSHOTS><ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS><CURRENT_BASE><![CDATA[-1]]></CURRENT_BASE><NEXT_SNAPSHOT><![CDATA[0]]></NEXT_SNAPSHOT></SNAPSHOTS>")
	b.WriteString("</IMAGE>")
	return b.String()
}

func (s *Server) imagePool(p params) (any, error) {
	for i := 1; i <= 3; i++ {
		if _, err := p.int(i); err != nil {
			return nil, err
		}
	}
	var b strings.Builder
	b.WriteString("<IMAGE_POOL>")
	for _, id := range sortedIDs(s.imgs) {
		b.WriteString(s.imageXML(s.imgs[id]))
	}
	b.WriteString("</IMAGE_POOL>")
	return b.String(), nil
}

func (s *Server) imageDelete(p params) (any, error) {
	im, err := s.imageArg(p)
	if err != nil {
		return nil, err
	}
	if p.n() > 2 && s.versionAtLeast(6, 10) {
		if _, err := p.boolean(2); err != nil {
			return nil, err
		}
	}
	// ImageManager::delete_image (5.12 → 7.0) under
	// RequestManagerDelete's "Cannot delete image. " and ACTION: refused
	// while VMs use it or clones run; LOCKED (a copy or saveas running,
	// which the delete abandons), ERROR, DELETE go ahead.
	switch {
	case im.state == ImgUsed || im.state == ImgUsedPers || im.state == ImgLockedUse || len(im.vms) > 0:
		return nil, &rpcError{code: ErrAction, msg: fmt.Sprintf("Cannot delete image. There are %d VMs using it.", len(im.vms)), id: im.id}
	case im.state == ImgClone || im.cloningOps > 0:
		return nil, &rpcError{code: ErrAction, msg: fmt.Sprintf("Cannot delete image. There are %d active clone operations.", im.cloningOps), id: im.id}
	}
	im.prevState, im.state = im.state, ImgDelete
	s.after(s.opts.Image, func() {
		if s.imgs[im.id] == im {
			delete(s.imgs, im.id)
			os.Remove(im.source)
		}
	})
	return im.id, nil
}

func (s *Server) imageUpdate(p params) (any, error) {
	im, err := s.imageArg(p)
	if err != nil {
		return nil, err
	}
	str, err := p.str(2)
	if err != nil {
		return nil, err
	}
	typ := 0
	if p.n() > 3 {
		if typ, err = p.int(3); err != nil {
			return nil, err
		}
	}
	t, err := ParseTemplate(str)
	if err != nil {
		return nil, &rpcError{code: ErrInternal, msg: err.Error(), id: im.id}
	}
	if typ == 1 {
		im.tmpl.Merge(t)
	} else {
		im.tmpl = t
	}
	return im.id, nil
}

func (s *Server) imageChtype(p params) (any, error) {
	im, err := s.imageArg(p)
	if err != nil {
		return nil, err
	}
	ts, err := p.str(2)
	if err != nil {
		return nil, err
	}
	n := imageTypeNum(ts)
	if n < 0 {
		return nil, &rpcError{code: ErrInternal, msg: "Unknown image type " + ts, id: im.id}
	}
	// ImageChangeType (RequestManagerImage.cc, 5.12 → 7.0): ACTION, and
	// no state check.
	if fileType := n == 3 || n == 4 || n == 5; fileType != (im.typ == 3 || im.typ == 4 || im.typ == 5) {
		return nil, &rpcError{code: ErrAction, msg: "Cannot change image type to an incompatible type for the current datastore.", id: im.id}
	}
	im.typ = n
	return im.id, nil
}

func (s *Server) imagePersistent(p params) (any, error) {
	im, err := s.imageArg(p)
	if err != nil {
		return nil, err
	}
	b, err := p.boolean(2)
	if err != nil {
		return nil, err
	}
	// ImagePersistent (RequestManagerImage.cc) and Image::persistent
	// (include/Image.h), 5.12 → 7.0.
	if im.typ == 3 || im.typ == 4 || im.typ == 5 {
		return nil, &rpcError{code: ErrAction, msg: "KERNEL, RAMDISK and CONTEXT must be non-persistent", id: im.id}
	}
	switch im.state {
	case ImgUsed, ImgClone, ImgUsedPers, ImgLockedUse:
		what := "persistent"
		if !b {
			what = "non-persistent"
		}
		return nil, &rpcError{code: ErrInternal, msg: "Could not make image " + what + ": Image cannot be in state " + imageStateNames[im.state] + ".", id: im.id}
	}
	im.persistent = b
	return im.id, nil
}

func (s *Server) imageClone(p params) (any, error) {
	im, err := s.imageArg(p)
	if err != nil {
		return nil, err
	}
	name, err := p.str(2)
	if err != nil {
		return nil, err
	}
	dsID := -1
	if p.n() > 3 {
		if dsID, err = p.int(3); err != nil {
			return nil, err
		}
	}
	ds := im.ds
	if dsID >= 0 {
		if ds = s.datastoreByID(dsID); ds == nil {
			return nil, noExists("datastore", dsID)
		}
	}
	// ImageManager::can_clone_image under ImagePool::allocate: ALLOCATE.
	if im.state != ImgReady && im.state != ImgUsed && im.state != ImgClone {
		return nil, allocateError("image", "Cannot clone image in state: "+imageStateNames[im.state])
	}
	if err := validName(name); err != nil {
		return nil, allocateError("image", err.Error())
	}
	if id, ok := s.imageNamed(name); ok {
		return nil, allocateError("image", fmt.Sprintf("NAME is already taken by IMAGE %d.", id))
	}
	n := &image{id: s.nextImg, name: name, typ: im.typ, state: ImgLocked, regtime: now(), sizeMB: im.sizeMB,
		ds: ds, format: im.format, tmpl: im.tmpl.Clone()}
	n.tmpl.Erase("ERROR")
	s.nextImg++
	n.source = fmt.Sprintf("%s/%x", ds.path, sha256.Sum256([]byte(fmt.Sprintf("%d-%d", n.id, time.Now().UnixNano()))))
	s.imgs[n.id] = n
	im.cloningOps++
	src := im.source
	go func() {
		err := copyFile(src, n.source)
		time.Sleep(s.opts.Image)
		s.mu.Lock()
		defer s.mu.Unlock()
		im.cloningOps--
		if s.imgs[n.id] != n || n.state != ImgLocked { // deleted meanwhile
			return
		}
		if err != nil {
			n.state = ImgError
			n.tmpl.Set("ERROR", err.Error())
			return
		}
		n.state = ImgReady
	}()
	return n.id, nil
}

func (s *Server) datastoreXML(d *datastore) string {
	types := []string{"IMAGE_DS", "SYSTEM_DS", "FILE_DS"}
	return fmt.Sprintf("<DATASTORE><ID>%d</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME><NAME>%s</NAME>"+
		"<DS_MAD>%s</DS_MAD><TM_MAD>%s</TM_MAD><BASE_PATH>%s</BASE_PATH><TYPE>%d</TYPE><DISK_TYPE>0</DISK_TYPE><STATE>0</STATE>"+
		"<CLUSTERS><ID>0</ID></CLUSTERS><TOTAL_MB>102400</TOTAL_MB><FREE_MB>81920</FREE_MB><USED_MB>20480</USED_MB><IMAGES/>"+
		"<TEMPLATE><TYPE>%s</TYPE><DS_MAD>%s</DS_MAD><TM_MAD>%s</TM_MAD></TEMPLATE></DATASTORE>",
		d.id, cdata(d.name), cdata(d.dsMad), cdata(d.tmMad), cdata(d.path+"/"), d.typ, cdata(types[d.typ]), cdata(d.dsMad), cdata(d.tmMad))
}

func (s *Server) datastoreInfo(p params) (any, error) {
	id, err := p.int(1)
	if err != nil {
		return nil, err
	}
	d := s.datastoreByID(id)
	if d == nil {
		return nil, noExists("datastore", id)
	}
	return s.datastoreXML(d), nil
}

func (s *Server) datastorePool(p params) (any, error) {
	var b strings.Builder
	b.WriteString("<DATASTORE_POOL>")
	for _, d := range s.ds {
		b.WriteString(s.datastoreXML(d))
	}
	b.WriteString("</DATASTORE_POOL>")
	return b.String(), nil
}

// ImageFile returns an image's file (tests read what was copied).
func (s *Server) ImageFile(id int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im, ok := s.imgs[id]
	if !ok {
		return "", false
	}
	return im.source, true
}

// ImageAttrs returns an image's single TEMPLATE attributes (tests).
func (s *Server) ImageAttrs(id int) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	if im, ok := s.imgs[id]; ok {
		for _, a := range im.tmpl.Attrs {
			if !a.IsVec {
				out[a.Name] = a.Value
			}
		}
	}
	return out
}

// ImageType returns an image's TYPE name (tests).
func (s *Server) ImageType(id int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if im, ok := s.imgs[id]; ok {
		return imageTypes[im.typ]
	}
	return ""
}

package ec2endpoint

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kscloud/kscloud/internal/virt"
	"github.com/kscloud/kscloud/test/ncsim"
)

// NodeOptions configure node mode: the endpoint plays a Eucalyptus node
// controller on a real libvirtd (DESIGN.md §2). Instances are transient
// domains named by their instance IDs; disks, volumes and snapshots are
// sparse raw files under Dir.
type NodeOptions struct {
	// LibvirtURI is the libvirtd to create domains on (default qemu:///system).
	LibvirtURI string
	// Dir holds instances/work/ACCOUNT/i-…/ (the NC's instance
	// directories: instance.xml, the domain XML, console.log, root.img),
	// volumes/ and snapshots/. Required. nchookd's instances_root must
	// include Dir/instances for the hook to act on launches.
	Dir string
	// HooksDir is the nc-hooks directory whose executables run at
	// euca-nc-pre-boot (non-zero cancels the launch) and euca-nc-pre-clean
	// (non-zero keeps the instance files). Empty: no hooks.
	HooksDir string
	// HookEnv is the hooks' environment (default: this process's).
	HookEnv []string
	// EucaHome is the hooks' second argument (default "/").
	EucaHome string
	// NCVersion is the NC whose files are written: "3.1" (libvirt.xml) or
	// "3.4" (instance-libvirt.xml named in instance.xml; the default).
	NCVersion string
	// MemoryMB is each guest's memory (default 256).
	MemoryMB int
	// Account is the user directory under instances/work (default AIDAKSCLOUDTEST).
	Account string
	// Bundles maps RegisterImage ImageLocations to files: the root disk of
	// an instance-store image is a copy. Unmapped: an empty sparse disk of
	// InstanceStoreGiB (an installer-only image, as in seed 001).
	Bundles map[string]string
	// InstanceStoreGiB is the size of an empty instance-store root (default 1).
	InstanceStoreGiB int
	// Poll is how often domains are checked for a guest power-off, on top
	// of libvirt's lifecycle events (default 1 s).
	Poll time.Duration
	// GoneGrace is how long a domain must stay gone (or shut off) before
	// the instance counts as powered off. The NC retries a vanished domain
	// ~5 times, 20–25 s, before the instance goes SHUTOFF, and one that
	// reappears meanwhile (nchookd booting an installed system from its
	// disk under the same name) keeps running. Default 10 s: enough for
	// nchookd's switch, shorter than the NC's to keep tests quick; <0: none.
	GoneGrace time.Duration
	// KeepFiles leaves instance directories in place on terminate.
	KeepFiles bool
}

// hotplugger attaches and detaches devices of running domains
// (*virt.Conn; VIR_DOMAIN_AFFECT_LIVE on these transient domains).
type hotplugger interface {
	AttachDevice(ctx context.Context, domain, deviceXML string) error
	DetachDevice(ctx context.Context, domain, deviceXML string) error
}

type node struct {
	s    *Server
	o    NodeOptions
	conn *virt.Conn
	hp   hotplugger

	mu      sync.Mutex
	running map[string]bool      // domains this node started and has not halted
	gone    map[string]time.Time // running domains seen gone, since when
	stop    context.CancelFunc
	done    chan struct{}
}

func newNode(ctx context.Context, s *Server, o NodeOptions) (*node, error) {
	if o.Dir == "" {
		return nil, errors.New("ec2endpoint: node mode needs NodeOptions.Dir")
	}
	if o.LibvirtURI == "" {
		o.LibvirtURI = "qemu:///system"
	}
	if o.HookEnv == nil {
		o.HookEnv = os.Environ()
	}
	if o.EucaHome == "" {
		o.EucaHome = "/"
	}
	if o.NCVersion == "" {
		o.NCVersion = "3.4"
	}
	if o.MemoryMB <= 0 {
		o.MemoryMB = 256
	}
	if o.Account == "" {
		o.Account = "AIDAKSCLOUDTEST"
	}
	if o.InstanceStoreGiB <= 0 {
		o.InstanceStoreGiB = 1
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.GoneGrace == 0 {
		o.GoneGrace = 10 * time.Second
	}
	for _, d := range []string{o.instancesDir(), filepath.Join(o.Dir, "volumes"), filepath.Join(o.Dir, "snapshots")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("ec2endpoint: %w", err)
		}
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := virt.Open(octx, o.LibvirtURI, s.log)
	if err != nil {
		return nil, fmt.Errorf("ec2endpoint: node mode: %w", err)
	}
	mctx, stop := context.WithCancel(ctx)
	n := &node{s: s, o: o, conn: conn, hp: conn, running: map[string]bool{}, gone: map[string]time.Time{}, stop: stop, done: make(chan struct{})}
	go n.monitor(mctx)
	return n, nil
}

func (o NodeOptions) instancesDir() string {
	return filepath.Join(o.Dir, "instances", "work", o.Account)
}

func (n *node) instanceDir(id string) string { return filepath.Join(n.o.instancesDir(), id) }

// monitor notices guests that powered off: a domain it started that is
// gone or shut off for GoneGrace (the NC's retries; a domain nchookd
// re-creates under the same name meanwhile keeps the instance running).
// Lifecycle events wake it; the poll catches what an event channel may
// drop, as the NC's own 5 s poll does.
func (n *node) monitor(ctx context.Context) {
	defer close(n.done)
	tick := time.NewTicker(n.o.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.conn.Events():
		}
		n.mu.Lock()
		ids := make([]string, 0, len(n.running))
		for id := range n.running {
			ids = append(ids, id)
		}
		n.mu.Unlock()
		for _, id := range ids {
			info, err := n.conn.Info(ctx, id)
			gone := virt.IsNotFound(err) || err == nil && !info.Active
			n.mu.Lock()
			if !gone {
				delete(n.gone, id)
				n.mu.Unlock()
				continue
			}
			since, seen := n.gone[id]
			if !seen {
				since = time.Now()
				n.gone[id] = since
			}
			if n.o.GoneGrace > 0 && time.Since(since) < n.o.GoneGrace {
				n.mu.Unlock()
				continue
			}
			still := n.running[id]
			delete(n.running, id)
			delete(n.gone, id)
			n.mu.Unlock()
			if still {
				n.s.guestPoweredOff(id)
			}
		}
	}
}

func (n *node) close() error {
	n.stop()
	<-n.done
	n.mu.Lock()
	ids := make([]string, 0, len(n.running))
	for id := range n.running {
		ids = append(ids, id)
	}
	n.running = map[string]bool{}
	n.mu.Unlock()
	var errs []error
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.conn.Destroy(ctx, id); err != nil && !virt.IsNotFound(err) {
			errs = append(errs, err)
		}
		cancel()
	}
	errs = append(errs, n.conn.Close())
	return errors.Join(errs...)
}

// sparse creates path as a sparse file of sizeGiB, or grows it to that.
func sparse(path string, sizeGiB int) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if want := int64(sizeGiB) << 30; st.Size() < want {
		return f.Truncate(want)
	}
	return nil
}

// copySparse copies src to dst keeping holes (cp --sparse=always).
func copySparse(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "--sparse=always", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp %s: %v: %s", filepath.Base(src), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *node) newVolume(ctx context.Context, id string, sizeGiB int, from string) (string, error) {
	p := filepath.Join(n.o.Dir, "volumes", id+".img")
	if from != "" {
		if err := copySparse(ctx, from, p); err != nil {
			return "", err
		}
	}
	return p, sparse(p, sizeGiB)
}

func (n *node) removeVolume(path string) error { return os.Remove(path) }

func (n *node) keepVolume(id, path string) (string, error) {
	dst := filepath.Join(n.o.Dir, "volumes", id+".img")
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, nil
}

func (n *node) snapshot(ctx context.Context, id, volumePath string) (string, error) {
	if volumePath == "" {
		return "", errors.New("the volume has no file yet")
	}
	p := filepath.Join(n.o.Dir, "snapshots", id+".img")
	return p, copySparse(ctx, volumePath, p)
}

func (n *node) removeSnapshot(path string) error { return os.Remove(path) }

// launch does what the NC does (DESIGN.md §2): root disk, instance.xml and
// the XSLT's domain XML (ncsim), the pre-boot hooks (a failure cancels),
// the domain XML read back, virDomainCreateXML; then the volumes.
func (n *node) launch(ctx context.Context, l launchSpec) (launchResult, error) {
	dir := n.instanceDir(l.id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return launchResult{}, err
	}
	root := l.rootPath
	if root == "" {
		root = filepath.Join(dir, "root.img")
		size := l.rootSizeGiB
		if l.rootFrom != "" {
			if err := copySparse(ctx, l.rootFrom, root); err != nil {
				return launchResult{}, fmt.Errorf("root disk: %w", err)
			}
		} else if size < n.o.InstanceStoreGiB {
			size = n.o.InstanceStoreGiB
		}
		if err := sparse(root, size); err != nil {
			return launchResult{}, fmt.Errorf("root disk: %w", err)
		}
	}
	hexID := strings.ToLower(strings.TrimPrefix(l.id, "i-"))
	hexID = (hexID + "00000000")[:8]
	inst := &ncsim.Instance{
		Name: l.id, UUID: "ec2e0000-0000-4000-8000-0000" + hexID, Dir: dir,
		Version: n.o.NCVersion, Kernel: l.kernel, Ramdisk: l.ramdisk, Disk: root,
		UserData: l.userData, MemoryKB: n.o.MemoryMB * 1024, Cores: 1,
		DomainType: "qemu", UserNetwork: true,
		MAC: "d0:0d:" + hexID[0:2] + ":" + hexID[2:4] + ":" + hexID[4:6] + ":" + hexID[6:8],
	}
	if err := ncsim.Write(inst); err != nil {
		return launchResult{}, fmt.Errorf("instance files: %w", err)
	}
	if n.o.HooksDir != "" {
		res, err := ncsim.RunHooks(ctx, n.o.HooksDir, "euca-nc-pre-boot", n.o.EucaHome, dir, n.o.HookEnv)
		for _, r := range res {
			n.s.log.Info("hook", "instance", l.id, "event", "euca-nc-pre-boot", "hook", filepath.Base(r.Hook), "exit", r.ExitCode, "duration_s", r.Duration.Seconds())
		}
		if err != nil {
			return launchResult{}, err
		}
	}
	domXML, err := ncsim.DomainXML(inst)
	if err != nil {
		return launchResult{}, fmt.Errorf("domain XML: %w", err)
	}
	n.mu.Lock()
	n.running[l.id] = true
	delete(n.gone, l.id)
	n.mu.Unlock()
	if err := n.conn.CreateXML(ctx, domXML); err != nil {
		n.mu.Lock()
		delete(n.running, l.id)
		n.mu.Unlock()
		return launchResult{}, err
	}
	for _, a := range l.attach {
		if err := n.attach(ctx, l.id, a.path, a.device); err != nil {
			return launchResult{}, err
		}
	}
	return launchResult{rootPath: root, privateIP: "10.0.2.15"}, nil
}

// diskXML is the libvirt <disk> for a volume file at an EC2 device name:
// /dev/sdX and /dev/xvdX become SCSI sdX (the bus of the NC's root disk),
// /dev/vdX virtio vdX.
func diskXML(path, device string) (string, error) {
	name := strings.TrimPrefix(device, "/dev/")
	bus := "scsi"
	switch {
	case strings.HasPrefix(name, "xvd"):
		name = "sd" + strings.TrimPrefix(name, "xvd")
	case strings.HasPrefix(name, "vd"):
		bus = "virtio"
	case strings.HasPrefix(name, "sd"):
	default:
		return "", fmt.Errorf("device %s: want /dev/sdX, /dev/xvdX or /dev/vdX", device)
	}
	var b bytes.Buffer
	b.WriteString(`<disk type="file" device="disk"><driver name="qemu" type="raw"/><source file="`)
	xml.EscapeText(&b, []byte(path))
	b.WriteString(`"/><target dev="`)
	xml.EscapeText(&b, []byte(name))
	b.WriteString(`" bus="` + bus + `"/></disk>`)
	return b.String(), nil
}

func (n *node) attach(ctx context.Context, id, path, device string) error {
	x, err := diskXML(path, device)
	if err != nil {
		return err
	}
	return n.hp.AttachDevice(ctx, id, x)
}

func (n *node) detach(ctx context.Context, id, path, device string) error {
	x, err := diskXML(path, device)
	if err != nil {
		return err
	}
	return n.hp.DetachDevice(ctx, id, x)
}

func (n *node) halt(ctx context.Context, id string) error {
	n.mu.Lock()
	delete(n.running, id)
	delete(n.gone, id)
	n.mu.Unlock()
	if err := n.conn.Destroy(ctx, id); err != nil && !virt.IsNotFound(err) {
		return err
	}
	return nil
}

// clean runs the pre-clean hooks (non-zero keeps the files, as on the NC)
// and removes the instance directory.
func (n *node) clean(ctx context.Context, id string) ([]byte, error) {
	dir := n.instanceDir(id)
	console, _ := n.console(id)
	if n.o.HooksDir != "" {
		if _, err := ncsim.RunHooks(ctx, n.o.HooksDir, "euca-nc-pre-clean", n.o.EucaHome, dir, n.o.HookEnv); err != nil {
			return console, fmt.Errorf("keeping %s: %w", dir, err)
		}
	}
	if n.o.KeepFiles {
		return console, nil
	}
	return console, os.RemoveAll(dir)
}

// console returns the tail of the instance's console.log.
func (n *node) console(id string) ([]byte, error) {
	// As the Eucalyptus NC (node/handlers_kvm.c doGetConsoleOutput): the
	// first 4 KiB of console.append.log, then the last 64 KiB of console.log.
	var out []byte
	if f, err := os.Open(filepath.Join(n.instanceDir(id), "console.append.log")); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, 4095))
		f.Close()
		if err != nil {
			return nil, err
		}
		out = b
	}
	f, err := os.Open(filepath.Join(n.instanceDir(id), "console.log"))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > consoleLimit {
		if _, err := f.Seek(st.Size()-consoleLimit, io.SeekStart); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(f)
	return append(out, b...), err
}

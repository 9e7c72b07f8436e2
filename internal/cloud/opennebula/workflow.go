package opennebula

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/userdata"
)

// Workflow holds what OpenNebula's install steps need. OpenNebula has no
// console output, so an install is followed by its VM's state alone: the
// kickstart must end with poweroff (the KVM driver writes no on_reboot: a
// guest reboot boots the installer again), the install is over at
// POWEROFF (the monitor's miss threshold after the guest halts), a
// failure reason is USER_TEMPLATE/ERROR on a *_FAILURE state.
type Workflow struct {
	P *Provider
	// Kernel and Initrd: local files (registered as KERNEL/RAMDISK images
	// in the file datastore, downloaded by oned from kscloud's HTTP
	// server, reused by name+sha256), or img-N ids of such images (given,
	// or resolved from the operator's catalog: Provider.Installer).
	Kernel, Initrd string
	// CmdlinePrefix goes first on the installer's command line: a catalog
	// installer's KSCLOUD_CMDLINE.
	CmdlinePrefix string
	// Args is the installer command line without ip= (added from the
	// VM's lease) and without the kickstart location.
	Args string
	// Kickstart, when set, travels as a CONTEXT file on the VM's context
	// CD-ROM (labelled CONTEXT): inst.ks=hd:LABEL=CONTEXT:/<file>.
	Kickstart []byte
	// KickstartURL, when set instead, goes on the command line as is.
	KickstartURL string
	// Serve is the address kscloud's file server listens on (default: the
	// local address that reaches the endpoint, any port); ServeURL the
	// base URL oned downloads from (default http://<Serve>).
	Serve, ServeURL string
	Provenance      *install.Provenance
	Status          func(string)
	// Poll and PollMax pace the state polls (default 2 s → 10 s).
	Poll, PollMax time.Duration
	// NeedNodeHook: the kickstart relies on nchookd on the host (it ends
	// with reboot, kscloud --nchookd). A VM RUNNING for NodeHookGrace
	// (default 90 s: three MONITOR_VM periods) whose MONITORING has no
	// KSCLOUD_NCHOOKD fails the install before its installer loops.
	NeedNodeHook  bool
	NodeHookGrace time.Duration
}

func (w *Workflow) status(s string) {
	if w.Status != nil {
		w.Status(s)
	}
}

func (w *Workflow) tags(b *install.Build, role string) cloud.Tags {
	return cloud.Tags{cloud.TagBuild: b.ID, cloud.TagCreator: "kscloud", cloud.TagRole: role}
}

// waiter paces the state polls: Poll doubling to PollMax (default 2 s →
// 10 s), with jitter, bounded by timeout.
func (w *Workflow) waiter(timeout time.Duration) wait.Waiter {
	first, most := w.Poll, w.PollMax
	if first <= 0 {
		first = 2 * time.Second
	}
	if most < first {
		most = max(10*time.Second, first)
	}
	// oned answers for what it has allocated: "not found" is not a delay.
	return wait.Waiter{Initial: first, Max: most, Timeout: timeout, NotFoundGrace: -1}
}

// waitVM polls the VM with backoff until check says done. An error from
// oned or check is returned as it is; a timeout names what was awaited
// and the state last seen.
func (w *Workflow) waitVM(ctx context.Context, n int, what string, timeout time.Duration, check func(v *vmInfo) (bool, error)) (vmInfo, error) {
	var failure error
	v, err := wait.Poll(ctx, w.waiter(timeout), fmt.Sprintf("instance %s to be %s", vmID(n), what), func(ctx context.Context) (vmInfo, string, bool, error) {
		v, err := w.P.vmInfo(ctx, n)
		if err != nil {
			failure = fmt.Errorf("instance %s: %w", vmID(n), err)
			return v, "", false, wait.Stop(failure)
		}
		done, err := check(&v)
		if err != nil {
			failure = err
			return v, "", false, wait.Stop(err)
		}
		return v, stateName(v.State, v.LCM), done, nil
	})
	switch {
	case failure != nil:
		return v, failure
	case err != nil && ctx.Err() != nil:
		return v, fmt.Errorf("instance %s: waiting for %s: %w: %w", vmID(n), what, install.ErrInterrupted, ctx.Err())
	case err != nil:
		return v, fmt.Errorf("instance %s: not %s after %s (state %s)", vmID(n), what, timeout, stateName(v.State, v.LCM))
	}
	return v, nil
}

// waitImage waits for image n to be READY (or in use); its ERROR state
// ends the wait.
func (w *Workflow) waitImage(ctx context.Context, n int, what string, timeout time.Duration) (imageInfo, error) {
	var failure error
	im, err := wait.Poll(ctx, w.waiter(timeout), fmt.Sprintf("%s (image %d) to be READY", what, n), func(ctx context.Context) (imageInfo, string, bool, error) {
		im, err := w.P.imageInfo(ctx, n)
		if err != nil {
			failure = fmt.Errorf("%s (image %d): %w", what, n, err)
			return im, "", false, wait.Stop(failure)
		}
		switch im.State {
		case imgReady, imgUsed, imgUsedPers:
			return im, imageStateName(im.State), true, nil
		case imgError:
			failure = fmt.Errorf("%s (image %d): state ERROR: %s", what, n, im.Template.get("ERROR"))
			return im, "ERROR", false, wait.Stop(failure)
		}
		return im, imageStateName(im.State), false, nil
	})
	switch {
	case failure != nil:
		return im, failure
	case err != nil && ctx.Err() != nil:
		return im, fmt.Errorf("%s: %w: %w", what, install.ErrInterrupted, ctx.Err())
	case err != nil:
		return im, fmt.Errorf("%s (image %d): not READY after %s (state %s)", what, n, timeout, imageStateName(im.State))
	}
	return im, nil
}

// failed returns the install error of a VM in a failure state.
func failed(v *vmInfo) error {
	if _, bad := instanceState(v.State, v.LCM); bad {
		reason := stateName(v.State, v.LCM)
		if e := v.User.get("ERROR"); e != "" {
			reason += ": " + e
		}
		return &install.InstallError{Instance: vmID(v.ID), Reason: reason}
	}
	if v.State == stDone {
		return &install.InstallError{Instance: vmID(v.ID), Reason: "the VM was terminated (DONE) before the install ended"}
	}
	return nil
}

// --- installer files ---

// fileServer serves local files to oned's downloader.
type fileServer struct {
	srv  *http.Server
	base string
}

func (w *Workflow) serve(files map[string]string) (*fileServer, error) {
	addr := w.Serve
	if addr == "" {
		host := "127.0.0.1"
		if u, err := url.Parse(w.P.eff.Endpoint); err == nil {
			if c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), "9")); err == nil {
				host = c.LocalAddr().(*net.UDPAddr).IP.String()
				c.Close()
			}
		}
		addr = net.JoinHostPort(host, "0")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("file server for oned: %w", err)
	}
	mux := http.NewServeMux()
	for name, path := range files {
		path := path
		mux.HandleFunc("/"+name, func(rw http.ResponseWriter, r *http.Request) { http.ServeFile(rw, r, path) })
	}
	fs := &fileServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, base: "http://" + ln.Addr().String()}
	if w.ServeURL != "" {
		fs.base = strings.TrimRight(w.ServeURL, "/")
	}
	go fs.srv.Serve(ln)
	return fs, nil
}

func hashFile(path string) (sha256hex, sha1hex string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h2, h1 := sha256.New(), sha1.New()
	if _, err := io.Copy(io.MultiWriter(h2, h1), f); err != nil {
		return "", "", err
	}
	return hex.EncodeToString(h2.Sum(nil)), hex.EncodeToString(h1.Sum(nil)), nil
}

// fileImage finds or registers a file datastore image (KERNEL, RAMDISK,
// CONTEXT) of a local file: reused when an image of that name carries the
// same KSCLOUD_SHA256; oned checks the download against SHA1 (its
// downloader verifies MD5 and SHA1 only).
func (w *Workflow) fileImage(ctx context.Context, fs **fileServer, typ, name, path string, tags cloud.Tags) (int, bool, error) {
	sum, sum1, err := hashFile(path)
	if err != nil {
		return 0, false, fmt.Errorf("installer file %s: %w", path, err)
	}
	if name == "" {
		name = fmt.Sprintf("kscloud-%s-%s", strings.ToLower(typ), sum[:16])
	}
	pool, err := w.P.imagePool(ctx)
	if err != nil {
		return 0, false, err
	}
	for _, im := range pool {
		if im.Name != name {
			continue
		}
		if im.Template.get("KSCLOUD_SHA256") == sum && im.State != imgError && im.State != imgDelete {
			return im.ID, false, nil
		}
		return 0, false, fmt.Errorf("image %d is named %s but holds another file (KSCLOUD_SHA256 %q, want %s)", im.ID, name, im.Template.get("KSCLOUD_SHA256"), sum)
	}
	if *fs == nil {
		if *fs, err = w.serve(map[string]string{}); err != nil {
			return 0, false, err
		}
	}
	(*fs).srv.Handler.(*http.ServeMux).HandleFunc("/"+sum, func(rw http.ResponseWriter, r *http.Request) { http.ServeFile(rw, r, path) })
	if w.P.fileDS < 0 {
		return 0, false, errors.New("opennebula: no file datastore (TYPE FILE_DS) to register installer files in")
	}
	t := &tmpl{}
	t.single("NAME", name).single("TYPE", typ).single("PATH", (*fs).base+"/"+sum).single("SHA1", sum1).single("KSCLOUD_SHA256", sum)
	addTags(t, tags)
	n, err := w.P.c.callInt(ctx, "one.image.allocate", t, w.P.fileDS)
	if err != nil {
		return 0, false, fmt.Errorf("%s image %s: %w", typ, name, err)
	}
	return n, true, nil
}

func ksFileName(b *install.Build) string { return "ks-" + b.ID + ".cfg" }

// filesStep registers (or finds) the installer's kernel and initrd and
// the kickstart CONTEXT file; ids land in the build's values.
func (w *Workflow) filesStep() install.Step {
	return install.Step{
		Name: "installer-files",
		Run: func(ctx context.Context, b *install.Build) error {
			var fs *fileServer
			defer func() {
				if fs != nil {
					fs.srv.Close()
				}
			}()
			type want struct{ key, typ, path string }
			for _, f := range []want{{"one.kernel", "KERNEL", w.Kernel}, {"one.initrd", "RAMDISK", w.Initrd}} {
				if f.path == "" || b.Value(f.key) != "" {
					continue
				}
				if m := idRE.FindStringSubmatch(f.path); m != nil && (m[1] == preImage || m[1] == "") {
					b.SetValue(f.key, m[2])
					continue
				}
				n, made, err := w.fileImage(ctx, &fs, f.typ, "", f.path, cloud.Tags{cloud.TagCreator: "kscloud", cloud.TagRole: "installer-file"})
				if err != nil {
					return err
				}
				b.SetValue(f.key, strconv.Itoa(n))
				if err := b.Save(); err != nil {
					return err
				}
				if made {
					w.status(fmt.Sprintf("%s image %d registered from %s", strings.ToLower(f.typ), n, filepath.Base(f.path)))
				} else {
					w.status(fmt.Sprintf("%s image %d reused (same sha256)", strings.ToLower(f.typ), n))
				}
			}
			if len(w.Kickstart) > 0 {
				r, ok := b.Resource("ks-file")
				if !ok {
					dir, err := os.MkdirTemp("", "kscloud-ks-")
					if err != nil {
						return err
					}
					defer os.RemoveAll(dir)
					path := filepath.Join(dir, "ks.cfg")
					if err := os.WriteFile(path, w.Kickstart, 0o600); err != nil {
						return err
					}
					n, _, err := w.fileImage(ctx, &fs, "CONTEXT", ksFileName(b), path, w.tags(b, "ks-file"))
					r = install.Resource{Kind: install.KindImage, ID: fmt.Sprintf("%s%d", preImage, n), Role: "ks-file", Step: "installer-files"}
					if n == 0 {
						r.ID = ""
					}
					if err := b.RecordCreated(r, err); err != nil {
						return err
					}
				}
				n, _ := parseID(r.ID, preImage, "image")
				if _, err := w.waitImage(ctx, n, "kickstart file "+ksFileName(b), 30*time.Minute); err != nil {
					return err
				}
			}
			for _, k := range []string{"one.kernel", "one.initrd"} {
				if v := b.Value(k); v != "" {
					if _, err := w.waitImage(ctx, atoi(v), "installer file", 2*time.Hour); err != nil {
						return err
					}
				}
			}
			return nil
		},
		Cleanup: func(ctx context.Context, b *install.Build, failed bool) error {
			// The kickstart file is the build's; kernel and initrd are
			// shared by every build that boots them.
			r, ok := b.Resource("ks-file")
			if !ok || r.Deleted {
				return nil
			}
			if err := w.P.DeregisterImage(ctx, r.ID); err != nil && !cloud.IsNotFound(err) {
				return err
			}
			b.MarkDeleted(r.Kind, r.ID)
			return nil
		},
	}
}

// cmdline is the installer's command line for a VM with lease nic.
func (w *Workflow) cmdline(b *install.Build, v *vmInfo) string {
	var args []string
	if p := strings.TrimSpace(w.CmdlinePrefix); p != "" {
		args = append(args, p)
	}
	if nic := v.Template.first("NIC"); nic != nil && nic.get("IP") != "" {
		c := v.Template.first("CONTEXT")
		gw, mask, dns := "", "255.255.255.0", ""
		if c != nil {
			gw, dns = c.get("ETH0_GATEWAY"), c.get("ETH0_DNS")
			if m := c.get("ETH0_MASK"); m != "" {
				mask = m
			}
		}
		args = append(args, fmt.Sprintf("ip=%s::%s:%s:%s:eth0:none", nic.get("IP"), gw, mask, sanitizeHost(v.Name)))
		for _, d := range strings.Fields(dns) {
			args = append(args, "nameserver="+d)
		}
	}
	switch {
	case w.KickstartURL != "":
		args = append(args, "inst.ks="+w.KickstartURL)
	case len(w.Kickstart) > 0:
		args = append(args, "inst.ks=hd:LABEL=CONTEXT:/"+ksFileName(b))
	}
	if w.Args != "" {
		args = append(args, w.Args)
	}
	return strings.Join(args, " ")
}

func sanitizeHost(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), "-")
}

// launchStep allocates the installer VM on hold, reads its lease into
// ip= on KERNEL_CMD (updateconf, allowed in HOLD), and releases it.
// The VM is recorded the moment oned returns its id.
func (w *Workflow) launchStep(role string, disk func(b *install.Build) ([]cloud.Attachment, error)) install.Step {
	return install.Step{
		Name: "launch-" + role,
		Run: func(ctx context.Context, b *install.Build) error {
			r, ok := b.Resource(role)
			if !ok {
				vols, err := disk(b)
				if err != nil {
					return err
				}
				spec := cloud.InstanceSpec{Name: b.Spec.Name, KernelID: b.Value("one.kernel"), RamdiskID: b.Value("one.initrd"),
					MemoryMB: b.Spec.MemoryMB, CPUs: b.Spec.CPUs, VNC: b.Spec.VNC, Volumes: vols, Tags: w.tags(b, role)}
				if spec.Name == "" {
					spec.Name = "kscloud-" + b.ID
				}
				o := runOpts{hold: true}
				if ks, ok := b.Resource("ks-file"); ok {
					n, _ := parseID(ks.ID, preImage, "image")
					o.contextFiles = fmt.Sprintf("$FILE[IMAGE_ID=%d]", n)
				}
				if len(vols) == 0 {
					o.volatileMB = b.Spec.DiskGiB * 1024
				}
				inst, err := w.P.runInstance(ctx, spec, o)
				r = install.Resource{Kind: install.KindInstance, ID: inst.ID, Role: role, Step: "launch-" + role}
				if err := b.RecordCreated(r, err); err != nil {
					return err
				}
				w.status(fmt.Sprintf("instance %s allocated on hold", inst.ID))
			}
			n, _ := parseID(r.ID, preVM, "instance")
			v, err := w.P.vmInfo(ctx, n)
			if err != nil {
				return fmt.Errorf("instance %s: %w", r.ID, err)
			}
			if v.State != stHold {
				return nil // resumed after the release
			}
			cmd := w.cmdline(b, &v)
			// The kernel cuts a longer line silently (x86: 2047 bytes).
			if err := userdata.CheckCmdline(cmd); err != nil {
				return fmt.Errorf("instance %s: installer command line with the lease's ip=: %w", r.ID, err)
			}
			if err := w.P.setKernelCmd(ctx, &v, cmd); err != nil {
				return err
			}
			b.SetValue("cmdline", cmd)
			if _, err := w.P.c.callInt(ctx, "one.vm.action", "release", n); err != nil {
				return fmt.Errorf("instance %s: %w", r.ID, err)
			}
			w.status(fmt.Sprintf("instance %s released: %s", r.ID, cmd))
			return nil
		},
		Cleanup: w.remove(role),
	}
}

// remove is the cleanup of a step that created the resource of role:
// removed unless the build keeps it (and succeeded).
func (w *Workflow) remove(role string) func(ctx context.Context, b *install.Build, failed bool) error {
	return func(ctx context.Context, b *install.Build, failed bool) error {
		r, ok := b.Resource(role)
		if !ok || r.Deleted || (r.Keep && !failed) {
			return nil
		}
		if err := install.DeleteResource(ctx, w.P, r); err != nil && !cloud.IsNotFound(err) {
			return err
		}
		b.MarkDeleted(r.Kind, r.ID)
		return nil
	}
}

// followStep waits for the installer to power off: RUNNING, then
// SHUTDOWN_POWEROFF and POWEROFF once oned's monitor misses the domain.
// When the VM's host runs nchookd (its probe's MONITORING/KSCLOUD_*,
// nodehook.go) the install's progress is shown, a failure nchookd saw
// ends the wait, and an install in place (role "instance") is over when
// nchookd has the installed system running (phase final, VM RUNNING).
func (w *Workflow) followStep(role string) install.Step {
	inPlace := role == "instance"
	return install.Step{
		Name: "follow-install",
		Run: func(ctx context.Context, b *install.Build) error {
			r, _ := b.Resource(role)
			n, err := parseID(r.ID, preVM, "instance")
			if err != nil {
				return err
			}
			w.status("waiting for " + r.ID + " to install and power off (OpenNebula has no console output to follow)")
			start := time.Now()
			timeout := b.Spec.Timeout.Duration
			if timeout <= 0 {
				timeout = 2 * time.Hour
			}
			vncSaid, last := false, ""
			hookSaid, lastPhase, lastProgress, byHook := false, "", "", false
			var runningSince time.Time
			grace := w.NodeHookGrace
			if grace <= 0 {
				grace = 90 * time.Second
			}
			_, err = w.waitVM(ctx, n, "POWEROFF", timeout, func(v *vmInfo) (bool, error) {
				if s := stateName(v.State, v.LCM); s != last {
					last = s
					w.status(r.ID + " " + s)
				}
				if err := failed(v); err != nil {
					return false, err
				}
				if b.Spec.VNC && !vncSaid && v.State == stActive && v.LCM == lcmRunning {
					if c, err := w.P.VNCConsole(ctx, r.ID); err == nil {
						vncSaid = true
						w.status(fmt.Sprintf("VNC console: %s password %s", c.Addr(), c.Password))
						b.SetValue("vnc", c.URL())
					}
				}
				// The probe sees only a domain that runs: its phase
				// counts on a RUNNING VM.
				if h, ok := v.nodeHook(); ok && v.State == stActive && v.LCM == lcmRunning {
					if !hookSaid {
						hookSaid = true
						w.status(fmt.Sprintf("%s: its host runs nchookd %s, which follows the install", r.ID, h.Version))
						b.SetValue("nchookd", h.Version)
					}
					if h.Progress != "" && h.Progress != lastProgress {
						lastProgress = h.Progress
						w.status(r.ID + " progress: " + h.Progress)
					}
					if h.Phase != lastPhase {
						lastPhase = h.Phase
						w.status(r.ID + " install " + h.Phase + " (nchookd)")
					}
					if h.Phase == hookFailed {
						why := h.Reason
						if why == "" {
							why = "no reason given"
						}
						return false, &install.InstallError{Instance: r.ID, Reason: "the install failed (nchookd on its host): " + why}
					}
					if inPlace && h.Phase == hookFinal && v.State == stActive && v.LCM == lcmRunning {
						byHook = true
						return true, nil
					}
				}
				if w.NeedNodeHook && !hookSaid && v.State == stActive && v.LCM == lcmRunning {
					if runningSince.IsZero() {
						runningSince = time.Now()
					} else if time.Since(runningSince) > grace {
						return false, &install.InstallError{Instance: r.ID, Reason: fmt.Sprintf("the kickstart relies on nchookd (--nchookd), but %s's host reports none in its MONITORING after %s RUNNING (no KSCLOUD_NCHOOKD: nchookd or its VM monitor probe is missing there); a reboot would start the installer again: end the kickstart with poweroff or enable nchookd on the hosts", r.ID, grace)}
					}
				}
				return v.State == stPoweroff, nil
			})
			if err != nil {
				return err
			}
			b.SetValue("install.seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
			b.SetValue("install.ended", time.Now().UTC().Format(time.RFC3339Nano))
			if byHook {
				w.status("installed in place: nchookd boots the installed disk (the VM stayed RUNNING)")
			} else {
				w.status("installer powered off")
			}
			return nil
		},
	}
}

// setKernelCmd sets OS/KERNEL_CMD keeping the rest of OS (replace mode
// erases every OS sub-attribute not sent).
func (p *Provider) setKernelCmd(ctx context.Context, v *vmInfo, cmd string) error {
	t := &tmpl{}
	kv := []string{}
	if os := v.Template.first("OS"); os != nil {
		for _, s := range updateconfOS {
			if s != "KERNEL_CMD" && os.get(s) != "" {
				kv = append(kv, s, os.get(s))
			}
		}
	}
	kv = append(kv, "KERNEL_CMD", cmd)
	t.vector("OS", kv...)
	p.resendOthers(t, v, "OS")
	return p.updateConf(ctx, v.ID, t, false)
}

// updateconfOS are the OS sub-attributes updateconf carries.
var updateconfOS = []string{"ARCH", "MACHINE", "KERNEL", "INITRD", "BOOTLOADER", "BOOT", "KERNEL_CMD", "ROOT", "SD_DISK_BUS", "UUID", "FIRMWARE"}

// resendOthers adds every updateconf section but skip as the VM has it:
// in replace mode a section left out is erased (one#5484). CONTEXT is not
// one of them: oned keeps the CONTEXT of a VM when none is sent (5.12 →
// 7.0, VirtualMachine::updateconf), and a re-sent one is parsed again —
// its FILES_DS, resolved at allocate to "<source>:'<name>' ", is then a
// syntax error on 6.10/7.0.
func (p *Provider) resendOthers(t *tmpl, v *vmInfo, skip string) {
	for _, sec := range []string{"OS", "FEATURES", "INPUT", "GRAPHICS", "RAW", "CPU_MODEL", "VIDEO", "BACKUP_CONFIG"} {
		if sec == skip {
			continue
		}
		for _, n := range v.Template.all(sec) {
			t.node(n)
		}
	}
}

// updateConf sends one.vm.updateconf; merge only where oned has it (6.2+).
func (p *Provider) updateConf(ctx context.Context, n int, t *tmpl, merge bool) error {
	args := []any{n, t}
	if p.MergeUpdateConf() {
		typ := 0
		if merge {
			typ = 1
		}
		args = append(args, typ)
	}
	if _, err := p.c.callInt(ctx, "one.vm.updateconf", args...); err != nil {
		return fmt.Errorf("instance %s: %w", vmID(n), err)
	}
	return nil
}

// bootDiskStep drops the installer from the powered-off VM (updateconf
// without KERNEL, INITRD, KERNEL_CMD, ROOT; merge mode with them empty on
// 6.2+, replace mode with every other section re-sent before), resumes
// it (oned writes a new deployment from the current template) and waits
// for RUNNING.
func (w *Workflow) bootDiskStep(role string) install.Step {
	return install.Step{
		Name: "boot-installed",
		Run: func(ctx context.Context, b *install.Build) error {
			r, _ := b.Resource(role)
			n, err := parseID(r.ID, preVM, "instance")
			if err != nil {
				return err
			}
			v, err := w.P.vmInfo(ctx, n)
			if err != nil {
				return fmt.Errorf("instance %s: %w", r.ID, err)
			}
			if v.State == stPoweroff {
				if err := w.P.dropKernel(ctx, &v); err != nil {
					return err
				}
				if _, err := w.P.c.callInt(ctx, "one.vm.action", "resume", n); err != nil {
					return fmt.Errorf("instance %s: %w", r.ID, err)
				}
				w.status(r.ID + " resumed from its disk")
			}
			v, err = w.waitVM(ctx, n, "RUNNING", 30*time.Minute, func(v *vmInfo) (bool, error) {
				if err := failed(v); err != nil {
					return false, err
				}
				return v.State == stActive && v.LCM == lcmRunning, nil
			})
			if err != nil {
				return err
			}
			b.SetKeep(install.KindInstance, r.ID)
			inst := w.P.toInstance(ctx, &v)
			res := &install.Result{InstanceID: r.ID, VNC: inst.VNC}
			if inst.PrivateIP != "" {
				res.Addresses = []string{inst.PrivateIP}
			}
			if s := b.Value("install.seconds"); s != "" {
				fmt.Sscan(s, &res.InstallSeconds)
			}
			b.Result = res
			return nil
		},
	}
}

// dropKernel removes the installer boot from a powered-off VM.
func (p *Provider) dropKernel(ctx context.Context, v *vmInfo) error {
	drop := map[string]bool{"KERNEL": true, "INITRD": true, "KERNEL_CMD": true, "ROOT": true}
	kv := []string{}
	if os := v.Template.first("OS"); os != nil {
		for _, s := range updateconfOS {
			if !drop[s] && s != "BOOT" && os.get(s) != "" {
				kv = append(kv, s, os.get(s))
			}
		}
	}
	kv = append(kv, "BOOT", "disk0")
	t := &tmpl{}
	if p.MergeUpdateConf() {
		// Merge replaces the named sub-attributes: empty ones are skipped
		// by the KVM driver, the rest of the VM stays as it is.
		t.b.WriteString("<OS>")
		for i := 0; i+1 < len(kv); i += 2 {
			t.single(kv[i], kv[i+1])
		}
		for _, s := range []string{"KERNEL", "INITRD", "KERNEL_CMD", "ROOT"} {
			t.single(s, "")
		}
		t.b.WriteString("</OS>")
		return p.updateConf(ctx, v.ID, t, true)
	}
	t.vector("OS", kv...)
	p.resendOthers(t, v, "OS")
	return p.updateConf(ctx, v.ID, t, false)
}

// RunSteps install in place: installer files, VM on hold with a volatile
// disk and the lease on its command line, follow to POWEROFF, boot from
// the disk.
func (w *Workflow) RunSteps() []install.Step {
	return []install.Step{
		w.filesStep(),
		w.launchStep("instance", func(*install.Build) ([]cloud.Attachment, error) { return nil, nil }),
		w.followStep("instance"),
		w.bootDiskStep("instance"),
	}
}

// ImageRunSteps boot a copy of a baked image and wait for RUNNING.
func (w *Workflow) ImageRunSteps() []install.Step {
	return []install.Step{{
		Name: "launch",
		Run: func(ctx context.Context, b *install.Build) error {
			r, ok := b.Resource("instance")
			if !ok {
				name := b.Spec.Name
				if name == "" {
					name = "kscloud-" + b.ID
				}
				inst, err := w.P.RunInstance(ctx, cloud.InstanceSpec{Name: name, ImageID: b.Spec.ImageID, MemoryMB: b.Spec.MemoryMB,
					CPUs: b.Spec.CPUs, VNC: b.Spec.VNC, Tags: w.tags(b, "instance")})
				r = install.Resource{Kind: install.KindInstance, ID: inst.ID, Role: "instance", Step: "launch"}
				if err := b.RecordCreated(r, err); err != nil {
					return err
				}
				w.status("instance " + inst.ID + " launched")
			}
			return nil
		},
		Cleanup: w.remove("instance"),
	}, w.bootDiskStep("instance")}
}

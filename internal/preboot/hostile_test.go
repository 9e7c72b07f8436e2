package preboot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/testenv"
	"github.com/kscloud/kscloud/test/ncsim"
)

// The instance directory belongs to the NC's user, who is hostile here:
// these tests play what that user can do to it while nchookd (root) works.

// setLibvirtFilePath points instance.xml's <libvirtFilePath> at p.
func setLibvirtFilePath(t *testing.T, inst *ncsim.Instance, p string) {
	t.Helper()
	ip := filepath.Join(inst.Dir, "instance.xml")
	b := mustRead(t, ip)
	i, j := bytes.Index(b, []byte("<libvirtFilePath>")), bytes.Index(b, []byte("</libvirtFilePath>"))
	if i < 0 || j < 0 {
		t.Fatal("no libvirtFilePath in instance.xml")
	}
	var out []byte
	out = append(out, b[:i+len("<libvirtFilePath>")]...)
	out = append(out, p...)
	out = append(out, b[j:]...)
	if err := os.WriteFile(ip, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// victimDir is a root-owned directory outside the instances root holding
// an authorized_keys file of mode 0600.
func victimDir(t *testing.T) (dir, keys string, content []byte) {
	dir = t.TempDir()
	keys = filepath.Join(dir, "authorized_keys")
	content = []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyOnly root@node\n")
	if err := os.WriteFile(keys, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, keys, content
}

func assertUntouched(t *testing.T, dir, keys string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(keys)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("%s replaced: %q (%v)", keys, got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("files appeared in %s: %v", dir, names)
	}
}

// The finding: <libvirtFilePath> names a file in the instance directory,
// and the directory is swapped for a symlink to a root-owned directory
// while nchookd works. The swap happens at a pause point in the code under
// test (after the decision, before the write), so the attack is
// deterministic. The root-owned file must stay as it was.
func TestSymlinkSwapOfInstanceDir(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("bootparams=ks=http://10.0.0.1/ks.cfg\n"), true)
	vdir, keys, content := victimDir(t)
	// The NC's user names its own "authorized_keys" as the domain file.
	dom := mustRead(t, inst.DomainFile())
	os.WriteFile(filepath.Join(inst.Dir, "authorized_keys"), dom, 0o644)
	setLibvirtFilePath(t, inst, filepath.Join(inst.Dir, "authorized_keys"))
	swapped := false
	testPause = func(point, dir string) {
		if point != "before-write" || swapped {
			return
		}
		swapped = true
		if err := os.Rename(inst.Dir, inst.Dir+".moved"); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(vdir, inst.Dir); err != nil {
			t.Error(err)
		}
	}
	defer func() { testPause = func(string, string) {} }()
	_, err := PreBoot(cfg, inst.Dir)
	if !swapped {
		t.Fatalf("the pause point was not reached: %v", err)
	}
	assertUntouched(t, vdir, keys, content)
	// What was rewritten, if anything, is the directory nchookd opened.
	if err == nil {
		if got := mustRead(t, filepath.Join(inst.Dir+".moved", "authorized_keys")); !bytes.Contains(got, []byte("ks=http://10.0.0.1/ks.cfg")) {
			t.Fatalf("the opened directory's domain file was not the one rewritten")
		}
	}
}

// A <libvirtFilePath> outside the instance directory is refused by name,
// and nothing outside is read or written.
func TestLibvirtFilePathOutsideDir(t *testing.T) {
	for _, p := range []string{"VICTIM/authorized_keys", "../../../../VICTIM/authorized_keys", "instance.xml", ".nchookd.lock", "instance-libvirt.xml.orig"} {
		t.Run(p, func(t *testing.T) {
			cfg, inst := setup(t, "3.4", []byte("bootparams=ks=x\n"), true)
			vdir, keys, content := victimDir(t)
			lp := strings.Replace(p, "VICTIM", vdir, 1)
			if strings.HasPrefix(p, "VICTIM") {
				lp = vdir + "/authorized_keys"
			} else if !strings.HasPrefix(p, "..") {
				lp = filepath.Join(inst.Dir, p)
			}
			setLibvirtFilePath(t, inst, lp)
			before := mustRead(t, inst.DomainFile())
			_, err := PreBoot(cfg, inst.Dir)
			if err == nil || !strings.Contains(err.Error(), "libvirtFilePath") || !strings.Contains(err.Error(), "instance i-3A2B41C0") {
				t.Fatalf("got %v, want a refusal naming libvirtFilePath", err)
			}
			assertUntouched(t, vdir, keys, content)
			if !bytes.Equal(before, mustRead(t, inst.DomainFile())) {
				t.Fatal("domain file changed")
			}
		})
	}
}

// A FIFO, a symlink or a directory in place of a file nchookd reads,
// replaces or locks is refused at once (no hang on a FIFO, no write
// through a symlink).
func TestNonRegularFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		make       func(t *testing.T, p, target string)
	}{
		{"instance.xml FIFO", "instance.xml", mkfifo},
		{"domain file FIFO", "instance-libvirt.xml", mkfifo},
		{"lock file FIFO", lockFile, mkfifo},
		{"instance.xml symlink", "instance.xml", symlinkTo},
		{"domain file symlink", "instance-libvirt.xml", symlinkTo},
		{"lock file symlink", lockFile, symlinkTo},
		{"domain file directory", "instance-libvirt.xml", func(t *testing.T, p, _ string) { os.Mkdir(p, 0o755) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, inst := setup(t, "3.4", []byte("bootparams=ks=x\n"), true)
			vdir, keys, content := victimDir(t)
			p := filepath.Join(inst.Dir, tc.file)
			os.Remove(p)
			tc.make(t, p, keys)
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, err := PreBootContext(ctx, cfg, inst.Dir)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.file) {
					t.Fatalf("got %v, want a refusal naming %s", err, tc.file)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("pre-boot hangs")
			}
			assertUntouched(t, vdir, keys, content)
		})
	}
}

func mkfifo(t *testing.T, p, _ string) {
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlinkTo(t *testing.T, p, target string) {
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// The instance directory itself, or a directory above it, being a symlink
// (even to a directory inside the instances root) is refused.
func TestInstanceDirSymlinkRefused(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("bootparams=ks=x\n"), true)
	link := filepath.Join(filepath.Dir(inst.Dir), "i-LINK")
	os.Symlink(inst.Dir, link)
	if _, err := PreBoot(cfg, link); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("symlinked instance dir: %v", err)
	}
	user := filepath.Dir(inst.Dir)
	os.Symlink(user, filepath.Join(filepath.Dir(user), "AIDALINK"))
	if _, err := PreBoot(cfg, filepath.Join(filepath.Dir(user), "AIDALINK", filepath.Base(inst.Dir))); err == nil {
		t.Fatal("symlinked parent accepted")
	}
	// World-writable directory on the way: not as the NC lays it out.
	os.Chmod(user, 0o777)
	if _, err := PreBoot(cfg, inst.Dir); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("world-writable parent: %v", err)
	}
}

// chownTree gives a directory tree to uid/gid and opens its ancestors
// for traversal (t.TempDir's are 0700), as an NC's instances root is.
func chownTree(t *testing.T, root string, uid, gid int) {
	t.Helper()
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	testenv.OpenAncestors(t, root)
}

// The finding: a ramdisk naming a root-only file plus an inline kickstart
// made the daemon copy the file into a world-readable initrd. The ramdisk
// is read with the instance directory owner's credentials and must lie in
// the instances root; the initrd nchookd writes is 0640, owned by the
// directory's owner.
func TestRamdiskReadAsTheNCUser(t *testing.T) {
	testenv.Root(t)
	const nobody = 65534
	ks := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nbootparams=ip=dhcp\n--XX\nContent-Type: text/x-kickstart\n\nrootpw --iscrypted $6$x\n--XX--\n"
	secret := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(secret, []byte("root:$6$secret-hash:19000:0:99999:7:::\n"), 0o600)
	chownTree(t, filepath.Dir(secret), 0, 0)
	os.Chmod(filepath.Dir(secret), 0o755)

	for _, tc := range []struct{ name, ramdisk string }{
		{"root-only file outside", secret},
		{"root-only file inside the instance directory", "INSIDE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, inst := setup(t, "3.4", []byte(ks), true)
			root := cfg.Hook.InstancesRoot[0]
			chownTree(t, root, nobody, nobody)
			rd := tc.ramdisk
			if rd == "INSIDE" {
				rd = filepath.Join(inst.Dir, "root-only")
				os.WriteFile(rd, []byte("root-only-bytes"), 0o600) // root's, as the test runs as root
			}
			os.Remove(inst.Ramdisk)
			if err := os.Symlink(rd, inst.Ramdisk); err != nil {
				t.Fatal(err)
			}
			os.Lchown(inst.Ramdisk, nobody, nobody)
			before := mustRead(t, inst.DomainFile())
			_, err := PreBoot(cfg, inst.Dir)
			if err == nil {
				t.Fatal("a root-only ramdisk was read on the NC user's behalf")
			}
			if !strings.Contains(err.Error(), "instance i-3A2B41C0") || !strings.Contains(err.Error(), "permission denied") {
				t.Fatalf("error %q: want one naming the instance and the denied file", err)
			}
			if _, err := os.Lstat(filepath.Join(inst.Dir, KickstartInitrd)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s written: %v", KickstartInitrd, err)
			}
			if !bytes.Equal(before, mustRead(t, inst.DomainFile())) {
				t.Fatal("domain file changed")
			}
		})
	}

	t.Run("readable ramdisk: initrd 0640 owned by the NC user", func(t *testing.T) {
		cfg, inst := setup(t, "3.4", []byte(ks), true)
		chownTree(t, cfg.Hook.InstancesRoot[0], nobody, nobody)
		o, err := PreBoot(cfg, inst.Dir)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(o.Initrd)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != FileMode || sys.Uid != nobody || sys.Gid != nobody {
			t.Fatalf("%s: mode %v owner %d:%d, want %v %d:%d", o.Initrd, st.Mode().Perm(), sys.Uid, sys.Gid, FileMode, nobody, nobody)
		}
		lk, _ := os.Lstat(filepath.Join(inst.Dir, lockFile))
		if lk == nil || lk.Mode().Perm() != 0o600 || lk.Sys().(*syscall.Stat_t).Uid != nobody {
			t.Fatalf("lock file: %v", lk)
		}
		// The rewritten domain file keeps the NC's owner.
		dst, _ := os.Lstat(inst.DomainFile())
		if dst.Sys().(*syscall.Stat_t).Uid != nobody {
			t.Fatal("domain file's owner changed")
		}
	})
}

// A ramdisk the NC's user may read but outside the instances root and
// hook.image_roots is refused; listing its root admits it.
func TestRamdiskOutsideImageRoots(t *testing.T) {
	ks := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nbootparams=ip=dhcp\n--XX\nContent-Type: text/x-kickstart\n\ntext\n--XX--\n"
	cfg, inst := setup(t, "3.4", []byte(ks), true)
	other := t.TempDir()
	rd := filepath.Join(other, "initrd")
	os.WriteFile(rd, []byte("initrd-bytes"), 0o644)
	os.Remove(inst.Ramdisk)
	os.Symlink(rd, inst.Ramdisk)
	if _, err := PreBoot(cfg, inst.Dir); err == nil || !strings.Contains(err.Error(), "hook.image_roots") {
		t.Fatalf("got %v", err)
	}
	cfg.Hook.ImageRoots = []string{other}
	if _, err := PreBoot(cfg, inst.Dir); err != nil {
		t.Fatal(err)
	}
}

// A held lock ends the wait when the context does, with ErrLocked.
func TestHeldLockBounded(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("bootparams=ks=x\n"), true)
	f, err := os.OpenFile(filepath.Join(inst.Dir, lockFile), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = PreBootContext(ctx, cfg, inst.Dir)
	if !errors.Is(err, ErrLocked) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

// A wrong instances_root with on_error = "boot" must not stop launches
// that ask nothing of nchookd: no directives → left as the NC wrote it. A
// launch with directives is refused; with on_error = "refuse", every one.
func TestOutsideRootWithoutDirectives(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("#cloud-config\npackages: [vim]\n"), true)
	cfg.Hook.InstancesRoot = []string{"/var/lib/eucalyptus/instancs"}
	if _, err := PreBoot(cfg, inst.Dir); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("on_error = refuse: %v", err)
	}
	cfg.Hook.OnError = config.OnErrorBoot
	before := mustRead(t, inst.DomainFile())
	o, err := PreBoot(cfg, inst.Dir)
	if err != nil || o.Changed {
		t.Fatalf("%+v %v", o, err)
	}
	if !bytes.Equal(before, mustRead(t, inst.DomainFile())) {
		t.Fatal("domain file changed")
	}
	cfg2, inst2 := setup(t, "3.4", []byte("bootparams=ks=x\n"), true)
	cfg2.Hook.InstancesRoot, cfg2.Hook.OnError = cfg.Hook.InstancesRoot, config.OnErrorBoot
	if _, err := PreBoot(cfg2, inst2.Dir); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("directives outside the root: %v", err)
	}
}

// Outside the instances root (on_error = "boot"), instance.xml is read
// from the directory whose owner was checked, held open: swapping the
// path for a symlink to another instance directory in between must not
// make nchookd answer for the other one.
func TestOutsideRootReadsHeldDir(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("#cloud-config\n"), true)
	cfg.Hook.InstancesRoot = []string{"/var/lib/eucalyptus/instancs"}
	cfg.Hook.OnError = config.OnErrorBoot
	_, other := setup(t, "3.4", []byte("#cloud-config\n"), true)
	ix := mustRead(t, filepath.Join(other.Dir, "instance.xml"))
	os.WriteFile(filepath.Join(other.Dir, "instance.xml"), bytes.ReplaceAll(ix, []byte(inst.Name), []byte("i-SWAPPED")), 0o644)
	swapped := false
	testPause = func(point, dir string) {
		if point != "outside-root-read" || swapped {
			return
		}
		swapped = true
		if err := os.Rename(inst.Dir, inst.Dir+".moved"); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(other.Dir, inst.Dir); err != nil {
			t.Error(err)
		}
	}
	defer func() { testPause = func(string, string) {} }()
	o, err := PreBoot(cfg, inst.Dir)
	if !swapped || err != nil || o.Instance != inst.Name || o.Changed {
		t.Fatalf("swapped %v: %+v %v; want the held directory's instance %s, unchanged", swapped, o, err, inst.Name)
	}
}

// The rewritten domain XML holds the VNC password: it keeps the NC's owner
// and mode less what every local user or the NC's group could read.
func TestRewrittenDomainNotWorldReadable(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("bootparams=ks=x\nkscloud.vnc=yes\n"), true)
	os.Chmod(inst.DomainFile(), 0o644)
	o, err := PreBoot(cfg, inst.Dir)
	if err != nil || o.VNC == nil {
		t.Fatalf("%+v %v", o, err)
	}
	st, _ := os.Stat(inst.DomainFile())
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("domain file with a VNC password is %v, want 0600", st.Mode().Perm())
	}
}

// The NC's user may hard-link into its instance directory, as the lock's
// name, a file it can read and write but does not own (fs.protected_hardlinks
// allows that; with it off, any file). nchookd, as root, must not then give
// that file to the NC's user nor change its mode: only its own lock file,
// linked nowhere else, is narrowed and handed over.
func TestLockHardLinkNotChowned(t *testing.T) {
	testenv.Root(t)
	const nobody = 65534
	cfg, inst := setup(t, "3.4", []byte("bootparams=ks=http://10.0.0.1/ks.cfg\n"), true)
	chownTree(t, cfg.Hook.InstancesRoot[0], nobody, nobody)
	// A root-owned file the NC's group may write, on the same file system.
	victim := filepath.Join(cfg.Hook.InstancesRoot[0], "victim.conf")
	if err := os.WriteFile(victim, []byte("operator=1\n"), 0o664); err != nil {
		t.Fatal(err)
	}
	os.Chown(victim, 0, nobody)
	os.Chmod(victim, 0o664)
	if err := os.Link(victim, filepath.Join(inst.Dir, lockFile)); err != nil {
		t.Fatal(err)
	}
	PreBoot(cfg, inst.Dir)
	st, err := os.Lstat(victim)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 0 || sys.Gid != nobody || st.Mode().Perm() != 0o664 {
		t.Fatalf("%s: owner %d:%d mode %v, want 0:%d 0664 (nchookd changed a file the NC's user linked as its lock)", victim, sys.Uid, sys.Gid, st.Mode().Perm(), nobody)
	}
}

// An instance directory owned by root makes nchookd read what instance.xml
// names with root's credentials. If a non-root group may write it (e.g. a
// root:eucalyptus 0775 directory elsewhere, reached through an instances
// root the NC's user redirected by a symlink in a parent it owns), its
// files are not root's: it is refused.
func TestRootOwnedGroupWritableInstanceDirRefused(t *testing.T) {
	testenv.Root(t)
	const nobody = 65534
	cfg, inst := setup(t, "3.4", []byte("bootparams=ks=http://10.0.0.1/ks.cfg\n"), true)
	os.Chown(inst.Dir, 0, nobody)
	os.Chmod(inst.Dir, 0o775)
	before := mustRead(t, inst.DomainFile())
	_, err := PreBoot(cfg, inst.Dir)
	if err == nil || !strings.Contains(err.Error(), "writable by group") {
		t.Fatalf("a root-owned instance directory group %d may write was used: %v", nobody, err)
	}
	if !bytes.Equal(before, mustRead(t, inst.DomainFile())) {
		t.Fatal("domain file changed")
	}
	// root:root 0775 (only root's group may write) is still root's.
	os.Chown(inst.Dir, 0, 0)
	if _, err := PreBoot(cfg, inst.Dir); err != nil {
		t.Fatal(err)
	}
}

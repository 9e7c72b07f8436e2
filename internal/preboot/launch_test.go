package preboot

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/test/ncsim"
)

// setup writes an NC-style instance directory below a fresh instances root
// and returns the config allowing it.
func setup(t *testing.T, version string, userData []byte, withKernel bool) (*config.Config, *ncsim.Instance) {
	t.Helper()
	root := t.TempDir()
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{root}
	dir := filepath.Join(root, "work", "AIDA", "i-3A2B41C0")
	inst := &ncsim.Instance{Name: "i-3A2B41C0", Dir: dir, Version: version, Disk: filepath.Join(dir, "disk.img"), UserData: userData}
	if withKernel {
		inst.Kernel, inst.Ramdisk = filepath.Join(dir, "link-to-kernel"), filepath.Join(dir, "link-to-ramdisk")
	}
	if err := ncsim.Write(inst); err != nil {
		t.Fatal(err)
	}
	if withKernel {
		os.WriteFile(inst.Kernel, []byte("kernel"), 0o644)
		os.WriteFile(inst.Ramdisk, []byte("initrd-bytes"), 0o644)
	}
	return cfg, inst
}

func cmdline(t *testing.T, domainXML []byte) string {
	t.Helper()
	var d struct {
		Cmdline string `xml:"os>cmdline"`
	}
	if err := xmlUnmarshal(domainXML, &d); err != nil {
		t.Fatal(err)
	}
	return d.Cmdline
}

func TestPreBootRewritesBothNCVersions(t *testing.T) {
	for _, v := range []string{"3.1", "3.4"} {
		t.Run(v, func(t *testing.T) {
			ud := []byte("#!/bin/sh\n# bootparams=ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp a=&b!c\necho hi\n")
			cfg, inst := setup(t, v, ud, true)
			before, _ := os.ReadFile(inst.DomainFile())
			o, err := PreBoot(cfg, inst.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if !o.Changed || o.Mode != "bake" || o.DomainFile != inst.DomainFile() {
				t.Fatalf("outcome %+v", o)
			}
			after, _ := os.ReadFile(inst.DomainFile())
			if got, want := cmdline(t, after), "ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp a=&b!c console=ttyS1"; got != want {
				t.Fatalf("cmdline %q, want %q", got, want)
			}
			orig, err := os.ReadFile(inst.DomainFile() + OrigSuffix)
			if err != nil || !bytes.Equal(orig, before) {
				t.Fatalf("original not kept: %v", err)
			}
			// A second pre-boot changes nothing and keeps the first original.
			if _, err := PreBoot(cfg, inst.Dir); err != nil {
				t.Fatal(err)
			}
			again, _ := os.ReadFile(inst.DomainFile())
			if !bytes.Equal(again, after) {
				t.Fatal("second pre-boot changed the file")
			}
			orig2, _ := os.ReadFile(inst.DomainFile() + OrigSuffix)
			if !bytes.Equal(orig2, before) {
				t.Fatal("second pre-boot replaced the kept original")
			}
		})
	}
}

// The seed's own example passes console=ttyS0, but the NC's serial log is
// port 1: the installer must get ttyS1 (and only it) or the log stays empty.
func TestSeedConsoleParamFollowsTheRealPort(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("bootparams=ksdevice=link ip=dhcp vnc keymap=us lang=en_US console=ttyS0\n"), true)
	if _, err := PreBoot(cfg, inst.Dir); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(inst.DomainFile())
	if got := cmdline(t, out); got != "ksdevice=link ip=dhcp vnc keymap=us lang=en_US console=ttyS1" {
		t.Fatalf("cmdline %q", got)
	}
}

func TestNoBootParamsLeavesFile(t *testing.T) {
	for _, ud := range [][]byte{nil, []byte("#cloud-config\npackages: [vim]\n")} {
		cfg, inst := setup(t, "3.4", ud, true)
		before, _ := os.ReadFile(inst.DomainFile())
		o, err := PreBoot(cfg, inst.Dir)
		if err != nil || o.Changed {
			t.Fatalf("%+v %v", o, err)
		}
		after, _ := os.ReadFile(inst.DomainFile())
		if !bytes.Equal(before, after) {
			t.Fatal("file changed")
		}
		if _, err := os.Stat(inst.DomainFile() + OrigSuffix); err == nil {
			t.Fatal("an original was kept for an untouched file")
		}
	}
}

// Every refusal leaves the domain XML byte-identical and names the instance.
func TestRefusalsLeaveFileIdentical(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name   string
		ud     []byte
		kernel bool
		cfg    func(*config.Config)
		want   string
	}{
		{"control char", []byte("bootparams=ks=x\x01y\n"), true, nil, "control"},
		{"too long", []byte("bootparams=" + strings.Repeat("a", 2048) + "\n"), true, nil, "2047"},
		{"unknown directive", []byte("bootparams=ks=x\nkscloud.colour=red\n"), true, nil, "kscloud.colour"},
		{"mode not allowed", []byte("bootparams=ks=x\nkscloud.mode=in-place\n"), true, func(c *config.Config) { c.Policy.Modes = []string{"bake"} }, "not allowed"},
		{"unknown installer", []byte("bootparams=ks=x\nkscloud.installer=f99\n"), true, nil, `installer "f99" is not in the operator's catalog`},
		{"no kernel", []byte("bootparams=ks=x\n"), false, nil, "kernel"},
		{"gzip bomb", gz(bytes.Repeat([]byte("0"), 50<<20)), true, nil, "exceed"},
		{"directives without bootparams", []byte("kscloud.mode=bake\n"), true, nil, "no bootparams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, inst := setup(t, "3.4", tc.ud, tc.kernel)
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			before, _ := os.ReadFile(inst.DomainFile())
			_, err := PreBoot(cfg, inst.Dir)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, "instance i-3A2B41C0") || !strings.Contains(msg, tc.want) || strings.ContainsAny(msg, "\n\x01") {
				t.Fatalf("error %q: want one line naming the instance and %q", msg, tc.want)
			}
			after, _ := os.ReadFile(inst.DomainFile())
			if !bytes.Equal(before, after) {
				t.Fatal("file changed on refusal")
			}
			var names []string
			ents, _ := os.ReadDir(inst.Dir)
			for _, e := range ents {
				if e.Name() != lockFile {
					names = append(names, e.Name())
				}
			}
			want := 2 // instance.xml and the domain XML
			if tc.kernel {
				want = 4 // and the kernel and ramdisk links
			}
			if len(names) != want {
				t.Fatalf("files after refusal: %v", names)
			}
		})
	}
}

func TestCatalogInstallerAndVNC(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("bootparams=inst.ks=http://ks/ks.cfg\nkscloud.installer=f40\nkscloud.vnc=yes\nkscloud.mode=in-place\n"), false)
	cfg.Installer["f40"] = config.Installer{Kernel: "/srv/f40/vmlinuz", Initrd: "/srv/f40/initrd.img", Cmdline: "inst.stage2=http://mirror/f40"}
	o, err := PreBoot(cfg, inst.Dir)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(inst.DomainFile())
	if got := cmdline(t, out); got != "inst.stage2=http://mirror/f40 inst.ks=http://ks/ks.cfg console=ttyS1" {
		t.Fatalf("cmdline %q", got)
	}
	if o.Kernel != "/srv/f40/vmlinuz" || o.Installer != "f40" || o.Mode != "in-place" {
		t.Fatalf("outcome %+v", o)
	}
	if o.VNC == nil || o.VNC.Listen != "127.0.0.1" || len(o.VNC.Password) != 8 {
		t.Fatalf("vnc %+v", o.VNC)
	}
	v, ok, err := libvirtxml.VNCGraphics(out)
	listen, pw := v.Listen, v.Password
	if err != nil || !ok || listen != "127.0.0.1" || pw != o.VNC.Password {
		t.Fatalf("domain vnc %q %q %v %v", listen, pw, ok, err)
	}
	// VNC off by policy: ignored with a note, no graphics.
	cfg2, inst2 := setup(t, "3.4", []byte("bootparams=ks=x\nkscloud.vnc=yes\n"), true)
	cfg2.Policy.VNC = config.VNCOff
	o2, err := PreBoot(cfg2, inst2.Dir)
	if err != nil || o2.VNC != nil || len(o2.Notes) == 0 {
		t.Fatalf("%+v %v", o2, err)
	}
	out2, _ := os.ReadFile(inst2.DomainFile())
	if _, ok, _ := libvirtxml.VNCGraphics(out2); ok {
		t.Fatal("VNC added against policy")
	}
}

func TestInlineKickstartInjected(t *testing.T) {
	ks := "text\nrootpw --lock\npoweroff\n"
	ud := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nbootparams=ip=dhcp\n--XX\nContent-Type: text/x-kickstart\n\n" + ks + "--XX--\n"
	cfg, inst := setup(t, "3.4", []byte(ud), true)
	o, err := PreBoot(cfg, inst.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Kickstart || o.Initrd != filepath.Join(inst.Dir, KickstartInitrd) {
		t.Fatalf("outcome %+v", o)
	}
	out, _ := os.ReadFile(inst.DomainFile())
	if got := cmdline(t, out); got != "ip=dhcp inst.ks=file:/ks.cfg console=ttyS1" {
		t.Fatalf("cmdline %q", got)
	}
	b, err := os.ReadFile(o.Initrd)
	if err != nil || !bytes.HasPrefix(b, []byte("initrd-bytes")) {
		t.Fatalf("initrd copy: %v", err)
	}
	if _, err := PreClean(cfg, inst.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.Initrd); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pre-clean left the initrd copy: %v", err)
	}
}

func TestDirOutsideRootRefused(t *testing.T) {
	cfg, inst := setup(t, "3.4", []byte("bootparams=ks=x\n"), true)
	cfg.Hook.InstancesRoot = []string{t.TempDir()}
	if _, err := PreBoot(cfg, inst.Dir); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("got %v", err)
	}
	if _, err := PreBoot(cfg, "relative/dir"); err == nil {
		t.Fatal("relative dir accepted")
	}
}

func TestDecideOnSamples(t *testing.T) {
	for _, pair := range [][2]string{{"instance-3.1.xml", "libvirt-3.1.xml"}, {"instance-3.4.xml", "instance-libvirt-3.4.2.xml"}} {
		inst, err := os.ReadFile(filepath.Join("../../test/samples/eucalyptus", pair[0]))
		if err != nil {
			t.Fatalf("samples: %v (test/samples/eucalyptus)", err)
		}
		dom, _ := os.ReadFile(filepath.Join("../../test/samples/eucalyptus", pair[1]))
		p, err := Decide(config.Default(), inst, dom, "/var/lib/eucalyptus/instances/work/AIDAxxxxxxxxxxxxxxxxx/i-3A2B41C0")
		if err != nil {
			t.Fatal(err)
		}
		if got := cmdline(t, p.DomainXML); got != "ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp console=ttyS1" {
			t.Fatalf("%s: cmdline %q", pair[1], got)
		}
	}
	// A user-data that is not base64 is refused by name.
	bad := []byte(strings.Replace(string(mustRead(t, "../../test/samples/eucalyptus/instance-3.4.xml")), "Ym9vdHBhcmFtcz1", "!!!", 1))
	if _, err := Decide(config.Default(), bad, nil, "/x"); err == nil || !strings.Contains(err.Error(), "i-3A2B41C0") {
		t.Fatalf("bad base64: %v", err)
	}
	_ = base64.StdEncoding
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVNCPasswordFileModes: a domain file that now holds a VNC password is
// narrowed to 0600 (its owner, the NC, reads it); without VNC the NC's
// mode is kept less what every user could read (the command line may
// carry a kickstart URL with a token).
func TestVNCPasswordFileModes(t *testing.T) {
	for _, vnc := range []bool{true, false} {
		ud := "bootparams=ks=http://x/ks.cfg\n"
		if vnc {
			ud += "kscloud.vnc=yes\n"
		}
		cfg, inst := setup(t, "3.4", []byte(ud), true)
		os.Chmod(inst.DomainFile(), 0o644)
		o, err := PreBoot(cfg, inst.Dir)
		if err != nil || (o.VNC != nil) != vnc {
			t.Fatalf("vnc=%v: %+v %v", vnc, o, err)
		}
		fi, _ := os.Stat(inst.DomainFile())
		want := os.FileMode(0o640)
		if vnc {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("vnc=%v: domain file %v, want %v", vnc, fi.Mode().Perm(), want)
		}
	}
}

package libvirtxml

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Inputs of the golden tests, in testdata/. The Eucalyptus ones are the
// node controller's XSLT output from test/samples/eucalyptus.
var goldenInputs = []struct {
	file      string
	hasKernel bool // the domain has its own kernel (EKI/ERI cases apply)
}{
	{"eucalyptus-3.1.xml", true},
	{"eucalyptus-3.4.2.xml", true},
	{"rich.xml", true},
	{"hvm-nokernel.xml", false},
}

const testSerialLog = "/var/lib/kscloud/instances/i-test/console.log"

// goldenCases are the install requests every input is rewritten with.
var goldenCases = []struct {
	name    string
	catalog bool
	in      Install
}{
	{"catalog-vnc", true, Install{
		Kernel:    "/var/lib/kscloud/installers/fedora-40/vmlinuz",
		Initrd:    "/var/lib/kscloud/installers/fedora-40/initrd.img",
		Cmdline:   "inst.ks=http://10.0.0.1/ks.cfg inst.text ip=dhcp",
		VNC:       &VNC{Listen: "127.0.0.1", Password: "Xy7-kq2Z"},
		SerialLog: testSerialLog,
		Mode:      ModeInPlace,
		Installer: "fedora-40",
	}},
	{"catalog", true, Install{
		Kernel:    "/var/lib/kscloud/installers/fedora-40/vmlinuz",
		Initrd:    "/var/lib/kscloud/installers/fedora-40/initrd.img",
		Cmdline:   "inst.ks=http://10.0.0.1/ks.cfg inst.text ip=dhcp",
		SerialLog: testSerialLog,
		Mode:      ModeBake,
		Installer: "fedora-40",
	}},
	{"eki-vnc", false, Install{
		Cmdline:   "ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp",
		VNC:       &VNC{Listen: "127.0.0.1", Password: "s3cr3t"},
		SerialLog: testSerialLog,
		Mode:      ModeInPlace,
	}},
	{"eki", false, Install{
		Cmdline:   "ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp",
		SerialLog: testSerialLog,
		Mode:      ModeBake,
	}},
}

// TestGolden rewrites every input with every case, compares the installer and
// final domains with testdata/golden, validates them against libvirt's schema,
// checks that nothing the rewrites do not own changed, and that rewriting a
// golden output again is a no-op.
func TestGolden(t *testing.T) {
	for _, gi := range goldenInputs {
		input, err := os.ReadFile(filepath.Join("testdata", gi.file))
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(gi.file, ".xml")
		for _, gc := range goldenCases {
			if !gi.hasKernel && !gc.catalog {
				continue // ErrNoKernel: TestNoKernel
			}
			t.Run(base+"/"+gc.name, func(t *testing.T) {
				t.Parallel()
				installPath := filepath.Join("testdata", "golden", base+"."+gc.name+".install.xml")
				finalPath := filepath.Join("testdata", "golden", base+"."+gc.name+".final.xml")

				inst, err := RewriteInstall(input, gc.in)
				if err != nil {
					t.Fatalf("RewriteInstall: %v", err)
				}
				checkGolden(t, installPath, inst)
				validate(t, installPath)

				final, err := FinalDomain(inst)
				if err != nil {
					t.Fatalf("FinalDomain: %v", err)
				}
				checkGolden(t, finalPath, final)
				validate(t, finalPath)

				// Idempotence, on the golden files themselves.
				goldInst, goldFinal := readFile(t, installPath), readFile(t, finalPath)
				again, err := RewriteInstall(goldInst, gc.in)
				if err != nil {
					t.Fatalf("RewriteInstall of golden output: %v", err)
				}
				if !bytes.Equal(again, goldInst) {
					t.Errorf("RewriteInstall of %s is not a no-op:\n%s", installPath, diff(goldInst, again))
				}
				againFinal, err := FinalDomain(goldFinal)
				if err != nil {
					t.Fatalf("FinalDomain of golden output: %v", err)
				}
				if !bytes.Equal(againFinal, goldFinal) {
					t.Errorf("FinalDomain of %s is not a no-op:\n%s", finalPath, diff(goldFinal, againFinal))
				}

				// Nothing but the owned parts changed.
				assertOnlyOwnedChanged(t, input, inst)
				assertOnlyOwnedChanged(t, input, final)

				// The metadata says what happened.
				m, ok, err := ReadMeta(inst)
				if err != nil || !ok {
					t.Fatalf("ReadMeta(install) = %v, %v", ok, err)
				}
				if m.Phase != PhaseInstall || m.Mode != gc.in.Mode || m.Installer != gc.in.Installer {
					t.Errorf("install meta = %+v", m)
				}
				fm, ok, err := ReadMeta(final)
				if err != nil || !ok {
					t.Fatalf("ReadMeta(final) = %v, %v", ok, err)
				}
				if fm.Phase != PhaseFinal || fm.VNCAdded || fm.OrigOnReboot != m.OrigOnReboot || fm.OrigOnPoweroff != m.OrigOnPoweroff {
					t.Errorf("final meta = %+v, install meta %+v", fm, m)
				}
				if _, hasVNC, _ := VNCGraphics(final); m.VNCAdded && hasVNC {
					t.Errorf("final domain keeps the VNC console nchookd added")
				}
			})
		}
	}
}

// TestInputsValidate makes sure the test inputs are domains libvirt accepts,
// so that a golden output failing validation is the rewrite's fault.
func TestInputsValidate(t *testing.T) {
	for _, gi := range goldenInputs {
		validate(t, filepath.Join("testdata", gi.file))
	}
}

// checkGolden compares got with the golden file, or writes it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, diff(want, got))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validate runs virt-xml-validate on a domain XML file. Without the tool the
// test fails, unless KSCLOUD_NO_VALIDATE=1.
func validate(t *testing.T, path string) {
	t.Helper()
	if os.Getenv("KSCLOUD_NO_VALIDATE") == "1" {
		t.Logf("KSCLOUD_NO_VALIDATE=1: %s not validated against libvirt's schema", path)
		return
	}
	tool, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatalf("virt-xml-validate not found: install libvirt-clients and libxml2-utils (or set KSCLOUD_NO_VALIDATE=1 to skip schema validation)")
	}
	out, err := exec.Command(tool, path, "domain").CombinedOutput()
	if err != nil {
		t.Errorf("virt-xml-validate %s domain: %v\n%s", path, err, out)
		return
	}
	if !bytes.Contains(out, []byte("validates")) {
		t.Errorf("virt-xml-validate %s domain: unexpected output %q", path, out)
	}
}

// validateBytes writes b to a temporary file and validates it.
func validateBytes(t *testing.T, b []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "domain.xml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	validate(t, path)
}

// diff returns the lines of want and got from the first one that differs.
func diff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g || i >= len(wl) || i >= len(gl) {
			return "line " + strconv.Itoa(i+1) + ":\n-want: " + w + "\n+got:  " + g
		}
	}
	return "(no line differs)"
}

// TestValidateCatchesInvalid proves that validation can fail: a domain whose
// <on_reboot> holds a value libvirt does not know must not validate.
func TestValidateCatchesInvalid(t *testing.T) {
	if os.Getenv("KSCLOUD_NO_VALIDATE") == "1" {
		t.Skip("KSCLOUD_NO_VALIDATE=1")
	}
	tool, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatalf("virt-xml-validate not found: install libvirt-clients and libxml2-utils (or set KSCLOUD_NO_VALIDATE=1)")
	}
	b := bytes.Replace(readFile(t, "testdata/eucalyptus-3.4.2.xml"), []byte("<on_reboot>restart"), []byte("<on_reboot>explode"), 1)
	path := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = exec.Command(tool, path, "domain").Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("virt-xml-validate accepted an invalid domain (err %v)", err)
	}
}

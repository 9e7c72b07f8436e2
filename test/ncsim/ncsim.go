// Package ncsim plays the Eucalyptus node controller's side of a launch for
// tests and the EC2 test endpoint: it writes an instance directory with the
// instance.xml and the domain XML that the NC's XSLT generates (modelled on
// test/samples/eucalyptus), runs the executables of an nc-hooks
// directory exactly as the NC does (HOOK EVENT EUCA_HOME INSTANCE_DIR,
// synchronously, unsorted), and reads the domain XML back for libvirt.
package ncsim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Instance is what the NC knows of a launching instance.
type Instance struct {
	Name     string // instance id, also the domain name
	UUID     string
	Dir      string // instance directory (created)
	Version  string // "3.1" (libvirt.xml, no libvirtFilePath) or "3.4" (instance-libvirt.xml, libvirtFilePath)
	Kernel   string // EKI path on the node ("" for an HVM image without EKI)
	Ramdisk  string // ERI path
	Disk     string // root disk image (file)
	DiskBus  string // "scsi" like the NC's XSLT, or "virtio", "ide"
	DiskDev  string // sda, vda, hda
	UserData []byte
	MemoryKB int
	Cores    int
	// DomainType is the libvirt domain type: the NC writes "kvm"; tests
	// here use "qemu" (software emulation).
	DomainType string
	// UserNetwork adds a user-mode NIC (SLIRP: the host is 10.0.2.2) in
	// place of the NC's bridge, which does not exist on a test machine.
	UserNetwork bool
	MAC         string
}

// DomainFile returns the domain XML path the NC of inst.Version writes.
func (inst *Instance) DomainFile() string {
	if inst.Version == "3.1" {
		return filepath.Join(inst.Dir, "libvirt.xml")
	}
	return filepath.Join(inst.Dir, "instance-libvirt.xml")
}

// ConsoleLog is the serial console file (what GetConsoleOutput returns).
func (inst *Instance) ConsoleLog() string { return filepath.Join(inst.Dir, "console.log") }

func (inst *Instance) defaults() {
	if inst.Version == "" {
		inst.Version = "3.4"
	}
	if inst.DiskBus == "" {
		inst.DiskBus = "scsi"
	}
	if inst.DiskDev == "" {
		inst.DiskDev = map[string]string{"virtio": "vda", "ide": "hda"}[inst.DiskBus]
		if inst.DiskDev == "" {
			inst.DiskDev = "sda"
		}
	}
	if inst.MemoryKB == 0 {
		inst.MemoryKB = 262144
	}
	if inst.Cores == 0 {
		inst.Cores = 1
	}
	if inst.DomainType == "" {
		inst.DomainType = "qemu"
	}
	if inst.UUID == "" {
		inst.UUID = "5f3c1d2e-0000-4000-8000-" + fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	}
	if inst.MAC == "" {
		inst.MAC = "d0:0d:3a:2b:41:c0"
	}
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

var funcs = template.FuncMap{"x": esc}

var instanceTmpl = template.Must(template.New("instance").Funcs(funcs).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<instance>
  <hypervisor type="kvm" capability="hw" bitness="64" requiresDisk="true"/>
  <backing>
    <root type="image"/>
  </backing>
  <name>{{x .I.Name}}</name>
  <uuid>{{x .I.UUID}}</uuid>
  <reservation>r-41A83D2E</reservation>
  <imageId>emi-1234ABCD</imageId>
{{- if .I.Kernel}}
  <kernelId>eki-1234ABCD</kernelId>
  <ramdiskId>eri-1234ABCD</ramdiskId>
{{- end}}
  <instancePath>{{x .I.Dir}}</instancePath>
{{- if .I.Kernel}}
  <kernel>{{x .I.Kernel}}</kernel>
  <ramdisk>{{x .I.Ramdisk}}</ramdisk>
{{- end}}
  <xmlFilePath>{{x .XMLPath}}</xmlFilePath>
{{- if ne .I.Version "3.1"}}
  <libvirtFilePath>{{x .DomainFile}}</libvirtFilePath>
{{- end}}
  <consoleLogPath>{{x .Console}}</consoleLogPath>
  <userData>{{.UserData}}</userData>
  <launchIndex>0</launchIndex>
  <cores>{{.I.Cores}}</cores>
  <memoryKB>{{.I.MemoryKB}}</memoryKB>
  <diskGB>1</diskGB>
  <VmType>m1.small</VmType>
  <NicType>e1000</NicType>
  <os platform="linux" virtioRoot="false" virtioDisk="false" virtioNetwork="false"/>
  <disks>
    <diskPath targetDeviceType="disk" targetDeviceName="{{x .I.DiskDev}}" targetDeviceBus="{{x .I.DiskBus}}" sourceType="file">{{x .I.Disk}}</diskPath>
    <root device="{{x .I.DiskDev}}"/>
  </disks>
  <nics>
    <nic vlan="10" networkIndex="2" mac="{{x .I.MAC}}" publicIp="0.0.0.0" privateIp="0.0.0.0" bridgeDeviceName="eucabr10"/>
  </nics>
</instance>
`))

// The NC's XSLT output (3.1 and 3.4.2 differ only in the disk's cache
// driver line), with the disk as a file and an optional user-mode NIC.
var domainTmpl = template.Must(template.New("domain").Funcs(funcs).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<domain type="{{x .I.DomainType}}">
  <name>{{x .I.Name}}</name>
  <uuid>{{x .I.UUID}}</uuid>
  <description>Eucalyptus instance {{x .I.Name}}</description>
  <os>
    <type>hvm</type>
{{- if .I.Kernel}}
    <initrd>{{x .I.Ramdisk}}</initrd>
    <kernel>{{x .I.Kernel}}</kernel>
    <cmdline>root=/dev/sda1 console=ttyS0</cmdline>
    <root>/dev/sda1</root>
{{- end}}
  </os>
  <features>
    <acpi/>
  </features>
  <clock offset="localtime"/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <vcpu>{{.I.Cores}}</vcpu>
  <memory>{{.I.MemoryKB}}</memory>
  <devices>
    <disk device="disk" type="file">
{{- if ne .I.Version "3.1"}}
      <driver cache="none"/>
{{- end}}
      <source file="{{x .I.Disk}}"/>
      <target dev="{{x .I.DiskDev}}" bus="{{x .I.DiskBus}}"/>
    </disk>
{{- if .I.UserNetwork}}
    <interface type="user">
      <mac address="{{x .I.MAC}}"/>
      <model type="e1000"/>
    </interface>
{{- end}}
    <serial type="file">
      <source path="{{x .Console}}"/>
      <target port="1"/>
    </serial>
  </devices>
</domain>
`))

// Write creates the instance directory with instance.xml and the domain XML.
func Write(inst *Instance) error {
	inst.defaults()
	if err := os.MkdirAll(inst.Dir, 0o755); err != nil {
		return err
	}
	data := map[string]any{
		"I":          inst,
		"XMLPath":    filepath.Join(inst.Dir, "instance.xml"),
		"DomainFile": inst.DomainFile(),
		"Console":    inst.ConsoleLog(),
		"UserData":   base64.StdEncoding.EncodeToString(inst.UserData),
	}
	var ib, db bytes.Buffer
	if err := instanceTmpl.Execute(&ib, data); err != nil {
		return err
	}
	if err := domainTmpl.Execute(&db, data); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(inst.Dir, "instance.xml"), ib.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(inst.DomainFile(), db.Bytes(), 0o644)
}

// HookResult is one hook's run.
type HookResult struct {
	Hook     string
	ExitCode int
	Stderr   string
	Duration time.Duration
}

// RunHooks runs every executable regular file in hooksDir as the NC does:
// HOOK EVENT EUCA_HOME PARAM, synchronously, with env. It returns the
// results and an error if a hook exited non-zero (the NC cancels a launch
// when a pre-boot hook fails).
func RunHooks(ctx context.Context, hooksDir, event, eucaHome, param string, env []string) ([]HookResult, error) {
	ents, err := os.ReadDir(hooksDir)
	if err != nil {
		return nil, err
	}
	var res []HookResult
	var failed []string
	for _, e := range ents {
		p := filepath.Join(hooksDir, e.Name())
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			continue
		}
		args := []string{event, eucaHome}
		if param != "" {
			args = append(args, param)
		}
		cmd := exec.CommandContext(ctx, p, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err = cmd.Run()
		r := HookResult{Hook: p, Stderr: stderr.String(), Duration: time.Since(start)}
		if err != nil {
			r.ExitCode = -1
			if ee, ok := err.(*exec.ExitError); ok {
				r.ExitCode = ee.ExitCode()
			}
			failed = append(failed, fmt.Sprintf("%s exited %d: %s", e.Name(), r.ExitCode, strings.TrimSpace(r.Stderr)))
		}
		res = append(res, r)
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("%s hook failed: %s", event, strings.Join(failed, "; "))
	}
	return res, nil
}

// DomainXML reads back the domain XML the hook left: what boots.
func DomainXML(inst *Instance) (string, error) {
	b, err := os.ReadFile(inst.DomainFile())
	return string(b), err
}

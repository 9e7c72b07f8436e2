package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hook"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
	"github.com/kscloud/kscloud/internal/redact"
	"github.com/kscloud/kscloud/internal/safetext"
)

// configFlag adds --config to fs; loadConfig honours whether it was given.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", config.DefaultPath, "configuration `file`")
}

func loadConfig(fs *flag.FlagSet, path string) (*config.Config, error) {
	explicit := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			explicit = true
		}
	})
	return config.Load(path, explicit)
}

func newFlags(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("nchookd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: nchookd %s %s\n\nflags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// outputFlag adds --output: text for people, json for programs.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "text", "result `format` on stdout: text or json")
}

func checkOutput(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("--output %q: want text or json", s)
	}
	return nil
}

// parseOutput parses the flags of a command with --output and at most
// maxArgs arguments: false (exit 2, a usage error, already said on
// stderr) when they are wrong.
func parseOutput(fs *flag.FlagSet, args []string, maxArgs int, output *string, stderr io.Writer) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > maxArgs {
		fs.Usage()
		return false
	}
	if err := checkOutput(*output); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return false
	}
	return true
}

// printJSON prints v indented; a closed stdout loses it, nothing else.
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr, "[--config FILE] [--print] [--output text|json]")
	path := configFlag(fs)
	print := fs.Bool("print", false, "print the effective configuration as TOML")
	output := outputFlag(fs)
	if !parseOutput(fs, args, 0, output, stderr) {
		return 2
	}
	if *print && *output == "json" {
		fmt.Fprintln(stderr, "nchookd check: --print prints TOML: it does not go with --output json")
		return 2
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		fmt.Fprintf(stderr, "nchookd check: %v\n", err)
		return 1
	}
	problems := cfg.CheckNode()
	for _, p := range problems {
		fmt.Fprintf(stderr, "nchookd check: %v\n", p)
	}
	if *output == "json" {
		printJSON(stdout, checkView(cfg, *path, problems))
		if len(problems) > 0 {
			return 1
		}
		return 0
	}
	if *print {
		b, err := cfg.Encode()
		if err != nil {
			fmt.Fprintf(stderr, "nchookd check: %v\n", err)
			return 1
		}
		stdout.Write(b)
	}
	if len(problems) > 0 {
		return 1
	}
	src := cfg.Path
	if src == "" {
		src = "built-in defaults (" + *path + " absent)"
	}
	fmt.Fprintf(stderr, "nchookd check: %s: ok, %d installer(s) in the catalog\n", src, len(cfg.Installer))
	for _, name := range cfg.InstallerNames() {
		in := cfg.Installer[name]
		desc := in.Description
		if desc == "" {
			desc = in.Kernel
		}
		fmt.Fprintf(stderr, "nchookd check: installer %s: %s\n", name, desc)
	}
	return 0
}

// checkResult is what nchookd check --output json prints.
type checkResult struct {
	Config     string           `json:"config"` // the file read; "" for the built-in defaults
	OK         bool             `json:"ok"`
	Problems   []string         `json:"problems"`
	Installers []checkInstaller `json:"installers"`
}

type checkInstaller struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Kernel      string `json:"kernel"`
	Initrd      string `json:"initrd"`
}

func checkView(cfg *config.Config, path string, problems []error) checkResult {
	r := checkResult{Config: cfg.Path, OK: len(problems) == 0, Problems: []string{}, Installers: []checkInstaller{}}
	for _, p := range problems {
		r.Problems = append(r.Problems, p.Error())
	}
	for _, name := range cfg.InstallerNames() {
		in := cfg.Installer[name]
		r.Installers = append(r.Installers, checkInstaller{Name: name, Description: in.Description, Kernel: in.Kernel, Initrd: in.Initrd})
	}
	return r
}

func cmdRewrite(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rewrite", stderr, "--instance-xml FILE|--vm-xml FILE|--one-context --domain-xml FILE [--config FILE]")
	path := configFlag(fs)
	instPath := fs.String("instance-xml", "", "the instance's instance.xml `file` (Eucalyptus)")
	vmPath := fs.String("vm-xml", "", "the VM's vm.xml `file` (OpenNebula; --domain-xml is then its deployment file)")
	oneCtx := fs.Bool("one-context", false, "OpenNebula 5.12 (no vm.xml): read the directives from the CONTEXT CD-ROM the deployment file --domain-xml attaches")
	domPath := fs.String("domain-xml", "", "the domain XML `file` the NC (or OpenNebula's driver) generated")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	inputs := 0
	for _, given := range []bool{*instPath != "", *vmPath != "", *oneCtx} {
		if given {
			inputs++
		}
	}
	if inputs != 1 || *domPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		fmt.Fprintf(stderr, "nchookd rewrite: %v\n", err)
		return 1
	}
	if *vmPath != "" || *oneCtx {
		return rewriteOne(cfg, *vmPath, *domPath, stdout, stderr)
	}
	inst, err := atomicfile.ReadRegular(*instPath, 1<<20)
	if err != nil {
		fmt.Fprintf(stderr, "nchookd rewrite: %v\n", err)
		return 1
	}
	dom, err := atomicfile.ReadRegular(*domPath, 4<<20)
	if err != nil {
		fmt.Fprintf(stderr, "nchookd rewrite: %v\n", err)
		return 1
	}
	abs, _ := filepath.Abs(*domPath)
	p, err := preboot.Decide(cfg, inst, dom, filepath.Dir(abs))
	if err != nil {
		fmt.Fprintf(stderr, "nchookd rewrite: %v\n", err)
		return 1
	}
	return printRewrite(p, "instance", dom, stdout, stderr)
}

// rewriteOne is the OpenNebula dry run: what the deploy wrapper would
// boot for this vm.xml (vmPath "": 5.12, the context.sh of the deployment
// file's CONTEXT CD-ROM) and deployment file (the VM directory is the
// deployment file's).
func rewriteOne(cfg *config.Config, vmPath, domPath string, stdout, stderr io.Writer) int {
	var vm []byte
	var err error
	if vmPath != "" {
		if vm, err = atomicfile.ReadRegular(vmPath, preboot.MaxOneVMXML); err != nil {
			fmt.Fprintf(stderr, "nchookd rewrite: %v\n", err)
			return 1
		}
	}
	dom, err := atomicfile.ReadRegular(domPath, 4<<20)
	if err != nil {
		fmt.Fprintf(stderr, "nchookd rewrite: %v\n", err)
		return 1
	}
	abs, _ := filepath.Abs(domPath)
	vmDir := filepath.Dir(abs)
	var p *preboot.Plan
	if vmPath != "" {
		p, err = preboot.DecideOne(cfg, vm, dom, vmDir)
	} else {
		var sh []byte
		if sh, err = preboot.ReadOneContext(cfg, dom, vmDir); err == nil {
			p, err = preboot.DecideOneContext(cfg, sh, dom, vmDir)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "nchookd rewrite: %v\n", err)
		return 1
	}
	return printRewrite(p, "VM", dom, stdout, stderr)
}

// printRewrite prints a dry run's notes (stderr) and the domain XML it
// would boot: the rewrite, or dom unchanged.
func printRewrite(p *preboot.Plan, what string, dom []byte, stdout, stderr io.Writer) int {
	for _, n := range p.Notes {
		fmt.Fprintf(stderr, "nchookd rewrite: %s %s: %s\n", what, p.Instance, n)
	}
	if !p.Changed {
		stdout.Write(dom)
		return 0
	}
	stdout.Write(p.DomainXML)
	return 0
}

func cmdHook(args []string, _, stderr io.Writer) int {
	return hook.RunHook(args, os.Getenv, stderr)
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr, "[--config FILE] [--output text|json] [INSTANCE]")
	path := configFlag(fs)
	output := outputFlag(fs)
	fs.BoolFunc("json", "deprecated: same as --output json", func(s string) error {
		if s == "true" {
			*output = "json"
		}
		fmt.Fprintln(stderr, "nchookd status: --json is deprecated; use --output json")
		return nil
	})
	if !parseOutput(fs, args, 1, output, stderr) {
		return 2
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		fmt.Fprintf(stderr, "nchookd status: %v\n", err)
		return 1
	}
	socket := cfg.Hook.Socket
	if v := os.Getenv(hook.EnvSocket); v != "" {
		socket = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := hookproto.Call(ctx, socket, hookproto.Request{Op: hookproto.OpStatus, Instance: fs.Arg(0)})
	if err != nil {
		if errors.Is(err, hookproto.ErrUnavailable) {
			fmt.Fprintf(stderr, "nchookd status: the daemon is not running (%v)\n", err)
		} else {
			fmt.Fprintf(stderr, "nchookd status: %v\n", err)
		}
		return 1
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "nchookd status: %s\n", safetext.Line(resp.Error))
		return 1
	}
	for i := range resp.Instances {
		safeStatus(&resp.Instances[i])
	}
	if *output == "json" {
		printJSON(stdout, statusView(*resp))
		return 0
	}
	if fs.NArg() == 1 {
		if len(resp.Instances) == 0 {
			fmt.Fprintf(stderr, "nchookd status: the daemon follows no instance %s\n", safetext.Line(fs.Arg(0)))
			return 1
		}
		printInstance(stdout, resp.Instances[0])
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tMODE\tPHASE\tVNC\tPROGRESS")
	for _, st := range resp.Instances {
		vnc := "-"
		if st.VNC != nil {
			vnc = st.VNC.Addr()
		}
		prog := st.Progress
		if st.Reason != "" {
			prog = st.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", st.Instance, st.Mode, st.Phase, vnc, prog)
	}
	tw.Flush()
	return 0
}

// safeStatus makes an instance's status safe to print: its console lines,
// progress and failure reason come from the guest, its command line,
// installer and notes from the tenant's user-data (JSON output too: a
// consumer printing a field with jq -r must not run the guest's escapes).
// Every URL in them is redacted (redact.Text): the command line's inst.ks=
// may carry user:password@ or ?token=, and an installer prints the URL it
// fetches on its console.
func safeStatus(st *hookproto.InstanceStatus) {
	for _, f := range []*string{&st.Instance, &st.Dir, &st.DomainFile, &st.Mode, &st.Installer, &st.Cmdline,
		&st.Kernel, &st.Initrd, &st.ConsoleLog, &st.Phase, &st.Reason, &st.Progress, &st.UUID} {
		*f = redact.Text(safetext.Line(*f))
	}
	for _, l := range [][]string{st.Notes, st.LastLines} {
		safetext.Lines(l)
		for i := range l {
			l[i] = redact.Text(l[i])
		}
	}
	if st.VNC != nil {
		st.VNC.Listen, st.VNC.Password = safetext.Line(st.VNC.Listen), safetext.Line(st.VNC.Password)
	}
}

func printInstance(w io.Writer, st hookproto.InstanceStatus) {
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-12s %s\n", k+":", v)
		}
	}
	kv("instance", st.Instance)
	kv("phase", st.Phase)
	kv("mode", st.Mode)
	kv("installer", st.Installer)
	kv("cmdline", st.Cmdline)
	kv("progress", st.Progress)
	kv("reason", st.Reason)
	if st.VNC != nil {
		kv("vnc", st.VNC.Addr()+" password "+st.VNC.Password)
	}
	kv("console", st.ConsoleLog)
	kv("started", st.StartedAt.Format(time.RFC3339))
	if len(st.Notes) > 0 {
		kv("notes", strings.Join(st.Notes, "; "))
	}
	for _, l := range st.LastLines {
		fmt.Fprintf(w, "  | %s\n", l)
	}
}

// statusResult is what nchookd status --output json prints: the daemon's
// answer, its instances always a list, made safe to print (safeStatus).
type statusResult struct {
	OK        bool                       `json:"ok"`
	Instances []hookproto.InstanceStatus `json:"instances"`
	Daemon    *hookproto.DaemonStatus    `json:"daemon,omitempty"`
}

func statusView(resp hookproto.Response) statusResult {
	r := statusResult{OK: resp.OK, Instances: []hookproto.InstanceStatus{}, Daemon: resp.Daemon}
	for _, st := range resp.Instances {
		st.InstallerXML = "" // the daemon does not send it; never print a domain definition
		r.Instances = append(r.Instances, st)
	}
	return r
}

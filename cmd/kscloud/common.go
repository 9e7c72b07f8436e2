package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/kscloud/kscloud/internal/buildinfo"
	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	cloudlibvirt "github.com/kscloud/kscloud/internal/cloud/libvirt"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/safetext"
)

// global holds the flags every command shares.
type global struct {
	provider string
	connect  string
	output   string
	stateDir string
	verbose  bool
	// ec2
	endpoint, region, eucarc, signature string
	awsEndpoint                         bool       // a recorded AWS build: no EC2_URL applies
	host                                *hostFlags // run and bake: the libvirt machine
	one                                 oneFlags
	// calls counts the cloud provider's API calls (openProvider sets it
	// for ec2 and opennebula) for the build summary.
	calls *callCounter
}

func (g *global) register(fs *flag.FlagSet) {
	fs.StringVar(&g.provider, "provider", "libvirt", "cloud `provider`: libvirt (this host), ec2 (Eucalyptus or any EC2 API) or opennebula")
	def := os.Getenv("LIBVIRT_DEFAULT_URI")
	if def == "" {
		def = "qemu:///system"
	}
	fs.StringVar(&g.connect, "connect", def, "libvirt `URI` (default $LIBVIRT_DEFAULT_URI or qemu:///system)")
	fs.StringVar(&g.output, "output", "text", outputUsage)
	fs.StringVar(&g.stateDir, "state-dir", install.DefaultStateDir(), "where build state files, images and caches live")
	fs.BoolVar(&g.verbose, "v", false, "log each step on stderr")
	fs.StringVar(&g.endpoint, "endpoint", "", "EC2 API `URL` with its path, e.g. http://clc:8773/services/compute, or aws. "+ec2EndpointHelp)
	fs.StringVar(&g.region, "region", "", "EC2 `region` (default from the AWS configuration; any name on Eucalyptus)")
	fs.StringVar(&g.eucarc, "eucarc", os.Getenv("EUCARC"), "euca2ools eucarc `file` with EC2_URL and the keys")
	fs.StringVar(&g.signature, "signature", "", "EC2 request signature: v4 or v2 (default v2 for an endpoint path /services/Eucalyptus, Eucalyptus 3.x; else v4)")
	g.one.register(fs)
}

func (g *global) check() error {
	if err := checkOutput(g.output); err != nil {
		return err
	}
	switch g.provider {
	case "libvirt", "ec2", "opennebula":
	default:
		return fmt.Errorf("--provider %q: want libvirt, ec2 or opennebula", g.provider)
	}
	return nil
}

const outputUsage = "result `format` on stdout: text or json"

// outputFlag adds --output to a command that has no global flags.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "text", outputUsage)
}

func checkOutput(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("--output %q: want text or json", s)
	}
	return nil
}

// deprecatedOutput adds an old spelling of --output (name takes a value
// when value is "", else it is a switch meaning --output value): it still
// works, and says once on stderr what to write instead.
func deprecatedOutput(fs *flag.FlagSet, output *string, name, value, prog string, stderr io.Writer) {
	say := func(instead string) {
		fmt.Fprintf(stderr, "%s: --%s is deprecated; use %s\n", prog, name, instead)
	}
	if value != "" {
		fs.BoolFunc(name, "deprecated: same as --output "+value, func(s string) error {
			if s == "true" {
				*output = value
			}
			say("--output " + value)
			return nil
		})
		return
	}
	fs.Func(name, "deprecated: same as --output", func(s string) error {
		*output = s
		say("--output " + s)
		return nil
	})
}

func versionInfo(program, v string) buildinfo.Info { return buildinfo.Get(program, v) }

func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kscloud "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: kscloud %s %s\n\nflags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (g *global) logger(stderr io.Writer) *slog.Logger {
	if !g.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// openProvider opens the selected provider.
func (g *global) openProvider(ctx context.Context, stderr io.Writer) (cloud.Provider, func(), error) {
	switch g.provider {
	case "libvirt":
		opt := cloudlibvirt.Options{URI: g.connect, StateDir: g.stateDir, Log: g.logger(stderr)}
		if g.host != nil {
			opt.Network, opt.Machine = g.host.libvirtOptions(g.host.arch)
		}
		p, err := cloudlibvirt.Open(ctx, opt)
		if err != nil {
			return nil, nil, err
		}
		return p, func() { p.Close() }, nil
	case "ec2":
		return openEC2(ctx, g, stderr)
	case "opennebula":
		return openOpenNebula(ctx, g, stderr)
	}
	return nil, nil, fmt.Errorf("unknown provider %q", g.provider)
}

// status prints live progress for people on stderr: one line rewritten in
// place on a terminal, one line per change otherwise. On a terminal it
// owns stderr while a build runs: what else goes there (the -v log, a
// warning) is written through it (Write) and gets lines of its own above
// the progress line, as do the lines that must stay (keep, stickyPrefix).
type status struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	last  string // the progress line on the screen, "" when none
	start time.Time
}

func newStatus(w io.Writer) *status {
	return &status{w: w, tty: isTerminal(w), start: time.Now()}
}

// isTerminal: w is a terminal (a tty, not merely a character device such
// as /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stickyPrefix marks status lines that must stay on the screen (the VNC
// console's location and password): on a terminal they get a line of
// their own, which later progress lines do not overwrite.
const stickyPrefix = "VNC console"

func (s *status) line(l string) {
	l = shown(l) // the installer's console and the cloud's answers are not ours
	if strings.HasPrefix(l, stickyPrefix) {
		s.keep(l)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l == s.last {
		return
	}
	s.last = l
	el := time.Since(s.start).Round(time.Second)
	if s.tty {
		fmt.Fprintf(s.w, "\r\033[K[%s] %s", el, l)
		return
	}
	fmt.Fprintf(s.w, "[%s] %s\n", el, l)
}

// keep prints a line that stays on the screen (what a run leaves behind,
// a warning): on a terminal above the progress line, which is drawn again
// below it.
func (s *status) keep(l string) {
	l = shown(l)
	s.mu.Lock()
	defer s.mu.Unlock()
	el := time.Since(s.start).Round(time.Second)
	if !s.tty {
		fmt.Fprintf(s.w, "[%s] %s\n", el, l)
		return
	}
	fmt.Fprintf(s.w, "\r\033[K[%s] %s\n", el, l)
	s.redraw()
}

func (s *status) redraw() {
	if s.last != "" {
		fmt.Fprintf(s.w, "[%s] %s", time.Since(s.start).Round(time.Second), s.last)
	}
}

// Write passes what others print on stderr through: on a terminal with a
// progress line up, the line is cleared, the text written on lines of its
// own and the progress line drawn again below it.
func (s *status) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tty || s.last == "" {
		return s.w.Write(p)
	}
	fmt.Fprint(s.w, "\r\033[K")
	n, err := s.w.Write(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		fmt.Fprintln(s.w)
	}
	s.redraw()
	return n, err
}

// done ends the progress line: what is printed next starts a line of its
// own. Once is enough; more calls print nothing.
func (s *status) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.last != "" {
		fmt.Fprintln(s.w)
	}
	s.last = ""
}

// signalContext is cancelled by SIGINT/SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// fail prints one line for an error and returns the exit code; an install
// failure also shows the last console lines.
func fail(stderr io.Writer, cmd string, err error) int {
	var ie *install.InstallError
	if errors.As(err, &ie) && len(ie.Last) > 0 {
		fmt.Fprintf(stderr, "last console lines of %s:\n", ie.Instance)
		for _, l := range ie.Last {
			fmt.Fprintf(stderr, "  | %s\n", shown(l))
		}
	}
	msg := shown(strings.ReplaceAll(err.Error(), "\n", "; "))
	fmt.Fprintf(stderr, "kscloud %s: %s\n", cmd, msg)
	return 1
}

// shown makes text from a guest, a tenant or a cloud fit to print: escapes
// and controls stripped (safetext), and any URL's credentials and query
// values redacted (a kickstart URL with user:pass@ or ?token=).
func shown(s string) string { return install.RedactText(safetext.Line(s)) }

func buildDir(stateDir, id string) string { return filepath.Join(stateDir, "builds", id+".d") }

// cloudRef is where the opened provider's resources live.
func (g *global) cloudRef(p cloud.Provider) *install.CloudRef {
	if op, ok := p.(*opennebula.Provider); ok {
		return oneCloudRef(op)
	}
	if ep, ok := p.(*ec2.Provider); ok {
		eff := ep.Effective()
		ref := &install.CloudRef{Endpoint: eff.Endpoint, Region: eff.Region, Signature: eff.Signature}
		if path, ok := strings.CutPrefix(eff.Credentials, "eucarc "); ok {
			if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
			ref.Eucarc = path
		}
		return ref
	}
	return &install.CloudRef{Connect: g.connect}
}

// useRecorded takes the cloud flags not given on the command line from a
// build's record, so that resume, cleanup and vnc reach the build's cloud
// whatever the environment says now.
func (g *global) useRecorded(fs *flag.FlagSet, b *install.Build) {
	g.provider = b.Provider
	ref := b.Cloud
	if ref == nil {
		return
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	take := func(name string, dst *string, v string) {
		if !set[name] && v != "" {
			*dst = v
		}
	}
	take("connect", &g.connect, ref.Connect)
	take("endpoint", &g.endpoint, ref.Endpoint)
	take("region", &g.region, ref.Region)
	take("signature", &g.signature, ref.Signature)
	take("eucarc", &g.eucarc, ref.Eucarc)
	if b.Provider == "ec2" && ref.Endpoint == "" && !set["endpoint"] {
		g.awsEndpoint = true // made on AWS itself: EC2_URL in this shell does not apply
	}
}

// sameCloud refuses to act on a build through a provider that reached
// another cloud than the one its resources live on: removing "not found"
// resources there would mark real ones as gone.
func sameCloud(b *install.Build, now *install.CloudRef) error {
	ref := b.Cloud
	if ref == nil {
		return nil // a build file from before clouds were recorded
	}
	if ref.Connect != now.Connect || ref.Endpoint != now.Endpoint || ref.Region != now.Region {
		return fmt.Errorf("build %s lives on %s, but this command reached %s: give the build's --endpoint/--region/--connect, or none", b.ID, ref.Where(), now.Where())
	}
	return nil
}

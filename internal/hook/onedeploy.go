package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kscloud/kscloud/internal/atomicfile"
	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/preboot"
)

// VMXMLFile is the file oned's VMM driver writes beside the deployment
// file before it runs the deploy script (OpenNebula 6.0+).
const VMXMLFile = "vm.xml"

// OneDeploy is the OpenNebula deploy wrapper's decision, made before the
// original deploy script runs.
type OneDeploy struct {
	// Original is OpenNebula's own deploy script and Args its arguments
	// (the deployment file, the host, and whatever else the driver gave).
	Original string
	Args     []string
	// Domain is what the original gets on its standard input: the
	// rewritten domain XML, or the bytes the driver sent, unchanged.
	// Rest, when not nil, follows Domain (input over the size limit,
	// passed on unread).
	Domain []byte
	Rest   io.Reader
	// Changed reports a rewrite.
	Changed bool
}

// PrepareOneDeploy is the OpenNebula deploy wrapper's work: args are
// ORIGINAL DEPLOYMENT_FILE HOST [...] (hooks/opennebula/deploy passes its
// own arguments after the original's path), stdin the domain XML. It asks
// nchookd over its socket (hookproto.OpOneDeploy) and, when no daemon
// answers, rewrites itself (preboot.DecideOne); either way within
// hook.timeout. It never fails a deploy: an error of its own (no vm.xml,
// bad vm.xml or user-data, a policy refusal, a timeout) gives the domain
// unchanged and one line on stderr naming the VM and the cause. Only
// unusable arguments are an error (there is then no original to run).
func PrepareOneDeploy(args []string, stdin io.Reader, getenv func(string) string, stderr io.Writer) (*OneDeploy, error) {
	if len(args) < 1 || args[0] == "" {
		return nil, errors.New("usage: nchookd-one-deploy ORIGINAL_DEPLOY DEPLOYMENT_FILE HOST")
	}
	start := time.Now()
	d := &OneDeploy{Original: args[0], Args: args[1:]}
	if len(args) < 2 || args[1] == "" {
		fmt.Fprintf(stderr, "nchookd: no deployment file given; running %s unchanged\n", args[0])
		d.Rest = stdin
		return d, nil
	}
	dfile := args[1]
	// The domain XML: read whole up to the limit; beyond it the bytes
	// pass on untouched.
	buf, err := io.ReadAll(io.LimitReader(stdin, hookproto.MaxOneDomain+1))
	d.Domain = buf
	if err != nil {
		fmt.Fprintf(stderr, "nchookd: deployment %s: reading the domain XML: %v; deploying it unchanged\n", dfile, err)
		d.Rest = stdin
		return d, nil
	}
	if len(buf) > hookproto.MaxOneDomain {
		fmt.Fprintf(stderr, "nchookd: deployment %s: domain XML over %d bytes; deploying it unchanged\n", dfile, hookproto.MaxOneDomain)
		d.Rest = stdin
		return d, nil
	}
	unchanged := func(err error) (*OneDeploy, error) {
		fmt.Fprintf(stderr, "nchookd: %v; deploying the VM unchanged\n", err)
		return d, nil
	}
	vmDir := filepath.Dir(dfile)
	if !filepath.IsAbs(dfile) {
		return unchanged(fmt.Errorf("deployment file %q is not an absolute path", dfile))
	}
	cfgPath, explicit := getenv(EnvConfig), true
	if cfgPath == "" {
		cfgPath, explicit = config.DefaultPath, false
	}
	cfg, cerr := config.Load(cfgPath, explicit)
	vmXML, err := readVMXML(filepath.Join(vmDir, VMXMLFile))
	var contextSh []byte
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return unchanged(fmt.Errorf("deployment %s: %w", dfile, err))
		}
		// OpenNebula 5.12 writes no vm.xml: the directives are read from
		// the CONTEXT CD-ROM (its context.sh), which must lie below
		// hook.instances_root: that needs the configuration.
		if cerr != nil {
			return unchanged(fmt.Errorf("deployment %s: %w, and the CONTEXT CD-ROM cannot be checked against hook.instances_root: %v", dfile, preboot.ErrNoVMXML, cerr))
		}
		if contextSh, err = preboot.ReadOneContext(cfg, buf, vmDir); err != nil {
			return unchanged(fmt.Errorf("deployment %s: %w; reading the CONTEXT CD-ROM instead: %v", dfile, preboot.ErrNoVMXML, err))
		}
	}

	timeout, socket := budget(cfg, cerr, getenv)
	deadline := start.Add(timeout)
	callDeadline := start.Add(timeout * 4 / 5)
	ctx, cancel := context.WithDeadline(context.Background(), callDeadline)
	defer cancel()
	resp, dom, err := hookproto.CallOneDeploy(ctx, socket, hookproto.OneDeploy{DeployFile: dfile, Host: hostArg(args),
		Deadline: callDeadline.Add(-callMargin(timeout)), DomainXML: buf, VMXML: vmXML, ContextSh: contextSh})
	if err == nil && resp.Denied {
		err = fmt.Errorf("%s: %w: %s", socket, hookproto.ErrUnavailable, resp.Error)
	}
	if err == nil {
		if !resp.OK {
			return unchanged(errors.New(resp.Error))
		}
		if dom != nil {
			d.Domain, d.Changed = dom, true
			return d, nil
		}
		if resp.Outcome != nil {
			return unchanged(noteError(resp.Outcome))
		}
		return d, nil
	}
	if !errors.Is(err, hookproto.ErrUnavailable) {
		// The daemon took the request and did not answer in time: it
		// writes nothing past its deadline, and the VM deploys as it is.
		return unchanged(fmt.Errorf("deployment %s: %v", dfile, err))
	}
	// No daemon: do it here.
	if cerr != nil {
		return unchanged(fmt.Errorf("deployment %s: %v; the daemon did not answer either (%v)", dfile, cerr, err))
	}
	p, derr := oneFallbackPlan(cfg, vmXML, contextSh, buf, vmDir)
	if derr != nil {
		return unchanged(derr)
	}
	if time.Now().After(deadline) {
		return unchanged(fmt.Errorf("deployment %s: rewrite took past hook.timeout (%v)", dfile, timeout))
	}
	if !p.Changed {
		return unchanged(noteError(&p.Outcome))
	}
	d.Domain, d.Changed = p.DomainXML, true
	return d, nil
}

// noteError is the line for a domain left unchanged without an error.
func noteError(o *preboot.Outcome) error {
	note := "nothing to do"
	if len(o.Notes) > 0 {
		note = o.Notes[0]
	}
	return fmt.Errorf("VM %s: %s", o.Instance, note)
}

func hostArg(args []string) string {
	if len(args) > 2 {
		return args[2]
	}
	return ""
}

// readVMXML reads vm.xml: a regular file (not followed when a symlink),
// bounded in size.
func readVMXML(path string) ([]byte, error) {
	b, err := atomicfile.ReadRegular(path, preboot.MaxOneVMXML)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link", path)
	}
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

// oneFallbackPlan is the rewrite the wrapper does alone: a VM whose install
// finished (preboot.InstalledMarker in its VM directory, left by nchookd)
// boots its disk; any other is decided as the daemon would
// (preboot.DecideOne, or DecideOneContext on 5.12). A marker that is not one is ignored here (the
// directory is the wrapper's own user's; the daemon logs it).
func oneFallbackPlan(cfg *config.Config, vmXML, contextSh, domainXML []byte, vmDir string) (*preboot.Plan, error) {
	if name, err := libvirtxml.DomainName(domainXML); err == nil {
		if m, ok, _ := preboot.ReadInstalledFile(vmDir, name); ok {
			return preboot.InstalledPlan(cfg, domainXML, vmDir, name, m.Mode)
		}
	}
	if vmXML == nil && contextSh != nil {
		return preboot.DecideOneContext(cfg, contextSh, domainXML, vmDir)
	}
	return preboot.DecideOne(cfg, vmXML, domainXML, vmDir)
}

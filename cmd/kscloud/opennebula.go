package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/opennebula"
	"github.com/kscloud/kscloud/internal/install"
	"github.com/kscloud/kscloud/internal/userdata"
)

// oneFlags are the OpenNebula provider's flags.
type oneFlags struct {
	endpoint, auth  string
	serve, serveURL string
	imageDS, fileDS int
	network         int
}

func (o *oneFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.endpoint, "one-endpoint", "", "OpenNebula XML-RPC `URL` (default $ONE_XMLRPC, ~/.one/one_endpoint, http://localhost:2633/RPC2)")
	fs.StringVar(&o.auth, "one-auth", "", "`file` holding user:password for OpenNebula (default $ONE_AUTH, ~/.one/one_auth)")
	fs.StringVar(&o.serve, "one-serve", "", "`address` kscloud serves installer files on for oned to download (default: this host's address toward the endpoint, any port)")
	fs.StringVar(&o.serveURL, "one-serve-url", "", "base `URL` oned downloads kscloud's files from, when it differs from --one-serve (NAT, proxy)")
	fs.IntVar(&o.imageDS, "one-image-ds", -1, "image datastore `id` for targets and images (default: the first IMAGE_DS)")
	fs.IntVar(&o.fileDS, "one-file-ds", -1, "file datastore `id` for kernels, initrds and kickstarts (default: the first FILE_DS)")
	fs.IntVar(&o.network, "one-network", -2, "virtual network `id` for the VM's NIC (default: the first in the pool; -1: none)")
}

// openOpenNebula opens the OpenNebula provider.
func openOpenNebula(ctx context.Context, g *global, stderr io.Writer) (cloud.Provider, func(), error) {
	g.calls = new(callCounter)
	cfg := opennebula.Config{Endpoint: g.one.endpoint, AuthFile: g.one.auth, Calls: g.calls.count}
	if cfg.Endpoint == "" {
		cfg.Endpoint = g.endpoint // a build's recorded endpoint (resume, cleanup)
	}
	if g.one.imageDS >= 0 {
		cfg.ImageDS = &g.one.imageDS
	}
	if g.one.fileDS >= 0 {
		cfg.FileDS = &g.one.fileDS
	}
	if g.one.network >= -1 {
		cfg.Network = &g.one.network
	}
	p, err := opennebula.New(ctx, cfg)
	if err != nil {
		if errors.Is(err, opennebula.ErrAuth) {
			err = fmt.Errorf("%w (check --one-auth, ONE_AUTH or ~/.one/one_auth)", err)
		}
		return nil, nil, err
	}
	eff := p.Effective()
	g.logger(stderr).Info("opennebula provider", "endpoint", eff.Endpoint, "from", eff.EndpointFrom, "user", eff.User, "auth", eff.AuthFrom, "version", eff.Version)
	return p, func() {}, nil
}

func oneCloudRef(p *opennebula.Provider) *install.CloudRef {
	return &install.CloudRef{Endpoint: p.Effective().Endpoint}
}

func (f *launchFlags) validateOpenNebula(kind string) string {
	if kind == "run" && f.image != "" {
		if f.ks != "" || f.kernel != "" || f.location != "" || f.catalog != "" {
			return "--image boots an installed system: it takes no --ks, --kernel, --location or --installer"
		}
		return ""
	}
	if f.installerImage != "" {
		return "--installer-image is for ec2; OpenNebula boots the installer's kernel and initrd itself"
	}
	if f.ks == "" && f.extraArgs == "" {
		return "--ks FILE|URL is required (see kscloud " + kind + " -h)"
	}
	if f.catalog != "" {
		if f.kernel != "" || f.initrd != "" || f.location != "" {
			return "--installer NAME and --kernel/--initrd/--location exclude each other (the catalog installer is a kernel and an initrd)"
		}
		if err := userdata.CheckInstaller(f.catalog); err != nil {
			return "--installer: " + strings.TrimPrefix(err.Error(), "user-data: ")
		}
	}
	if f.catalog == "" && f.location == "" && (f.kernel == "" || f.initrd == "") {
		return "an installer is required: --kernel and --initrd (files, or img-N ids of KERNEL/RAMDISK images), --location, or --installer NAME (KERNEL and RAMDISK images marked KSCLOUD_INSTALLER=NAME)"
	}
	if f.location != "" && (f.kernel != "" || f.initrd != "") {
		return "--location and --kernel/--initrd exclude each other"
	}
	switch f.delivery {
	case "", "context", "url":
	default:
		return fmt.Sprintf("--ks-delivery %q: want context (a file on the VM's CONTEXT CD-ROM, the default) or url on opennebula", f.delivery)
	}
	if n := f.name; n != "" && !validName(n) {
		return fmt.Sprintf("--name %q: 1 to 112 letters, digits and ._()-", n)
	}
	return ""
}

// installerRemedy adds to a catalog miss what the operator does about it.
func installerRemedy(err error) error {
	var ie *opennebula.InstallerError
	if !errors.As(err, &ie) || !errors.Is(err, cloud.ErrNotFound) {
		return err
	}
	known := "none"
	if len(ie.Known) > 0 {
		known = strings.Join(ie.Known, ", ")
	}
	return fmt.Errorf("%w (catalog installers here: %s; an operator marks a KERNEL and a RAMDISK image with oneimage update: KSCLOUD_INSTALLER=%q)", err, known, ie.Name)
}

// oneSteps picks the OpenNebula workflow.
func oneSteps(w *opennebula.Workflow, kind string, b *install.Build) []install.Step {
	switch {
	case kind == "bake":
		return w.BakeSteps()
	case b.Spec.ImageID != "" && b.Spec.Kickstart == "" && b.Spec.ExtraArgs == "":
		return w.ImageRunSteps()
	}
	return w.RunSteps()
}

package hookd

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/libvirtxml"
	"github.com/kscloud/kscloud/internal/preboot"
)

// OpenNebula deploys a VM again and again under one domain name (one-ID):
// at resume from POWEROFF, after undeploy, on migration, each time with a
// deployment file generated from the VM's template, which still carries
// the user-data (and, for a kscloud launch, the installer's KERNEL_DS). An
// install that finished must not run again: the follower records it in
// the store (phase final or finished, kept until the VM directory is gone)
// and as preboot.InstalledMarker in the VM directory, which moves with the
// VM; InstallFinished answers the deploy hook from both.

// isOneVM reports whether a record is an OpenNebula VM's: a domain one-ID
// (Eucalyptus names its instances i-…) with a VM directory.
func isOneVM(st hookproto.InstanceStatus) bool {
	return strings.HasPrefix(st.Instance, "one-") && st.Dir != ""
}

// installDone is called when an install reached PhaseFinal or
// PhaseFinished: an OpenNebula VM gets its marker. A failure to write it is
// logged; the store still has the fact for this host.
func (f *Follower) installDone(name string) {
	st, ok := f.store.Get(name)
	if !ok || !isOneVM(st) || (st.Phase != PhaseFinal && st.Phase != PhaseFinished) {
		return
	}
	m := preboot.Installed{Instance: st.Instance, Mode: st.Mode, FinishedAt: st.UpdatedAt, Reason: st.Reason}
	if err := preboot.WriteInstalled(f.cfg(), st.Dir, m); err != nil {
		installLog(f.log, name, StepDone).Error("record finished install in the VM directory", "err", err)
		return
	}
	installLog(f.log, name, StepDone).Info("install finished: later deploys boot from disk", "mode", st.Mode)
}

// InstallFinished reports whether the install of the OpenNebula VM whose
// domain is name and whose VM directory is dir has finished, and in which
// mode: from the store, else from the VM directory's marker (the VM was
// deployed on another host before, or the record was swept). A marker
// that cannot be read as one is an error, never a finished install.
func (s *Server) InstallFinished(name, dir string) (mode string, ok bool, err error) {
	if st, found := s.store.Get(name); found && (st.Phase == PhaseFinal || st.Phase == PhaseFinished) {
		return st.Mode, true, nil
	}
	m, ok, err := preboot.ReadInstalled(s.Config(), dir, name)
	if err != nil || !ok {
		return "", false, err
	}
	return m.Mode, true, nil
}

// sweepOne forgets the records of OpenNebula VMs whose VM directory is
// gone (terminated: the epilog removed it; undeployed: it moved to the
// frontend, marker included). OpenNebula runs no pre-clean on the node,
// so without this the store would keep every VM the host ever ran.
func (f *Follower) sweepOne(ctx context.Context) {
	for _, st := range f.store.List() {
		if ctx.Err() != nil {
			return
		}
		if !isOneVM(st) || st.Phase == PhaseInstalling || st.Phase == PhaseFinishing {
			continue
		}
		if _, err := os.Lstat(st.Dir); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := f.store.Cleaned(st.Instance); err != nil {
			f.stateWriteFailed(st.Instance, StepClean, "forget VM whose directory is gone", err)
			continue
		}
		installLog(f.log, st.Instance, StepClean).Info("VM directory gone: install record dropped", "dir", st.Dir)
	}
}

// adoptedDir is the VM directory of an OpenNebula installer domain that
// nchookd did not rewrite itself (the hook's fallback did, while the
// daemon was down): the directory of its console log, which the rewrite
// puts in the VM directory. Other domains have none.
func adoptedDir(name, console string) string {
	if !strings.HasPrefix(name, "one-") || console == "" || !filepath.IsAbs(console) {
		return ""
	}
	return filepath.Dir(console)
}

// oneFinishedPlan is the deploy of a VM whose install finished (store or
// marker): its domain boots from disk. nil: decide as for any deploy (no
// finished install, or the record cannot be read, which is logged).
func (s *Server) oneFinishedPlan(domainXML []byte, vmDir string) *preboot.Plan {
	name, err := libvirtxml.DomainName(domainXML)
	if err != nil || !strings.HasPrefix(name, "one-") {
		return nil
	}
	mode, ok, err := s.InstallFinished(name, vmDir)
	if err != nil {
		installLog(s.log, name, StepRewrite).Warn("one-deploy: install marker ignored", "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	p, err := preboot.InstalledPlan(s.Config(), domainXML, vmDir, name, mode)
	if err != nil {
		installLog(s.log, name, StepRewrite).Error("one-deploy: finished install, but no disk boot; deciding as usual", "err", err)
		return nil
	}
	return p
}

package hookd

import (
	"bufio"
	"context"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/kscloud/kscloud/internal/hookproto"
	"github.com/kscloud/kscloud/internal/preboot"
)

// oneDeploy answers the OpenNebula deploy wrapper (hookproto.OpOneDeploy):
// it reads the payload announced by line from r (lr bounds the reads and
// is widened by the payload's size), decides the rewrite and writes the
// answer. Nothing is written to disk: the wrapper hands the domain to
// OpenNebula's own deploy script. Every failure is an answer without a
// domain: the VM deploys as OpenNebula wrote it (a deploy is never
// blocked), and the error says why.
func (s *Server) oneDeploy(ctx context.Context, conn net.Conn, line []byte, r *bufio.Reader, lr *io.LimitedReader) func() {
	start := time.Now()
	cfg := s.Config()
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	req, err := hookproto.ReadOneDeploy(line, r, func(n int64) { lr.N += n })
	answer := func(resp *hookproto.OneDeployResponse, dom []byte) {
		conn.SetWriteDeadline(time.Now().Add(answerTimeout))
		if err := hookproto.WriteOneDeployResponse(conn, resp, dom); err != nil {
			s.log.Warn("hook socket: write answer", "err", err)
		}
		s.Metrics.Hook(hookproto.OpOneDeploy, &hookproto.Response{OK: resp.OK, Error: resp.Error, Outcome: resp.Outcome}, time.Since(start))
	}
	if err != nil {
		answer(&hookproto.OneDeployResponse{Error: err.Error()}, nil)
		return nil
	}
	wctx, cancel := workContext(ctx, cfg, hookproto.Request{Deadline: req.Deadline})
	defer cancel()
	if wctx.Err() != nil {
		s.log.Warn("one-deploy request arrived after the wrapper's deadline; ignored", "deploy_file", req.DeployFile)
		answer(&hookproto.OneDeployResponse{Error: "request arrived after the wrapper's deadline"}, nil)
		return nil
	}
	if p := s.oneFinishedPlan(req.DomainXML, filepath.Dir(req.DeployFile)); p != nil {
		// A resume, undeploy or migration of a VM whose install finished:
		// it boots its disk, and its record stays as it is.
		o := p.Outcome
		o.DomainFile = req.DeployFile
		answer(&hookproto.OneDeployResponse{OK: true, Outcome: &o}, p.DomainXML)
		installLog(s.log, o.Instance, StepRewrite).Info("one-deploy: install finished before; boots from disk", "mode", o.Mode,
			"duration_s", time.Since(start).Seconds())
		return nil
	}
	var p *preboot.Plan
	if req.VMXML == nil && req.ContextSh != nil {
		// OpenNebula 5.12: no vm.xml; the wrapper read the CONTEXT CD-ROM.
		p, err = preboot.DecideOneContext(cfg, req.ContextSh, req.DomainXML, filepath.Dir(req.DeployFile))
	} else {
		p, err = preboot.DecideOne(cfg, req.VMXML, req.DomainXML, filepath.Dir(req.DeployFile))
	}
	if err != nil {
		s.log.Error("one-deploy: deployed unchanged", "deploy_file", req.DeployFile, "err", err)
		answer(&hookproto.OneDeployResponse{Error: err.Error()}, nil)
		return nil
	}
	if wctx.Err() != nil {
		answer(&hookproto.OneDeployResponse{Error: "rewrite finished after the wrapper's deadline"}, nil)
		return nil
	}
	o := p.Outcome
	o.DomainFile = req.DeployFile
	if !o.Changed {
		answer(&hookproto.OneDeployResponse{OK: true, Outcome: &o}, nil)
		installLog(s.log, o.Instance, StepRewrite).Debug("one-deploy: nothing to do")
		return nil
	}
	// Recorded before the answer, as a Eucalyptus pre-boot is: the domain
	// may start as soon as the wrapper has it.
	s.store.Remember(&o)
	if f := s.fol.Load(); f != nil {
		f.PreBoot(&o)
	}
	answer(&hookproto.OneDeployResponse{OK: true, Outcome: &o}, p.DomainXML)
	installLog(s.log, o.Instance, StepRewrite).Info("one-deploy rewrite", "mode", o.Mode, "installer", o.Installer,
		"vnc", o.VNC != nil, "duration_s", time.Since(start).Seconds())
	return func() {
		if err := s.store.Persist(o.Instance); err != nil {
			s.stateWriteFailed(o.Instance, StepRewrite, "record install", err)
		}
	}
}

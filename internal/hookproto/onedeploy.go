package hookproto

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/kscloud/kscloud/internal/preboot"
)

// OpOneDeploy is the OpenNebula deploy wrapper's call (hooks/opennebula):
// rewrite the domain XML OpenNebula's KVM driver is about to boot.
//
// Wire format (stable): the request line is a JSON [Request] with Op
// "one-deploy", DeployFile, Host, DomainLen and VMLen, followed at once by
// DomainLen bytes of domain XML (the deploy script's standard input) and
// VMLen bytes of vm.xml (0 when the VM directory has none, as on 5.12),
// then ContextLen bytes of the context.sh the wrapper read from the
// CONTEXT CD-ROM when there is no vm.xml (5.12; the field is absent, 0,
// otherwise: preboot.DecideOneContext decides from it).
// The answer is one JSON [OneDeployResponse] line followed by its
// DomainLen bytes of rewritten domain XML (0: boot the domain unchanged).
// The XML travels raw, not inside JSON, so that a 4 MiB domain stays
// 4 MiB on the wire and the line limits stay small.
const OpOneDeploy = "one-deploy"

// MaxOneDomain and MaxOneVM bound the payloads of a one-deploy request
// (and MaxOneDomain the rewritten domain of its answer).
const (
	MaxOneDomain = 4 << 20
	MaxOneVM     = 4 << 20
)

// OneDeployRequest is the header of a one-deploy request (the fields of
// Request it uses, plus the payload lengths).
type OneDeployRequest struct {
	Op         string    `json:"op"`
	DeployFile string    `json:"deploy_file"`
	Host       string    `json:"host,omitempty"`
	DomainLen  int       `json:"domain_len"`
	VMLen      int       `json:"vm_len"`
	ContextLen int       `json:"context_len,omitempty"`
	Deadline   time.Time `json:"deadline,omitzero"`
}

// OneDeployResponse is the header of the daemon's answer.
type OneDeployResponse struct {
	OK bool `json:"ok"`
	// Denied: the daemon does not serve this peer; the wrapper rewrites
	// itself.
	Denied  bool             `json:"denied,omitempty"`
	Error   string           `json:"error,omitempty"`
	Outcome *preboot.Outcome `json:"outcome,omitempty"`
	// DomainLen bytes of rewritten domain XML follow the line; 0 when the
	// domain boots as OpenNebula wrote it.
	DomainLen int `json:"domain_len"`
}

// OneDeploy is a decoded one-deploy request (server side).
type OneDeploy struct {
	DeployFile string
	Host       string
	Deadline   time.Time
	DomainXML  []byte
	VMXML      []byte // nil when the VM directory has no vm.xml
	// ContextSh is the CONTEXT CD-ROM's context.sh, sent (5.12) when
	// there is no vm.xml; nil otherwise.
	ContextSh []byte
}

// CallOneDeploy sends a one-deploy request to the daemon on socket and
// returns its answer and the rewritten domain (nil: unchanged). Errors
// wrap ErrUnavailable when no daemon could be talked to.
func CallOneDeploy(ctx context.Context, socket string, req OneDeploy) (*OneDeployResponse, []byte, error) {
	if len(req.DomainXML) > MaxOneDomain || len(req.VMXML) > MaxOneVM || len(req.ContextSh) > MaxOneVM {
		return nil, nil, fmt.Errorf("domain XML (%d bytes), vm.xml (%d bytes) or context.sh (%d bytes) over the %d-byte limit",
			len(req.DomainXML), len(req.VMXML), len(req.ContextSh), MaxOneDomain)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", socket, ErrUnavailable, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hdr, err := json.Marshal(OneDeployRequest{Op: OpOneDeploy, DeployFile: req.DeployFile, Host: req.Host,
		DomainLen: len(req.DomainXML), VMLen: len(req.VMXML), ContextLen: len(req.ContextSh), Deadline: req.Deadline})
	if err != nil {
		return nil, nil, err
	}
	// One write for the whole request: the daemon may answer (Denied)
	// before reading the payload.
	msg := make([]byte, 0, len(hdr)+1+len(req.DomainXML)+len(req.VMXML)+len(req.ContextSh))
	msg = append(append(append(append(append(msg, hdr...), '\n'), req.DomainXML...), req.VMXML...), req.ContextSh...)
	_, werr := conn.Write(msg)
	r := bufio.NewReaderSize(conn, 64<<10)
	line, err := readLine(r, MaxLine)
	if err != nil {
		// The connection's only deadline is ctx's: a read that timed out
		// is the daemon not answering in time, also when the read's timer
		// fires before ctx reports it.
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil, fmt.Errorf("%s: no answer: %w", socket, context.DeadlineExceeded)
		}
		if werr != nil {
			err = werr
		}
		return nil, nil, fmt.Errorf("%s: %w: %v", socket, ErrUnavailable, err)
	}
	var resp OneDeployResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, nil, fmt.Errorf("%s: bad answer: %w", socket, err)
	}
	if resp.DomainLen < 0 || resp.DomainLen > MaxOneDomain {
		return nil, nil, fmt.Errorf("%s: bad answer: domain of %d bytes", socket, resp.DomainLen)
	}
	var dom []byte
	if resp.DomainLen > 0 {
		dom = make([]byte, resp.DomainLen)
		if _, err := io.ReadFull(r, dom); err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, nil, fmt.Errorf("%s: no answer: %w", socket, context.DeadlineExceeded)
			}
			return nil, nil, fmt.Errorf("%s: answer cut short: %v", socket, err)
		}
	}
	return &resp, dom, nil
}

// ErrPayload marks a one-deploy request whose payload lengths are out of
// bounds.
var ErrPayload = errors.New("bad one-deploy payload")

// ReadOneDeploy reads the payload of a one-deploy request whose header
// line (raw, as ReadRequest read it) is line, from r (server side). grow
// is called with the payload's size before it is read, so that a caller
// bounding the connection's reads can allow it.
func ReadOneDeploy(line []byte, r io.Reader, grow func(n int64)) (*OneDeploy, error) {
	var h OneDeployRequest
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("bad request: %w", err)
	}
	if h.DomainLen <= 0 || h.DomainLen > MaxOneDomain || h.VMLen < 0 || h.VMLen > MaxOneVM || h.ContextLen < 0 || h.ContextLen > MaxOneVM {
		return nil, fmt.Errorf("%w: domain %d bytes (1..%d), vm.xml %d bytes (0..%d), context.sh %d bytes (0..%d)",
			ErrPayload, h.DomainLen, MaxOneDomain, h.VMLen, MaxOneVM, h.ContextLen, MaxOneVM)
	}
	if h.VMLen > 0 && h.ContextLen > 0 {
		return nil, fmt.Errorf("%w: both vm.xml and context.sh", ErrPayload)
	}
	if grow != nil {
		grow(int64(h.DomainLen + h.VMLen + h.ContextLen))
	}
	buf := make([]byte, h.DomainLen+h.VMLen+h.ContextLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	req := &OneDeploy{DeployFile: h.DeployFile, Host: h.Host, Deadline: h.Deadline, DomainXML: buf[:h.DomainLen:h.DomainLen]}
	if h.VMLen > 0 {
		req.VMXML = buf[h.DomainLen : h.DomainLen+h.VMLen]
	}
	if h.ContextLen > 0 {
		req.ContextSh = buf[h.DomainLen+h.VMLen:]
	}
	return req, nil
}

// WriteOneDeployResponse writes the answer header and the rewritten
// domain (server side).
func WriteOneDeployResponse(w io.Writer, resp *OneDeployResponse, domain []byte) error {
	resp.DomainLen = len(domain)
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = w.Write(append(append(b, '\n'), domain...))
	return err
}

// ReadRequestLine reads one raw request line (server side), for requests
// whose op decides how the rest is read.
func ReadRequestLine(r *bufio.Reader) ([]byte, Request, error) {
	var req Request
	line, err := readLine(r, MaxRequest)
	if err != nil {
		return nil, req, err
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, req, fmt.Errorf("bad request: %w", err)
	}
	return line, req, nil
}

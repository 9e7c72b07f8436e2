// Package hookproto is the protocol between the cloud hooks (and the
// nchookd CLI) and the nchookd daemon: one JSON request line and one JSON
// response line over a unix socket, and the client side of it. The hooks
// (internal/hook) link it statically, so it must never import libvirt.
package hookproto

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/kscloud/kscloud/internal/preboot"
)

// Ops.
const (
	OpHook   = "hook"   // a Eucalyptus hook event
	OpStatus = "status" // list the instances nchookd follows
	OpPing   = "ping"
)

// MaxLine bounds a response line.
const MaxLine = 1 << 20

// MaxRequest bounds a request line (a request names an event and a path).
const MaxRequest = 16 << 10

// Request is one call to the daemon.
type Request struct {
	Op          string `json:"op"`
	Event       string `json:"event,omitempty"`
	EucaHome    string `json:"euca_home,omitempty"`
	InstanceDir string `json:"instance_dir,omitempty"`
	Instance    string `json:"instance,omitempty"` // status of one instance
	// Deadline is when the hook stops waiting for the answer: the daemon
	// writes nothing for the request after it.
	Deadline time.Time `json:"deadline,omitzero"`
	// AssumeConfig and AssumeTimeoutMS are what the static nc-hooks
	// dispatcher (hooks/eucalyptus/dispatch), which reads no config,
	// assumed: the config file the hook would read and, when no
	// NCHOOKD_TIMEOUT was given, its hook.timeout. A daemon whose own are
	// not these answers Unavailable, and the dispatcher runs the Go hook,
	// which reads the config. Empty/0: nothing assumed.
	AssumeConfig    string `json:"assume_config,omitempty"`
	AssumeTimeoutMS int64  `json:"assume_timeout_ms,omitempty"`
}

// Response is the daemon's answer.
type Response struct {
	OK bool `json:"ok"`
	// Refuse asks the hook to exit non-zero (a pre-boot refusal cancels the
	// launch; a pre-clean refusal keeps the instance's files).
	Refuse bool `json:"refuse,omitempty"`
	// Denied: the daemon does not serve this peer (SO_PEERCRED); the hook
	// then does the work itself, as when no daemon runs.
	Denied bool `json:"denied,omitempty"`
	// Unavailable: the request's Assume* are not the daemon's; nothing
	// was done, and the caller runs the Go hook.
	Unavailable bool             `json:"unavailable,omitempty"`
	Error       string           `json:"error,omitempty"`
	Outcome     *preboot.Outcome `json:"outcome,omitempty"`
	Instances   []InstanceStatus `json:"instances,omitempty"`
	Daemon      *DaemonStatus    `json:"daemon,omitempty"`
}

// InstanceStatus is what nchookd knows of one install.
type InstanceStatus struct {
	preboot.Outcome
	Phase     string    `json:"phase"`              // installing, finishing, final, finished, failed, cleaned
	Reason    string    `json:"reason,omitempty"`   // why it failed or how it ended
	Progress  string    `json:"progress,omitempty"` // last installer progress line from the console
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// FinalGap is the time from the installer's stop to the final domain
	// running (install in place).
	FinalGapMS int64    `json:"final_gap_ms,omitempty"`
	LastLines  []string `json:"last_lines,omitempty"` // last console lines, on failure
	UUID       string   `json:"uuid,omitempty"`
	Persistent bool     `json:"persistent,omitempty"` // a persistent libvirt definition boots from disk after
	// InstallerXML is the installer's inactive definition, captured when it
	// started; the final domain is made from it. Not sent in status.
	InstallerXML string `json:"installer_xml,omitempty"`
}

// DaemonStatus describes the daemon itself.
type DaemonStatus struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	Config    string    `json:"config"`
	StartedAt time.Time `json:"started_at"`
	Libvirt   string    `json:"libvirt,omitempty"` // connected, disconnected, disabled
}

// ErrUnavailable means no daemon answered on the socket (not running, not
// listening, or no permission): the caller may do the work itself.
var ErrUnavailable = errors.New("daemon unavailable")

// Call sends req to the daemon on socket and waits for the answer until
// ctx is done.
func Call(ctx context.Context, socket string, req Request) (*Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", socket, ErrUnavailable, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", socket, ErrUnavailable, err)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	line, err := readLine(r, MaxLine)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: no answer: %w", socket, ctx.Err())
		}
		return nil, fmt.Errorf("%s: %w: %v", socket, ErrUnavailable, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("%s: bad answer: %w", socket, err)
	}
	return &resp, nil
}

// ReadRequest reads one request line (server side).
func ReadRequest(r *bufio.Reader) (Request, error) {
	var req Request
	line, err := readLine(r, MaxRequest)
	if err != nil {
		return req, err
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return req, fmt.Errorf("bad request: %w", err)
	}
	return req, nil
}

// WriteResponse writes one response line (server side).
func WriteResponse(conn net.Conn, resp *Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = conn.Write(append(b, '\n'))
	return err
}

func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("line over %d bytes", max)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// Package ec2endpoint is a test fixture: an EC2 Query API endpoint over
// real HTTP that checks SigV4 and SigV2 signatures, follows EC2's state
// machines asynchronously with configurable delays, answers with the
// documented error codes, and keeps everything in memory (plain mode) or
// plays a Eucalyptus node controller on a real libvirtd (node mode). It is
// not a product: it is what kscloud's EC2 provider and workflows are tested
// against. See README.md for the options and how to start it from a test.
package ec2endpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test credentials the endpoint accepts when Options names none.
const (
	TestAccessKey = "AKIAKSCLOUDTEST00001"
	TestSecretKey = "kscloud/test+secret/key0000000000000000"
)

// Delays are how long each asynchronous transition takes. In node mode
// they are minimums: a transition also waits for the real work (copying
// a file, booting a domain).
type Delays struct {
	InstancePending      time.Duration // pending → running
	InstanceStopping     time.Duration // stopping → stopped
	InstanceShuttingDown time.Duration // shutting-down → terminated
	VolumeCreating       time.Duration // creating → available
	VolumeDeleting       time.Duration // deleting → gone
	Attaching            time.Duration // attaching → attached
	Detaching            time.Duration // detaching → detached (volume available)
	SnapshotStep         time.Duration // one step of snapshot progress
	SnapshotSteps        int           // steps from 0 % to 100 % (pending → completed)
	ImagePending         time.Duration // pending → available
	TerminatedRetention  time.Duration // how long a terminated instance stays listed (EC2: about an hour)
	// Invisible: a new snapshot or image is unknown to Describe* and
	// CreateTags for this long, a new instance or volume to CreateTags
	// (InvalidSnapshot.NotFound, InvalidAMIID.NotFound,
	// InvalidInstanceID.NotFound, InvalidVolume.NotFound), as EC2's
	// eventual consistency makes them right after the create call.
	Invisible time.Duration
}

// DefaultDelays are short enough for tests and long enough that every
// intermediate state is observable.
var DefaultDelays = Delays{
	InstancePending:      300 * time.Millisecond,
	InstanceStopping:     200 * time.Millisecond,
	InstanceShuttingDown: 200 * time.Millisecond,
	VolumeCreating:       200 * time.Millisecond,
	VolumeDeleting:       100 * time.Millisecond,
	Attaching:            150 * time.Millisecond,
	Detaching:            150 * time.Millisecond,
	SnapshotStep:         100 * time.Millisecond,
	SnapshotSteps:        4,
	ImagePending:         200 * time.Millisecond,
	TerminatedRetention:  time.Hour,
}

// Options configure a Server. The zero value is plain mode on
// 127.0.0.1:0 with TestAccessKey/TestSecretKey and DefaultDelays.
type Options struct {
	Addr      string // listen address (default 127.0.0.1:0)
	AccessKey string // default TestAccessKey
	SecretKey string // default TestSecretKey
	Region    string // regionName in DescribeAvailabilityZones (default "eucalyptus")
	Zones     []string
	OwnerID   string  // account number in responses (default "000000000001")
	Delays    *Delays // nil: DefaultDelays
	// Dialect is the cloud the endpoint plays: aws, eucalyptus-4 (the
	// default) or eucalyptus-3 (see Dialect for the differences).
	Dialect Dialect
	// AllowReplay turns off the replay check (a Eucalyptus dialect refuses
	// a signature seen in the last 15 minutes, after a 3 s grace).
	AllowReplay bool
	// Lenient ignores unknown parameters whatever the dialect (as
	// eucalyptus-3 does).
	Lenient bool
	// Now is the endpoint's clock for request times (default time.Now): a
	// test plays a client with a skewed clock by moving the endpoint's.
	Now func() time.Time
	// TagPageSize is DescribeTags' page size (default 1000).
	TagPageSize int
	// Node, when set, plays a Eucalyptus NC on a real libvirtd.
	Node *NodeOptions
	// Log receives one line per request and each state change (default: discard).
	Log *slog.Logger
}

// Server is an EC2 test endpoint.
type Server struct {
	opts    Options
	delays  Delays
	log     *slog.Logger
	ln      net.Listener
	http    *http.Server
	url     string
	back    backend
	replays replays

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	instances map[string]*instance
	volumes   map[string]*volume
	snapshots map[string]*snapshot
	images    map[string]*image
	tags      map[string]map[string]string
	counts    map[string]int
	ids       map[string]bool
	sigCounts map[string]int      // verified requests per signature version
	faults    map[string][]string // FailNext: error codes to answer, per action
	// clientTokens maps action + ClientToken to what the first request
	// created (RunInstances: the reservation; CreateVolume: the volume).
	clientTokens map[string]clientToken
	nextIP       int
	snapHold     bool // HoldSnapshots
}

// New returns a Server configured by opts; Start makes it listen.
func New(opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.AccessKey == "" && opts.SecretKey == "" {
		opts.AccessKey, opts.SecretKey = TestAccessKey, TestSecretKey
	}
	if opts.Dialect == "" {
		opts.Dialect = DialectEucalyptus4
	}
	if opts.Region == "" {
		opts.Region = "eucalyptus"
		if opts.Dialect == DialectAWS {
			opts.Region = "us-east-1"
		}
	}
	if len(opts.Zones) == 0 {
		opts.Zones = []string{"PARTI00"}
	}
	if opts.OwnerID == "" {
		opts.OwnerID = "000000000001"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TagPageSize <= 0 {
		opts.TagPageSize = 1000
	}
	d := DefaultDelays
	if opts.Delays != nil {
		d = *opts.Delays
	}
	if d.SnapshotSteps <= 0 {
		d.SnapshotSteps = 1
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts: opts, delays: d, log: log, ctx: ctx, cancel: cancel,
		instances: map[string]*instance{}, volumes: map[string]*volume{},
		snapshots: map[string]*snapshot{}, images: map[string]*image{},
		tags: map[string]map[string]string{}, counts: map[string]int{}, ids: map[string]bool{},
	}
}

// Start listens on opts.Addr and, in node mode, connects to libvirtd.
func (s *Server) Start() error {
	if s.opts.Node != nil {
		n, err := newNode(s.ctx, s, *s.opts.Node)
		if err != nil {
			return err
		}
		s.back = n
	} else {
		s.back = plain{}
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		s.back.close()
		return fmt.Errorf("ec2endpoint: listen: %w", err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String() + s.opts.Dialect.path()
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.http.Serve(ln)
	return nil
}

// Start starts a Server for a test and closes it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// URL is the endpoint URL at the dialect's path:
// http://127.0.0.1:PORT/services/compute (eucalyptus-4),
// …/services/Eucalyptus (eucalyptus-3), …/ (aws). Any path is served.
func (s *Server) URL() string { return s.url }

// AccessKey and SecretKey are the credentials the endpoint accepts.
func (s *Server) AccessKey() string { return s.opts.AccessKey }

// SecretKey is the secret of AccessKey.
func (s *Server) SecretKey() string { return s.opts.SecretKey }

// Close stops serving, stops every transition in flight and, in node
// mode, destroys the domains it created. The node directory is left.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var err error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.http.Shutdown(ctx)
		cancel()
	}
	s.cancel()
	s.wg.Wait()
	if s.back != nil {
		err = errors.Join(err, s.back.close())
	}
	return err
}

// Count returns how many requests named action the endpoint received
// (signed or not, answered or refused).
func (s *Server) Count(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[action]
}

// ResetCounts zeroes the request and signature counters.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.sigCounts = map[string]int{}
}

// Signatures returns how many requests passed the signature check with
// version "v2" or "v4".
func (s *Server) Signatures(version string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sigCounts[version]
}

func (s *Server) countSignature(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sigCounts == nil {
		s.sigCounts = map[string]int{}
	}
	s.sigCounts[version]++
}

// FailNext makes the next n authenticated requests for action fail with
// code: "InternalError" (HTTP 500), "Unavailable" (503) or
// "RequestLimitExceeded" (503, EC2's throttling code) — the errors SDKs
// retry — or any other code (400). It tests clients' retries.
func (s *Server) FailNext(action string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults == nil {
		s.faults = map[string][]string{}
	}
	for i := 0; i < n; i++ {
		s.faults[action] = append(s.faults[action], code)
	}
}

// fault pops the next injected failure for action, if any.
func (s *Server) fault(action string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[action]
	if len(q) == 0 {
		return nil
	}
	s.faults[action] = q[1:]
	e := apiErr(q[0], "injected failure (FailNext)")
	switch q[0] {
	case "Unavailable", "RequestLimitExceeded":
		e.Status = http.StatusServiceUnavailable
	}
	return e
}

// async runs fn on its own goroutine; Close cancels its context and waits.
func (s *Server) async(fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// sleepUntil waits until t; false if the server closed first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// newID returns a fresh Eucalyptus 3.x style ID: prefix-XXXXXXXX (upper-case hex).
func (s *Server) newID(prefix string) string {
	for {
		var b [4]byte
		rand.Read(b[:])
		id := prefix + "-" + strings.ToUpper(hex.EncodeToString(b[:]))
		if !s.ids[id] {
			s.ids[id] = true
			return id
		}
	}
}

// canon normalises an ID for lookup: lower-case prefix, upper-case hex, so
// that vol-14ae3f68 finds vol-14AE3F68 (Eucalyptus 4 normalises the same way).
func canon(id string) string {
	p, rest, ok := strings.Cut(id, "-")
	if !ok {
		return id
	}
	return strings.ToLower(p) + "-" + strings.ToUpper(rest)
}

type handler func(s *Server, p *params) (response, *apiError)

var handlers = map[string]handler{
	"RunInstances":              (*Server).runInstances,
	"DescribeInstances":         (*Server).describeInstances,
	"DescribeInstanceAttribute": (*Server).describeInstanceAttribute,
	"TerminateInstances":        (*Server).terminateInstances,
	"StopInstances":             (*Server).stopInstances,
	"StartInstances":            (*Server).startInstances,
	"GetConsoleOutput":          (*Server).getConsoleOutput,
	"CreateVolume":              (*Server).createVolume,
	"DescribeVolumes":           (*Server).describeVolumes,
	"AttachVolume":              (*Server).attachVolume,
	"DetachVolume":              (*Server).detachVolume,
	"DeleteVolume":              (*Server).deleteVolume,
	"CreateSnapshot":            (*Server).createSnapshot,
	"DescribeSnapshots":         (*Server).describeSnapshots,
	"DeleteSnapshot":            (*Server).deleteSnapshot,
	"RegisterImage":             (*Server).registerImage,
	"DescribeImages":            (*Server).describeImages,
	"DeregisterImage":           (*Server).deregisterImage,
	"CreateTags":                (*Server).createTags,
	"DeleteTags":                (*Server).deleteTags,
	"DescribeTags":              (*Server).describeTags,
	"DescribeAvailabilityZones": (*Server).describeZones,
}

const maxBody = 1 << 20

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	start := time.Now()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.writeError(w, reqID, apiErr("InvalidAction", "method %s: use GET or POST", r.Method))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		s.writeError(w, reqID, apiErr("InvalidParameterValue", "reading the body: %v", err))
		return
	}
	if len(body) > maxBody {
		s.writeError(w, reqID, apiErr("InvalidParameterValue", "request body over %d bytes", maxBody))
		return
	}
	all := r.URL.Query()
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Method == http.MethodPost && ct == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.writeError(w, reqID, apiErr("InvalidParameterValue", "form body: %v", err))
			return
		}
		for k, vs := range form {
			all[k] = append(all[k], vs...)
		}
	}
	action := all.Get("Action")
	s.mu.Lock()
	s.counts[action]++
	s.mu.Unlock()

	resp, e := s.serve(r, body, all, action, reqID)
	if e != nil {
		s.log.Info("request", "action", action, "error", e.Code, "message", e.Message, "duration_s", time.Since(start).Seconds())
		s.writeError(w, reqID, e)
		return
	}
	s.log.Debug("request", "action", action, "duration_s", time.Since(start).Seconds())
	out, err := marshalResponse(resp, action, all.Get("Version"), reqID)
	if err != nil {
		s.writeError(w, reqID, apiErr("InternalError", "encoding the response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	io.WriteString(w, xml.Header)
	w.Write(out)
}

// marshalResponse encodes resp as EC2 does: the root element is the
// action's name + "Response" in the namespace of the request's API version
// (<DeleteVolumeResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">),
// the request ID first. (encoding/xml ignores an XMLName in an embedded
// struct, so the root element is given here, not by the response types.)
func marshalResponse(resp response, action, version, reqID string) ([]byte, error) {
	resp.setHead(reqID)
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: "http://ec2.amazonaws.com/doc/" + version + "/"}}}
	if err := enc.EncodeElement(resp, start); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (s *Server) serve(r *http.Request, body []byte, all url.Values, action, reqID string) (response, *apiError) {
	if e := s.authenticate(r, body, all, s.opts.Now()); e != nil {
		return nil, e
	}
	if e := s.fault(action); e != nil {
		return nil, e
	}
	if action == "" {
		return nil, apiErr("MissingAction", "The request must contain the parameter Action")
	}
	version := all.Get("Version")
	if version == "" {
		return nil, apiErr("MissingParameter", "The request must contain the parameter Version")
	}
	if !versionRe.MatchString(version) {
		return nil, apiErr("InvalidParameterValue", "Version %q is not YYYY-MM-DD", version)
	}
	h := handlers[action]
	if h == nil {
		return nil, apiErr("InvalidAction", "The action %s is not valid for this web service.", action)
	}
	p := newParams(all)
	dry, e := p.bool("DryRun", false)
	if e != nil {
		return nil, e
	}
	if s.opts.Lenient || s.opts.Dialect.lenient() {
		p.lenient = true
	}
	if dry {
		// The action's parameters are not read here (the handlers check
		// and act in one go): a dry run of a known action succeeds.
		return nil, &apiError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: http.StatusPreconditionFailed}
	}
	return h(s, p)
}

func (s *Server) writeError(w http.ResponseWriter, reqID string, e *apiError) {
	out, _ := xml.Marshal(xmlErrorResponse{Errors: []xmlErr{{Code: e.Code, Message: e.Message}}, RequestID: reqID})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	io.WriteString(w, xml.Header)
	w.Write(out)
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
)

// DefaultRegion is the region signed into SigV4 requests to a custom
// endpoint when nothing else names one. Eucalyptus does not check the
// region of a SigV4 credential scope (Hmacv4LoginModule), so any name
// works there.
const DefaultRegion = "eucalyptus"

// Config says which EC2-compatible cloud to talk to and how. Every field
// may be left empty; New fills it from the euca2ools conventions and the
// AWS SDK's default chain (see New).
type Config struct {
	// Endpoint is the EC2 Query API URL, path included:
	// http://CLC:8773/services/compute (Eucalyptus 4.x),
	// http://CLC:8773/services/Eucalyptus (3.x). Empty: AWS's endpoint.
	Endpoint string
	// Region names the SigV4 credential scope and, without an Endpoint,
	// the AWS region.
	Region string
	// Signature is SignatureV4 or SignatureV2; empty: by the endpoint's
	// path (DefaultSignature).
	Signature string
	// Explicit credentials; both keys or neither.
	AccessKey, SecretKey, SessionToken string
	// Eucarc is a eucarc file to take EC2_URL and the keys from.
	Eucarc string
	// Profile is an AWS shared-config profile for the SDK's chain.
	Profile string
	// Zone is the availability zone for volumes and instances whose spec
	// names none. Empty: the first zone DescribeAvailabilityZones lists.
	Zone string
	// HTTPClient replaces the SDK's HTTP client.
	HTTPClient *http.Client
	// Calls, when set, hears every EC2 API request sent (each retry
	// too), with the operation's name.
	Calls func(op string)
	// RetryMaxAttempts bounds the SDK's retries of one call (0: SDK default, 3).
	RetryMaxAttempts int
	// Now is the clock SigV2 timestamps come from (tests); nil: time.Now.
	Now func() time.Time
	// AWSEndpoint: the cloud is AWS itself; an EC2_URL in the environment
	// or the eucarc does not apply (a build made on AWS, resumed from a
	// shell set up for Eucalyptus). Endpoint "aws" says the same.
	AWSEndpoint bool
}

// Effective is the configuration New settled on, for printing.
type Effective struct {
	Endpoint string // "" for AWS's own endpoint resolution
	// EndpointSource is where Endpoint came from: "flag", "eucarc PATH",
	// "env EC2_URL", "aws" (the SDK: AWS_ENDPOINT_URL_EC2 or AWS's regional endpoint).
	EndpointSource string
	Region         string
	Signature      string
	Credentials    string // where the keys came from: "config", "eucarc /path", "env EC2_ACCESS_KEY", "aws default chain"
	Zone           string
}

func (e Effective) String() string {
	ep := e.Endpoint
	if ep == "" {
		ep = "(aws)"
	}
	return fmt.Sprintf("endpoint=%s (%s) region=%s signature=%s credentials=%s zone=%s", ep, e.EndpointSource, e.Region, e.Signature, e.Credentials, e.Zone)
}

// Provider is a cloud.Provider on the EC2 Query API (AWS, Eucalyptus 3.x/4.x).
type Provider struct {
	api *ec2.Client
	eff Effective

	mu       sync.Mutex
	zoneSeen string
	tagSpecs atomic.Int32 // tagSpecsUnknown or tagSpecsRefused
}

// EndpointPrecedence says, for --help and the manual, which endpoint wins.
const EndpointPrecedence = "the first of --endpoint, EC2_URL in the --eucarc file ($EUCARC), $EC2_URL, AWS's own " +
	"(AWS_ENDPOINT_URL_EC2, the region's endpoint); --endpoint aws: AWS's whatever EC2_URL says"

// New builds a Provider. Each setting is taken from the first source that
// has it:
//
//	endpoint:    cfg.Endpoint ("aws": AWS's, nothing below), EC2_URL in cfg.Eucarc, $EC2_URL,
//	             the SDK (AWS_ENDPOINT_URL_EC2, AWS regional endpoint)
//	credentials: cfg.AccessKey/SecretKey, EC2_ACCESS_KEY/EC2_SECRET_KEY (or AWS_ACCESS_KEY/AWS_SECRET_KEY) in cfg.Eucarc,
//	             $EC2_ACCESS_KEY/$EC2_SECRET_KEY, the SDK's default chain (AWS_ACCESS_KEY_ID…, shared files, SSO, IMDS)
//	region:      cfg.Region, the SDK (AWS_REGION, AWS_DEFAULT_REGION, profile), DefaultRegion with a custom endpoint
//	signature:   cfg.Signature, else by the endpoint's path (DefaultSignature)
//
// The endpoint order: what the user names for this command beats what a
// shell left behind; a eucarc (named by --eucarc or $EUCARC) is a choice
// of cloud with its own keys, so its EC2_URL beats a stray $EC2_URL, whose
// keys may belong elsewhere; EC2_URL (the euca2ools convention, what
// sourcing a eucarc exports) beats AWS's settings, since a shell with it
// set is one prepared for Eucalyptus. Effective.EndpointSource tells
// which applied (kscloud -v logs it).
func New(ctx context.Context, cfg Config) (*Provider, error) {
	var err error
	var rc *Eucarc
	if cfg.Eucarc != "" {
		if rc, err = ReadEucarc(cfg.Eucarc); err != nil {
			return nil, fmt.Errorf("ec2: %w", err)
		}
	}
	endpoint, epSource, err := resolveEndpoint(cfg, rc)
	if err != nil {
		return nil, err
	}
	sig := DefaultSignature(endpoint)
	if cfg.Signature != "" {
		if sig, err = ParseSignature(cfg.Signature); err != nil {
			return nil, fmt.Errorf("ec2: %w", err)
		}
	}
	creds, source, err := resolveCredentials(cfg, rc)
	if err != nil {
		return nil, err
	}

	// The SDK's own log lines (e.g. "falling back to IMDSv1") are not
	// kscloud's one-line errors.
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(logging.Nop{})}
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if creds != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(creds))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.RetryMaxAttempts > 0 {
		opts = append(opts, awsconfig.WithRetryMaxAttempts(cfg.RetryMaxAttempts))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("ec2: load aws config: %w", err)
	}
	if ac.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("ec2: no region: set --region or AWS_REGION, or give an endpoint (EC2_URL)")
		}
		ac.Region = DefaultRegion
	}
	if creds == nil {
		// The AWS chain: find out now, not in the middle of a build.
		err := errors.New("no provider")
		if ac.Credentials != nil {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err = ac.Credentials.Retrieve(rctx)
			cancel()
		}
		if err != nil {
			return nil, fmt.Errorf("ec2: %w: set EC2_ACCESS_KEY and EC2_SECRET_KEY, name a eucarc (Config.Eucarc), or configure the AWS SDK's (AWS_ACCESS_KEY_ID…, ~/.aws/credentials)", ErrNoCredentials)
		}
	}
	now, clock := cfg.Now, (*v2Clock)(nil)
	if now == nil {
		now, clock = time.Now, processV2Clock
	}
	api := ec2.NewFromConfig(ac, func(o *ec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		if sig == SignatureV2 {
			o.APIOptions = append(o.APIOptions, addSigV2(&sigV2{creds: o.Credentials, now: now, clock: clock}))
		}
		if cfg.Calls != nil {
			o.APIOptions = append(o.APIOptions, countCalls(cfg.Calls))
		}
	})
	prov := &Provider{
		api: api,
		eff: Effective{Endpoint: endpoint, EndpointSource: epSource, Region: ac.Region, Signature: sig, Credentials: source, Zone: cfg.Zone},
	}
	if eucalyptusPath(endpoint) {
		// Eucalyptus 3.x/4.x bind no TagSpecification (4.x refuses it,
		// 3.x drops it): tag with CreateTags from the start.
		prov.tagSpecs.Store(tagSpecsRefused)
	}
	return prov, nil
}

// Effective returns the configuration in use.
func (p *Provider) Effective() Effective { return p.eff }

// Client is the SDK client, for calls the cloud interfaces do not cover.
func (p *Provider) Client() *ec2.Client { return p.api }

// Name implements cloud.Provider.
func (p *Provider) Name() string { return "ec2" }

// DefaultSignature is the signature an endpoint gets when none is asked
// for: v2 for Eucalyptus 3.x's path (/services/Eucalyptus; 3.0–3.2 verify
// only SigV2), v4 for anything else (Eucalyptus 4.x's /services/compute,
// AWS).
func DefaultSignature(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && strings.EqualFold(strings.TrimRight(u.Path, "/"), "/services/Eucalyptus") {
		return SignatureV2
	}
	return SignatureV4
}

// eucalyptusPath: the endpoint is a Eucalyptus service URL
// (http://CLC:8773/services/compute, …/services/Eucalyptus).
func eucalyptusPath(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && strings.HasPrefix(strings.ToLower(u.Path), "/services/")
}

func resolveEndpoint(cfg Config, rc *Eucarc) (ep, source string, err error) {
	if cfg.AWSEndpoint || strings.EqualFold(cfg.Endpoint, "aws") {
		return "", "aws", nil
	}
	ep, source = cfg.Endpoint, "flag"
	if ep == "" && rc != nil {
		v, _, err := rc.Get("EC2_URL")
		if err != nil {
			return "", "", fmt.Errorf("ec2: endpoint: %w", err)
		}
		ep, source = v, "eucarc "+rc.Path
	}
	if ep == "" {
		ep, source = os.Getenv("EC2_URL"), "env EC2_URL"
	}
	if ep == "" {
		return "", "aws", nil
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("ec2: endpoint %q (%s): want http(s)://host[:port]/path, or aws", ep, source)
	}
	return strings.TrimRight(ep, "/"), source, nil
}

func resolveCredentials(cfg Config, rc *Eucarc) (aws.CredentialsProvider, string, error) {
	static := func(ak, sk, tok string) aws.CredentialsProvider {
		return aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(ak, sk, tok))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		if cfg.AccessKey == "" || cfg.SecretKey == "" {
			return nil, "", fmt.Errorf("ec2: credentials: give both the access key and the secret key")
		}
		return static(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken), "config", nil
	}
	if rc != nil {
		for _, pair := range [][2]string{{"EC2_ACCESS_KEY", "EC2_SECRET_KEY"}, {"AWS_ACCESS_KEY", "AWS_SECRET_KEY"}} {
			ak, okA, errA := rc.Get(pair[0])
			sk, okS, errS := rc.Get(pair[1])
			if errA != nil || errS != nil {
				return nil, "", fmt.Errorf("ec2: credentials: %w", firstErr(errA, errS))
			}
			if okA && okS && ak != "" && sk != "" {
				return static(ak, sk, ""), "eucarc " + rc.Path, nil
			}
		}
	}
	ak, sk := os.Getenv("EC2_ACCESS_KEY"), os.Getenv("EC2_SECRET_KEY")
	if ak != "" && sk != "" {
		return static(ak, sk, ""), "env EC2_ACCESS_KEY", nil
	}
	return nil, "aws default chain", nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// ErrNoCredentials: no keys in the configuration, the environment or the
// AWS SDK's chain.
var ErrNoCredentials = errors.New("no credentials")

// countCalls is a deserialize-step middleware (below the retry loop: run
// once per attempt) that tells calls of every request sent.
func countCalls(calls func(op string)) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("KscloudCountCalls",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				calls(awsmiddleware.GetOperationName(ctx))
				return next.HandleDeserialize(ctx, in)
			}), middleware.After)
	}
}

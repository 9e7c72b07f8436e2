package ec2endpoint_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// fast are delays that keep every intermediate state observable.
var fast = ec2endpoint.Delays{
	InstancePending: 100 * time.Millisecond, InstanceStopping: 100 * time.Millisecond,
	InstanceShuttingDown: 100 * time.Millisecond, VolumeCreating: 50 * time.Millisecond,
	VolumeDeleting: 50 * time.Millisecond, Attaching: 50 * time.Millisecond, Detaching: 50 * time.Millisecond,
	SnapshotStep: 30 * time.Millisecond, SnapshotSteps: 3, ImagePending: 50 * time.Millisecond,
	TerminatedRetention: time.Minute,
}

var fastWait = wait.Waiter{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// provider is a client of srv that makes each call once: a test of the
// API's answers sees exactly what the endpoint said, never a retry's.
func provider(t *testing.T, srv *ec2endpoint.Server, sig, secret string) *ec2.Provider {
	t.Helper()
	return providerAttempts(t, srv, sig, secret, 1)
}

// providerAttempts is provider with the SDK's retries of one call bounded
// by attempts (0: the SDK's default, 3, as kscloud runs it).
func providerAttempts(t *testing.T, srv *ec2endpoint.Server, sig, secret string, attempts int) *ec2.Provider {
	t.Helper()
	if secret == "" {
		secret = srv.SecretKey()
	}
	p, err := ec2.New(context.Background(), ec2.Config{
		Endpoint: srv.URL(), AccessKey: srv.AccessKey(), SecretKey: secret, Signature: sig, RetryMaxAttempts: attempts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// code returns the EC2 error code of err ("" for none).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Errorf("%s: error %v (code %q), want code %s", what, err, got, want)
	}
}

// raw sends params to the endpoint as a form POST, signed with SigV2 and
// secret ("" : unsigned), and returns the HTTP status and the error code.
func raw(t *testing.T, srv *ec2endpoint.Server, params url.Values, secret string) (int, string) {
	t.Helper()
	status, body := post(t, srv, params, secret)
	if status == http.StatusOK {
		return status, ""
	}
	var e struct {
		Errors []struct {
			Code string `xml:"Code"`
		} `xml:"Errors>Error"`
	}
	if err := xml.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("error response not in the EC2 shape: %v\n%s", err, body)
	}
	return status, e.Errors[0].Code
}

// post sends params as a form POST, signed with SigV2 and secret ("":
// unsigned; a Timestamp already set is kept), and returns the HTTP
// status and body.
func post(t *testing.T, srv *ec2endpoint.Server, params url.Values, secret string) (int, []byte) {
	t.Helper()
	u, _ := url.Parse(srv.URL())
	if secret != "" {
		params.Set("AWSAccessKeyId", srv.AccessKey())
		params.Set("SignatureVersion", "2")
		params.Set("SignatureMethod", "HmacSHA256")
		if params.Get("Timestamp") == "" {
			params.Set("Timestamp", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		params.Set("Signature", ec2.SignV2(secret, ec2.StringToSignV2("POST", u.Host, u.Path, params)))
	}
	resp, err := http.Post(srv.URL(), "application/x-www-form-urlencoded", strings.NewReader(ec2.EncodeV2(params)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func action(name string, kv ...string) url.Values {
	v := url.Values{"Action": {name}, "Version": {"2016-11-15"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// newVolume creates an available volume.
func newVolume(t *testing.T, p *ec2.Provider, size int) string {
	t.Helper()
	v, err := p.CreateVolume(ctx(t), cloud.VolumeSpec{SizeGiB: size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastWait.Volume(ctx(t), p, v.ID, cloud.VolumeAvailable); err != nil {
		t.Fatal(err)
	}
	return v.ID
}

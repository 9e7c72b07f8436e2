package ec2_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/internal/cloud/wait"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// fastWaiter polls the in-memory endpoint quickly; the backoff itself is
// tested with the defaults in TestWaitBackoff.
var fastWaiter = wait.Waiter{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}

func newProvider(t *testing.T, srv *ec2endpoint.Server, sig string) *ec2.Provider {
	t.Helper()
	p, err := ec2.New(context.Background(), ec2.Config{
		Endpoint: srv.URL(), AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey(), Signature: sig,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConformance runs the provider conformance suite against the test
// endpoint in plain mode, in each dialect (aws, eucalyptus-4,
// eucalyptus-3), once per signature version.
func TestConformance(t *testing.T) {
	for _, d := range ec2endpoint.Dialects {
		for _, sig := range []string{ec2.SignatureV4, ec2.SignatureV2} {
			t.Run(string(d)+"/"+sig, func(t *testing.T) {
				srv := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: d})
				cloudtest.Run(t, func(t *testing.T) cloud.Provider { return newProvider(t, srv, sig) }, cloudtest.Options{Waiter: fastWaiter})
				other := map[string]string{ec2.SignatureV4: ec2.SignatureV2, ec2.SignatureV2: ec2.SignatureV4}[sig]
				if srv.Signatures(sig) == 0 || srv.Signatures(other) != 0 {
					t.Errorf("the endpoint verified %d %s and %d %s signatures: want only %s", srv.Signatures(sig), sig, srv.Signatures(other), other, sig)
				}
				t.Logf("%d requests signed with %s", srv.Signatures(sig), sig)
			})
		}
	}
}

// TestEucarcEndToEnd: a eucarc as Eucalyptus writes it (EUCA_KEY_DIR
// idiom, quoted keys) is all the provider needs, with either signature.
func TestEucarcEndToEnd(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{})
	dir := t.TempDir()
	rc := "EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)\n" +
		"export EC2_URL=" + srv.URL() + "\n" +
		"export EC2_CERT=${EUCA_KEY_DIR}/euca2-admin-cert.pem\n" +
		"export EC2_ACCESS_KEY='" + srv.AccessKey() + "'\n" +
		"export EC2_SECRET_KEY='" + srv.SecretKey() + "'\n"
	path := filepath.Join(dir, "eucarc")
	if err := os.WriteFile(path, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EC2_URL", "http://wrong.invalid:8773/services/compute")
	for _, sig := range []string{ec2.SignatureV4, ec2.SignatureV2} {
		p, err := ec2.New(context.Background(), ec2.Config{Eucarc: path, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		if eff := p.Effective(); eff.Endpoint != srv.URL() || eff.Credentials != "eucarc "+path {
			t.Errorf("%s: effective %s", sig, eff)
		}
		v, err := p.CreateVolume(context.Background(), cloud.VolumeSpec{SizeGiB: 1, Tags: cloud.Tags{"via": "eucarc"}})
		if err != nil || v.Tags["via"] != "eucarc" {
			t.Errorf("%s: CreateVolume through the eucarc: %+v, %v", sig, v, err)
		}
	}
}

// TestCallsCounted: Config.Calls hears every request the endpoint
// verified, with its operation's name, for either signature.
func TestCallsCounted(t *testing.T) {
	for _, sig := range []string{ec2.SignatureV4, ec2.SignatureV2} {
		srv := ec2endpoint.Start(t, ec2endpoint.Options{})
		var ops []string
		p, err := ec2.New(context.Background(), ec2.Config{
			Endpoint: srv.URL(), AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey(), Signature: sig,
			Calls: func(op string) { ops = append(ops, op) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.CreateVolume(context.Background(), cloud.VolumeSpec{SizeGiB: 1}); err != nil {
			t.Fatal(err)
		}
		if n := srv.Signatures(sig); len(ops) == 0 || len(ops) != n || !slices.Contains(ops, "CreateVolume") {
			t.Fatalf("%s: heard %q, the endpoint verified %d requests", sig, ops, n)
		}
	}
}

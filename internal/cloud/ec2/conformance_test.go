package ec2_test

import (
	"context"
	"testing"
	"time"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/cloudtest"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// fastWaiter polls the in-memory endpoint quickly; the backoff itself is
// tested with the defaults in TestWaitBackoff.
var fastWaiter = ec2.Waiter{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}

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
// endpoint in plain mode, once per signature version.
func TestConformance(t *testing.T) {
	for _, sig := range []string{ec2.SignatureV4, ec2.SignatureV2} {
		t.Run(sig, func(t *testing.T) {
			srv := ec2endpoint.Start(t, ec2endpoint.Options{})
			cloudtest.Run(t, func(t *testing.T) cloud.Provider { return newProvider(t, srv, sig) }, cloudtest.Options{Waiter: fastWaiter})
		})
	}
}

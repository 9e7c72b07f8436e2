package main

import (
	"context"
	"errors"
	"io"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
)

// ec2EndpointHelp is --endpoint's precedence, as ec2.New applies it.
const ec2EndpointHelp = "The endpoint used is " + ec2.EndpointPrecedence

// openEC2 opens the EC2 provider (Eucalyptus 3.x/4.x or any EC2 API):
// endpoint, keys and region from the flags, a eucarc, the euca2ools
// environment (EC2_URL, EC2_ACCESS_KEY, EC2_SECRET_KEY) or the AWS chain.
func openEC2(ctx context.Context, g *global, stderr io.Writer) (cloud.Provider, func(), error) {
	g.calls = new(callCounter)
	p, err := ec2.New(ctx, ec2.Config{Endpoint: g.endpoint, Region: g.region, Eucarc: g.eucarc, Signature: g.signature, AWSEndpoint: g.awsEndpoint,
		Calls: g.calls.count})
	if errors.Is(err, ec2.ErrNoCredentials) {
		err = errors.New("ec2: no credentials: set EC2_ACCESS_KEY and EC2_SECRET_KEY, give --eucarc FILE, or configure the AWS SDK's (AWS_ACCESS_KEY_ID…, ~/.aws/credentials)")
	}
	if err != nil {
		return nil, nil, err
	}
	// -v: the configuration in effect, and where the keys came from.
	eff := p.Effective()
	endpoint := eff.Endpoint
	if endpoint == "" {
		endpoint = "(aws)"
	}
	g.logger(stderr).Info("ec2 provider", "endpoint", endpoint, "endpoint_from", eff.EndpointSource, "region", eff.Region, "signature", eff.Signature,
		"credentials", eff.Credentials, "zone", eff.Zone)
	return p, func() {}, nil
}

package ec2endpoint_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/internal/cloud/ec2"
	"github.com/kscloud/kscloud/test/ec2endpoint"
)

// rootOf returns the root element's name and namespace.
func rootOf(t *testing.T, body []byte) xml.Name {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(body)))
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("no root element: %v\n%s", err, body)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name
		}
	}
}

// TestResponseShape: every action answers with EC2's root element,
// ACTIONResponse in the namespace of the request's API version, with the
// request ID as its first child (EC2 API reference, "Query API responses").
func TestResponseShape(t *testing.T) {
	for _, d := range ec2endpoint.Dialects {
		t.Run(string(d), func(t *testing.T) {
			srv := ec2endpoint.Start(t, ec2endpoint.Options{Dialect: d, Delays: &fast})
			p := provider(t, srv, ec2.SignatureV2, "")
			c := ctx(t)
			vol := newVolume(t, p, 1)
			img := ebsImage(t, p)
			inst, err := p.RunInstance(c, cloud.InstanceSpec{ImageID: img})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fastWait.Instance(c, p, inst.ID, cloud.InstanceRunning); err != nil {
				t.Fatal(err)
			}
			for _, req := range []url.Values{
				action("DescribeAvailabilityZones"),
				action("DescribeInstances"),
				action("DescribeInstanceAttribute", "InstanceId", inst.ID, "Attribute", "userData"),
				action("GetConsoleOutput", "InstanceId", inst.ID),
				action("DescribeVolumes"),
				action("DescribeSnapshots"),
				action("DescribeImages"),
				action("DescribeTags"),
				action("CreateTags", "ResourceId.1", vol, "Tag.1.Key", "k", "Tag.1.Value", "v"),
				action("CreateVolume", "AvailabilityZone", "PARTI00", "Size", "1"),
				action("CreateSnapshot", "VolumeId", vol),
				action("AttachVolume", "VolumeId", vol, "InstanceId", inst.ID, "Device", "/dev/sdf"),
				action("StopInstances", "InstanceId.1", inst.ID),
				action("TerminateInstances", "InstanceId.1", inst.ID),
				action("RunInstances", "ImageId", img, "MinCount", "1", "MaxCount", "1"),
				action("DeleteTags", "ResourceId.1", vol),
				{"Action": {"DescribeVolumes"}, "Version": {"2014-06-15"}},
			} {
				name := req.Get("Action")
				st, body := post(t, srv, req, srv.SecretKey())
				if st != 200 {
					t.Errorf("%s: HTTP %d\n%s", name, st, body)
					continue
				}
				want := xml.Name{Space: "http://ec2.amazonaws.com/doc/" + req.Get("Version") + "/", Local: name + "Response"}
				if got := rootOf(t, body); got != want {
					t.Errorf("%s: root element {%s}%s, want {%s}%s\n%s", name, got.Space, got.Local, want.Space, want.Local, body)
				}
				var head struct {
					RequestID string `xml:"requestId"`
				}
				if err := xml.Unmarshal(body, &head); err != nil || head.RequestID == "" {
					t.Errorf("%s: no requestId (%v)\n%s", name, err, body)
				}
			}
		})
	}
}

// TestManyListItems: requests with 10 or more list items (InstanceId.10
// sorts before InstanceId.2 as a "name=value" string, not as a name) are
// verified with both signature versions, and with SigV4's canonical query
// string (a GET, signed by the SDK's own v4 signer).
func TestManyListItems(t *testing.T) {
	srv := ec2endpoint.Start(t, ec2endpoint.Options{Delays: &fast})
	var ids []string
	for i := 1; i <= 12; i++ {
		ids = append(ids, fmt.Sprintf("i-%08X", i))
	}
	for _, sig := range []string{ec2.SignatureV2, ec2.SignatureV4} {
		_, err := provider(t, srv, sig, "").Client().DescribeInstances(ctx(t), &awsec2.DescribeInstancesInput{InstanceIds: ids})
		wantCode(t, sig+" DescribeInstances with 12 ids", err, "InvalidInstanceID.NotFound")
	}
	q := url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}
	for i, id := range ids {
		q.Set(fmt.Sprintf("InstanceId.%d", i+1), id)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"?"+q.Encode(), nil)
	empty := sha256.Sum256(nil)
	payload := hex.EncodeToString(empty[:])
	creds := aws.Credentials{AccessKeyID: srv.AccessKey(), SecretAccessKey: srv.SecretKey()}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payload, "ec2", "eucalyptus", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "InvalidInstanceID.NotFound") {
		t.Errorf("SigV4 GET with 12 ids in the query: HTTP %d\n%s", resp.StatusCode, body)
	}
}

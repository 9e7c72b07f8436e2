package hookproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// The context.sh of a 5.12 deploy travels after the domain (and an empty
// vm.xml); a request with both vm.xml and context.sh, or a length out of
// bounds, is refused before anything is allocated.
func TestReadOneDeployContext(t *testing.T) {
	hdr := func(h OneDeployRequest) []byte { b, _ := json.Marshal(h); return b }
	dom, sh := []byte("<domain/>"), []byte("USER_DATA='x'\n")
	var grown int64
	req, err := ReadOneDeploy(hdr(OneDeployRequest{Op: OpOneDeploy, DomainLen: len(dom), ContextLen: len(sh)}),
		bytes.NewReader(append(append([]byte{}, dom...), sh...)), func(n int64) { grown = n })
	if err != nil || !bytes.Equal(req.DomainXML, dom) || req.VMXML != nil || !bytes.Equal(req.ContextSh, sh) || grown != int64(len(dom)+len(sh)) {
		t.Fatalf("%+v %v (grown %d)", req, err, grown)
	}
	for _, h := range []OneDeployRequest{
		{DomainLen: 9, VMLen: 3, ContextLen: 3},
		{DomainLen: 9, ContextLen: -1},
		{DomainLen: 9, ContextLen: MaxOneVM + 1},
	} {
		if _, err := ReadOneDeploy(hdr(h), bytes.NewReader(make([]byte, 64)), nil); !errors.Is(err, ErrPayload) {
			t.Errorf("%+v: %v", h, err)
		}
	}
}

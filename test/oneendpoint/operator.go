package oneendpoint

import (
	"fmt"
	"net/http"

	"github.com/kolo/xmlrpc"
)

// Operator does over the wire what an OpenNebula operator does with the
// CLI (oneimage create, oneimage update --append): kolo/xmlrpc's own
// client (not kscloud's), templates in oned's text syntax as the CLI
// sends them. Tests use it to set up what kscloud then finds, such as an
// installer catalog.
type Operator struct {
	c       *xmlrpc.Client
	session string
}

// Operator returns a client of the server as its user.
func (s *Server) Operator() (*Operator, error) {
	c, err := xmlrpc.NewClient(s.URL(), http.DefaultTransport)
	if err != nil {
		return nil, err
	}
	return &Operator{c: c, session: s.Session()}, nil
}

// Call runs method with the session first and returns the success value
// (oned's [true, value, …]), or oned's message as the error.
func (o *Operator) Call(method string, args ...any) (any, error) {
	var out []any
	if err := o.c.Call(method, append([]any{o.session}, args...), &out); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("%s: reply %v", method, out)
	}
	if ok, _ := out[0].(bool); !ok {
		return nil, fmt.Errorf("%s: %v", method, out[1])
	}
	return out[1], nil
}

// CreateImage is oneimage create: template (text syntax) into datastore ds.
func (o *Operator) CreateImage(template string, ds int) (int, error) {
	v, err := o.Call("one.image.allocate", template, ds)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("one.image.allocate returned %T", v)
	}
	return int(n), nil
}

// UpdateImage is oneimage update --append (merge): attributes in text syntax.
func (o *Operator) UpdateImage(id int, template string) error {
	_, err := o.Call("one.image.update", id, template, 1)
	return err
}

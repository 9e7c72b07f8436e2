package opennebula

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// node is a template element: a single attribute (Text) or a vector
// (Nodes), as oned renders TEMPLATE and USER_TEMPLATE.
type node struct {
	XMLName xml.Name
	Text    string `xml:",chardata"`
	Nodes   []node `xml:",any"`
}

func (n *node) name() string { return n.XMLName.Local }

// get returns the first child called name's text.
func (n *node) get(name string) string {
	for i := range n.Nodes {
		if n.Nodes[i].name() == name {
			return strings.TrimSpace(n.Nodes[i].Text)
		}
	}
	return ""
}

func (n *node) has(name string) bool {
	for i := range n.Nodes {
		if n.Nodes[i].name() == name {
			return true
		}
	}
	return false
}

// all returns the children called name.
func (n *node) all(name string) []*node {
	var out []*node
	for i := range n.Nodes {
		if n.Nodes[i].name() == name {
			out = append(out, &n.Nodes[i])
		}
	}
	return out
}

func (n *node) first(name string) *node {
	if a := n.all(name); len(a) > 0 {
		return a[0]
	}
	return nil
}

type vmInfo struct {
	ID       int    `xml:"ID"`
	Name     string `xml:"NAME"`
	State    int    `xml:"STATE"`
	LCM      int    `xml:"LCM_STATE"`
	STime    int64  `xml:"STIME"`
	DeployID string `xml:"DEPLOY_ID"`
	// Monitoring is the VM's last monitoring record (probe attributes:
	// nodehook.go).
	Monitoring node `xml:"MONITORING"`
	Template   node `xml:"TEMPLATE"`
	User       node `xml:"USER_TEMPLATE"`
	History    []struct {
		Seq      int    `xml:"SEQ"`
		Hostname string `xml:"HOSTNAME"`
	} `xml:"HISTORY_RECORDS>HISTORY"`
}

type vmPool struct {
	VMs []vmInfo `xml:"VM"`
}

type imageInfo struct {
	ID         int    `xml:"ID"`
	Name       string `xml:"NAME"`
	Owner      string `xml:"UNAME"`
	Type       int    `xml:"TYPE"`
	Persistent int    `xml:"PERSISTENT"`
	RegTime    int64  `xml:"REGTIME"`
	Size       int    `xml:"SIZE"`
	State      int    `xml:"STATE"`
	Datastore  int    `xml:"DATASTORE_ID"`
	VMs        []int  `xml:"VMS>ID"`
	Template   node   `xml:"TEMPLATE"`
}

type imagePool struct {
	Images []imageInfo `xml:"IMAGE"`
}

type dsPool struct {
	DS []struct {
		ID   int    `xml:"ID"`
		Name string `xml:"NAME"`
		Type int    `xml:"TYPE"`
	} `xml:"DATASTORE"`
}

type vnPool struct {
	VNets []struct {
		ID   int    `xml:"ID"`
		Name string `xml:"NAME"`
	} `xml:"VNET"`
}

func decode(what, s string, v any) error {
	if err := xml.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("opennebula: %s: bad XML from oned: %w", what, err)
	}
	if id, ok := negativeID(v); ok {
		return fmt.Errorf("opennebula: %s: bad XML from oned: ID %d (oned's ids are never negative)", what, id)
	}
	return nil
}

// negativeID finds an object id below 0 in a decoded answer: kscloud would
// name it vm--5 or img--5, which no later command accepts.
func negativeID(v any) (int, bool) {
	var ids []int
	switch v := v.(type) {
	case *vmInfo:
		ids = append(ids, v.ID)
	case *vmPool:
		for _, vm := range v.VMs {
			ids = append(ids, vm.ID)
		}
	case *imageInfo:
		ids = append(append(ids, v.ID, v.Datastore), v.VMs...)
	case *imagePool:
		for _, im := range v.Images {
			ids = append(append(ids, im.ID, im.Datastore), im.VMs...)
		}
	case *dsPool:
		for _, d := range v.DS {
			ids = append(ids, d.ID)
		}
	case *vnPool:
		for _, n := range v.VNets {
			ids = append(ids, n.ID)
		}
	}
	for _, id := range ids {
		if id < 0 {
			return id, true
		}
	}
	return 0, false
}

// tmpl builds a template in OpenNebula's XML syntax (no quoting pitfalls).
// One value oned cannot hold: one containing "]]>". libxml2 joins the
// split CDATA sections back into "]]>", but oned writes every value back
// unescaped inside CDATA (one_util::escape_xml), so the object's XML —
// every later *.info, and oned's own copy in its database — would be
// malformed; client.call refuses a template holding such a value.
type tmpl struct {
	b   strings.Builder
	bad string // the first attribute whose value oned cannot hold
}

func cdata(s string) string {
	return "<![CDATA[" + strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>") + "]]>"
}

func (t *tmpl) single(name, value string) *tmpl {
	if t.bad == "" && strings.Contains(value, "]]>") {
		t.bad = name
	}
	t.b.WriteString("<" + name + ">" + cdata(value) + "</" + name + ">")
	return t
}

// vector adds NAME with sub-attributes given as name, value pairs
// (empty values are left out).
func (t *tmpl) vector(name string, kv ...string) *tmpl {
	t.b.WriteString("<" + name + ">")
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			t.single(kv[i], kv[i+1])
		}
	}
	t.b.WriteString("</" + name + ">")
	return t
}

// node re-sends a decoded element as it is.
func (t *tmpl) node(n *node) *tmpl {
	if len(n.Nodes) == 0 {
		return t.single(n.name(), n.Text)
	}
	t.b.WriteString("<" + n.name() + ">")
	for i := range n.Nodes {
		t.node(&n.Nodes[i])
	}
	t.b.WriteString("</" + n.name() + ">")
	return t
}

func (t *tmpl) String() string { return "<TEMPLATE>" + t.b.String() + "</TEMPLATE>" }

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1
	}
	return n
}

package oneendpoint

// Node runs deployments on a real libvirtd as OpenNebula's KVM driver
// does. (Not implemented yet: plain mode only.)
type Node struct {
	Hostname string
}

func (n *Node) deploy(s *Server, v *vm) (string, error) { return "", nil }
func (n *Node) destroy(v *vm)                          {}

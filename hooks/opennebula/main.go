// Command nchookd-one-deploy is the OpenNebula deploy wrapper's Go half,
// installed as /usr/lib/nchookd/nchookd-one-deploy on the hosts. OpenNebula's
// KVM driver runs remotes/vmm/kvm/deploy DEPLOYMENT_FILE HOST with the
// domain XML on standard input; nchookd's deploy script (hooks/opennebula/deploy,
// put there in place of OpenNebula's, which moves to deploy.one) execs
//
//	nchookd-one-deploy ORIGINAL DEPLOYMENT_FILE HOST
//
// which reads the domain XML and vm.xml beside the deployment file, asks
// nchookd over its socket for the rewrite (or does it itself when the
// daemon is down), and execs ORIGINAL with the result on its standard
// input: OpenNebula's own script does the deploy, and its output and
// exit status are what the driver sees. Static and pure Go.
package main

import (
	"fmt"
	"os"

	"github.com/kscloud/kscloud/internal/hook"
)

func main() {
	d, err := hook.PrepareOneDeploy(os.Args[1:], os.Stdin, os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nchookd: %v\n", err)
		os.Exit(2)
	}
	err = hook.ExecOneDeploy(d)
	fmt.Fprintf(os.Stderr, "nchookd: %v\n", err)
	os.Exit(127)
}

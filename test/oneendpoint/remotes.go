package oneendpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// StockDeploy is the deploy action of OpenNebula's KVM driver as a node
// runs it, relative to the remotes directory (/var/tmp/one on a host).
const StockDeploy = "vmm/kvm/deploy"

// WriteRemotes writes into dir the part of a host's remotes tree that the
// deploy action uses: vmm/kvm/deploy, etc/vmm/kvm/kvmrc (LIBVIRT_URI) and
// scripts_common.sh. The deploy script keeps the contract of
// src/vmm_mad/remotes/kvm/deploy (written here from its behaviour, not
// copied): it sources kvmrc and scripts_common.sh relative to itself,
// writes its standard input to the deployment file named by $1, creates
// the transient domain with `virsh create`, and prints the deploy id —
// the domain's name for version < 6.0, its UUID from 6.0 — or fails with
// an error_message line. Run it (or a wrapper installed in its place) as
// Node.DeployScript: the endpoint then deploys exactly as one_vmm_exec
// does on a host.
func WriteRemotes(dir, libvirtURI, version string) error {
	byName := strings.HasPrefix(version, "5.")
	files := map[string]string{
		"etc/vmm/kvm/kvmrc": fmt.Sprintf("export LIBVIRT_URI=%s\nexport QEMU_PROTOCOL=qemu+ssh\n", shellQuote(libvirtURI)),
		"scripts_common.sh": `# error_message as OpenNebula's scripts_common.sh prints it
error_message()
{
    (
        echo "ERROR MESSAGE --8<------"
        echo "$1"
        echo "ERROR MESSAGE ------>8--"
    ) 1>&2
}
`,
		StockDeploy: `#!/bin/bash
# Stand-in for OpenNebula's remotes/vmm/kvm/deploy (same contract).
source $(dirname $0)/../../etc/vmm/kvm/kvmrc
source $(dirname $0)/../../scripts_common.sh

DEP_FILE=$1
mkdir -p "$(dirname "$DEP_FILE")"
cat > "$DEP_FILE"

if ! virsh --connect "$LIBVIRT_URI" create "$DEP_FILE" >/dev/null; then
    error_message "Could not create domain from $DEP_FILE"
    exit 255
fi

DOMAIN_ID=$(xmllint --xpath '/domain/name/text()' "$DEP_FILE")
` + map[bool]string{
			true:  "echo $DOMAIN_ID\n",
			false: "virsh --connect \"$LIBVIRT_URI\" dominfo \"$DOMAIN_ID\" | awk '/UUID:/ {print $2}'\n",
		}[byName],
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if name == StockDeploy {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			return err
		}
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

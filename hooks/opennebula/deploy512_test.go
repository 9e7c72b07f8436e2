package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kscloud/kscloud/internal/config"
	"github.com/kscloud/kscloud/internal/testenv"
)

// stubOriginal512 plays OpenNebula 5.12's deploy
// (one@release-5.12.0:src/vmm_mad/remotes/kvm/deploy): write stdin to the
// deployment file, then print the domain name virsh create reports (the
// DEPLOY_ID is one-ID on 5.12), here read from the file's <name>.
const stubOriginal512 = `#!/bin/sh
DEP_FILE=$1
mkdir -p "$(dirname "$DEP_FILE")"
cat > "$DEP_FILE"
sed -n 's:.*<name>\(one-[0-9]*\)</name>.*:\1:p' "$DEP_FILE" | head -n 1
`

const userData512 = "#cloud-config\n# bootparams=inst.ks=http://10.0.0.1/ks.cfg inst.text ip=dhcp\n# kscloud.mode=in-place\n# kscloud.installer=fedora-40\n"

// newNode512 is newNode on an OpenNebula 5.12 host: no vm.xml, OpenNebula
// 5.12's deploy script, the CONTEXT CD-ROM at disk.1 (made as OpenNebula
// makes it, holding contextSh), and the 5.12 deployment file with its
// paths in the node's datastores.
func newNode512(t *testing.T, contextSh []byte, cfgText string) (*node, []byte) {
	t.Helper()
	n := newNode(t, hookBin, nil, cfgText)
	os.WriteFile(filepath.Join(n.remotes, "deploy.one"), []byte(stubOriginal512), 0o755)
	if contextSh != nil {
		testenv.OneContextISO(t, filepath.Join(n.vmDir, "disk.1"), contextSh, map[string][]byte{"ks-42.cfg": []byte("text\n")})
	}
	in := bytes.ReplaceAll(testdata(t, "deployment-5.12.xml"), []byte("/var/lib/one//datastores/0/42/"), []byte(n.vmDir+"/"))
	return n, in
}

func context512(userData string) []byte {
	return testenv.OneContextSh(map[string]string{
		"DISK_ID": "1", "NETWORK": "YES", "TARGET": "hda", "SSH_PUBLIC_KEY": "ssh-ed25519 AAAA alice's key",
		"USER_DATA": base64.StdEncoding.EncodeToString([]byte(userData)), "USER_DATA_ENCODING": "base64",
	})
}

// OpenNebula 5.12, the daemon down: the wrapper reads the CONTEXT
// CD-ROM, rewrites, and OpenNebula's 5.12 script deploys the result and
// prints the domain name, byte for byte.
func TestWrapper512FallbackRewrites(t *testing.T) {
	n, in := newNode512(t, context512(userData512), catalog)
	r := n.run(t, in)
	if r.code != 0 || r.stdout != "one-42\n" || r.stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, must := range []string{"<on_reboot>destroy</on_reboot>", "<kernel>/var/lib/nchookd/installers/fedora-40/vmlinuz</kernel>",
		"inst.ks=http://10.0.0.1/ks.cfg inst.text ip=dhcp console=ttyS0</cmdline>",
		"<source path='" + n.vmDir + "/console.log' append='on'/>", "<source file='" + n.vmDir + "/disk.1'/>"} {
		if !bytes.Contains(r.deployed, []byte(must)) {
			t.Fatalf("deployed domain lacks %s:\n%s", must, r.deployed)
		}
	}
}

// OpenNebula 5.12 with the daemon up: the wrapper sends the context.sh it
// read and the daemon's configuration decides and records the install.
func TestWrapper512AsksDaemon(t *testing.T) {
	n, in := newNode512(t, context512(userData512), "")
	cfg := config.Default()
	cfg.Hook.InstancesRoot = []string{filepath.Dir(filepath.Dir(filepath.Dir(n.vmDir)))}
	cfg.Installer["fedora-40"] = config.Installer{Kernel: "/daemon/vmlinuz", Initrd: "/daemon/initrd.img"}
	sock, store := serveDaemon(t, cfg)
	r := n.run(t, in, "NCHOOKD_SOCKET="+sock)
	if r.code != 0 || r.stdout != "one-42\n" || r.stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if !bytes.Contains(r.deployed, []byte("<kernel>/daemon/vmlinuz</kernel>")) {
		t.Fatalf("not the daemon's rewrite:\n%s", r.deployed)
	}
	if st, ok := store.Get("one-42"); !ok || st.DomainFile != n.dfile || st.Mode != "in-place" {
		t.Fatalf("daemon did not record the install: %+v", st)
	}
}

// OpenNebula 5.12, a bad or hostile CONTEXT CD-ROM: the VM deploys as
// OpenNebula wrote it, with one line naming the cause.
func TestWrapper512DeploysUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sh    []byte
		setup func(n *node, in []byte) []byte
		want  string
	}{
		{"no directives", testenv.OneContextSh(map[string]string{"NETWORK": "YES"}), nil, "no kscloud directives in CONTEXT/USER_DATA"},
		{"unterminated quote", []byte("USER_DATA='bootparams=x\n"), nil, "unterminated quote"},
		{"huge context.sh", testenv.OneContextSh(map[string]string{"USER_DATA": strings.Repeat("x", 1<<20)}), nil, "larger than 1048576 bytes"},
		{"ISO a symlink", context512(userData512), func(n *node, in []byte) []byte {
			iso := filepath.Join(n.vmDir, "disk.1")
			os.Rename(iso, iso+".real")
			os.Symlink(iso+".real", iso)
			return in
		}, "a symlink"},
		{"ISO outside the root", context512(userData512), func(n *node, in []byte) []byte {
			os.WriteFile(n.config(), []byte("[hook]\ninstances_root = [\"/var/lib/one/datastores\"]\n"+catalog), 0o644)
			return in
		}, "outside the configured instances root"},
		{"no CONTEXT CD-ROM", nil, func(n *node, in []byte) []byte {
			return bytes.Replace(in, []byte("device='cdrom'"), []byte("device='disk'"), 1)
		}, "no CONTEXT CD-ROM"},
		{"bad config", context512(userData512), func(n *node, in []byte) []byte {
			os.WriteFile(n.config(), []byte("bogus = 1\n"), 0o644)
			return in
		}, "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, in := newNode512(t, tc.sh, catalog)
			if tc.setup != nil {
				in = tc.setup(n, in)
			}
			r := n.run(t, in)
			if r.code != 0 || r.stdout != "one-42\n" {
				t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			if !bytes.Equal(r.deployed, in) {
				t.Fatalf("domain changed:\n%s", r.deployed)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "nchookd: ") || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "unchanged") {
				t.Fatalf("stderr %q: want one line with %q", r.stderr, tc.want)
			}
		})
	}
}

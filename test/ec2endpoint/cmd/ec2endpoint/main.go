// Command ec2endpoint runs the EC2 test endpoint by hand (a test fixture,
// not a product): plain mode in memory, or node mode on libvirtd with
// -node-dir. It prints eucarc lines for the endpoint on stdout and serves
// until interrupted.
//
//	go run ./test/ec2endpoint/cmd/ec2endpoint -eucarc /tmp/ec2/eucarc
//	go run ./test/ec2endpoint/cmd/ec2endpoint -node-dir /tmp/node -hooks /etc/eucalyptus/nc-hooks \
//	    -kernel /boot/vmlinuz-… -ramdisk /tmp/initrd.img
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kscloud/kscloud/test/ec2endpoint"
)

type paths []string

func (p *paths) String() string     { return strings.Join(*p, ",") }
func (p *paths) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ec2endpoint:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		addr      = flag.String("addr", "127.0.0.1:8773", "listen address")
		access    = flag.String("access-key", ec2endpoint.TestAccessKey, "access key ID the endpoint accepts")
		secret    = flag.String("secret-key", ec2endpoint.TestSecretKey, "its secret key")
		dialect   = flag.String("dialect", "eucalyptus-4", "cloud to play where clouds differ: aws, eucalyptus-4 or eucalyptus-3")
		lenient   = flag.Bool("lenient", false, "ignore unknown parameters whatever the dialect")
		replay    = flag.Bool("allow-replay", false, "accept a signature seen in the last 15 minutes (Eucalyptus dialects)")
		eucarc    = flag.String("eucarc", "", "also write a eucarc for the endpoint to this file")
		nodeDir   = flag.String("node-dir", "", "node mode: play a Eucalyptus NC on libvirtd with instances, volumes and snapshots under this directory")
		uri       = flag.String("libvirt", "qemu:///system", "node mode: libvirt URI")
		hooks     = flag.String("hooks", "", "node mode: nc-hooks directory to run at pre-boot and pre-clean")
		ncVersion = flag.String("nc-version", "3.4", "node mode: NC version whose files are written (3.1 or 3.4)")
		memory    = flag.Int("memory", 256, "node mode: guest memory in MiB")
		verbose   = flag.Bool("v", false, "log every request")
		kernels   paths
		ramdisks  paths
	)
	flag.Var(&kernels, "kernel", "register this kernel file as an EKI (repeatable)")
	flag.Var(&ramdisks, "ramdisk", "register this initrd file as an ERI (repeatable)")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	d, err := ec2endpoint.ParseDialect(*dialect)
	if err != nil {
		return fmt.Errorf("-dialect: %w", err)
	}
	opts := ec2endpoint.Options{Addr: *addr, AccessKey: *access, SecretKey: *secret, Dialect: d, Lenient: *lenient, AllowReplay: *replay, Log: log}
	if *nodeDir != "" {
		opts.Node = &ec2endpoint.NodeOptions{LibvirtURI: *uri, Dir: *nodeDir, HooksDir: *hooks, NCVersion: *ncVersion, MemoryMB: *memory}
	}
	srv := ec2endpoint.New(opts)
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()

	var lines []string
	lines = append(lines,
		"EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)",
		"export EC2_URL="+srv.URL(),
		"export EC2_ACCESS_KEY='"+srv.AccessKey()+"'",
		"export EC2_SECRET_KEY='"+srv.SecretKey()+"'")
	for _, k := range kernels {
		id, err := srv.AddKernel(k)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("# kernel %s = %s", id, k))
	}
	for _, r := range ramdisks {
		id, err := srv.AddRamdisk(r)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("# ramdisk %s = %s", id, r))
	}
	text := strings.Join(lines, "\n") + "\n"
	fmt.Print(text)
	if *eucarc != "" {
		if err := os.MkdirAll(filepath.Dir(*eucarc), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(*eucarc, []byte(text), 0o600); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("serving", "url", srv.URL(), "mode", map[bool]string{true: "node", false: "plain"}[opts.Node != nil])
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

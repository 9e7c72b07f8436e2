// Command oneendpoint runs the OpenNebula test endpoint by hand (a test
// fixture, not a product): an oned look-alike on XML-RPC, in memory with
// image and VM files under -dir. It prints the ONE_XMLRPC and one_auth
// lines for it and serves until interrupted.
//
//	go run ./test/oneendpoint/cmd/oneendpoint -addr 127.0.0.1:2633 -user kscloud -password secret -real
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kscloud/kscloud/test/oneendpoint"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oneendpoint:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		addr     = flag.String("addr", "127.0.0.1:2633", "listen address")
		user     = flag.String("user", "kscloud", "user name the endpoint accepts")
		password = flag.String("password", "kscloud-pw", "its password")
		version  = flag.String("version", "7.0.0", "OpenNebula version to play (one.system.version; 5.12 has no updateconf merge mode)")
		dir      = flag.String("dir", "", "directory for datastores and VM files (default: a temporary one)")
		real     = flag.Bool("real", false, "oned's default delays (scheduler 10 s, POWEROFF ~25 s after a guest halt) instead of the test ones")
		install  = flag.Duration("install", 0, "play an installer: a VM booting a kernel powers itself off after this long")
	)
	flag.Parse()
	opts := oneendpoint.Options{}
	if *real {
		opts = oneendpoint.Real()
	}
	opts.User, opts.Password, opts.Version, opts.Dir, opts.Install = *user, *password, *version, *dir, *install
	s, err := oneendpoint.New(opts)
	if err != nil {
		return err
	}
	if err := s.Listen(*addr); err != nil {
		return err
	}
	fmt.Printf("export ONE_XMLRPC=%s\n# one_auth: %s\n# guest power-off → POWEROFF after %s\n", s.URL(), s.Session(), s.PowerOffDelay())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return s.Close()
}

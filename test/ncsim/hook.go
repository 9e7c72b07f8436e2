package ncsim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DispatcherSource is the nc-hooks dispatcher's C source, relative to the
// module's root (`make install` builds it the same way).
const DispatcherSource = "hooks/eucalyptus/dispatch/nc-hook.c"

// BuildDispatcher builds the static nc-hooks dispatcher into dst (what
// `make install` puts into /etc/eucalyptus/nc-hooks/nchookd), handing
// euca-nc-pre-boot and euca-nc-pre-clean to the Go hook at goHook (an
// absolute path, compiled in as make install compiles in
// /usr/lib/nchookd/nchookd-euca-hook).
func BuildDispatcher(goHook, dst string) error {
	if !filepath.IsAbs(goHook) || strings.ContainsAny(goHook, "\"\\\n") {
		return fmt.Errorf("dispatcher: hook path %q: want an absolute path without quotes", goHook)
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return fmt.Errorf("dispatcher: module root not found (go env GOMOD: %v)", err)
	}
	src := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), DispatcherSource)
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	out, err := exec.Command(cc, "-static", "-s", "-O2", "-Wall", "-Wextra", "-Werror", `-DNCHOOKD_HOOK="`+goHook+`"`, "-o", dst, src).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dispatcher: %s: %v\n%s", cc, err, out)
	}
	return nil
}

package opennebula

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kscloud/kscloud/internal/cloud"
	"github.com/kscloud/kscloud/test/oneendpoint"
)

// Replies as xmlrpc-c writes them (CRLF, <i4>, <i8>, <boolean>).
const (
	okReply    = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n<value><boolean>1</boolean></value>\r\n<value><string>&lt;VM&gt;&lt;ID&gt;7&lt;/ID&gt;&lt;/VM&gt;</string></value>\r\n<value><i4>0</i4></value>\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
	failReply  = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n<value><boolean>0</boolean></value>\r\n<value><string>[one.vm.info] Error getting virtual machine [7].</string></value>\r\n<value><i4>1024</i4></value>\r\n<value><i4>7</i4></value>\r\n<value><i8>0</i8></value>\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
	faultReply = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<fault>\r\n<value><struct>\r\n<member><name>faultCode</name>\r\n<value><i4>-501</i4></value></member>\r\n<member><name>faultString</name>\r\n<value><string>Parameter that is supposed to be integer is not</string></value></member>\r\n</struct></value>\r\n</fault>\r\n</methodResponse>\r\n"
)

func replying(t *testing.T, body string, status int, check func(r *http.Request, call string)) *client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if check != nil {
			check(r, string(b))
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &client{url: srv.URL + "/RPC2", session: "u:p", user: "u", http: srv.Client()}
}

func TestClientReplies(t *testing.T) {
	ctx := context.Background()
	c := replying(t, okReply, 200, func(r *http.Request, call string) {
		if r.Header.Get("Content-Type") != "text/xml" || !strings.Contains(call, "<methodName>one.vm.info</methodName>") ||
			!strings.Contains(call, "<string>u:p</string>") || !strings.Contains(call, "<int>7</int>") {
			t.Errorf("request: %s %q", r.Header.Get("Content-Type"), call)
		}
	})
	if s, err := c.callString(ctx, "one.vm.info", 7); err != nil || s != "<VM><ID>7</ID></VM>" {
		t.Errorf("success: %q, %v", s, err)
	}
	_, err := replying(t, failReply, 200, nil).callString(ctx, "one.vm.info", 7)
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != CodeNoExists || !errors.Is(err, cloud.ErrNotFound) || err.Error() != "[one.vm.info] Error getting virtual machine [7]." {
		t.Errorf("failure: %v", err)
	}
	_, err = replying(t, faultReply, 200, nil).callString(ctx, "one.vm.info", "7")
	if !errors.As(err, &oe) || oe.Code != -501 || !strings.Contains(err.Error(), "supposed to be integer") {
		t.Errorf("fault: %v", err)
	}
	auth := strings.Replace(strings.Replace(failReply, "1024", "256", 1), "Error getting virtual machine [7].", "User couldn't be authenticated, aborting call.", 1)
	_, err = replying(t, auth, 200, nil).callString(ctx, "one.vm.info", 7)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), `user "u"`) || strings.Contains(err.Error(), "\n") {
		t.Errorf("authentication: %v", err)
	}
	if _, err := replying(t, "oops", 500, nil).callString(ctx, "one.vm.info", 7); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("HTTP 500: %v", err)
	}
	if _, err := replying(t, okReply, 200, nil).callInt(ctx, "one.vm.info", 7); err == nil || !strings.Contains(err.Error(), "want an id") {
		t.Errorf("string where an id was due: %v", err)
	}
	// The request carries the context.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	sc := &client{url: slow.URL, session: "u:p", http: slow.Client()}
	if _, err := sc.call(cctx, "one.system.version"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled call: %v", err)
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("ONE_XMLRPC", "")
	t.Setenv("ONE_AUTH", "")
	if _, _, _, _, err := resolve(Config{}); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("no auth anywhere: %v", err)
	}
	os.MkdirAll(filepath.Join(home, ".one"), 0o700)
	os.WriteFile(filepath.Join(home, ".one", "one_auth"), []byte("alice:secret\nignored\n"), 0o600)
	os.WriteFile(filepath.Join(home, ".one", "one_endpoint"), []byte("http://front:2633/RPC2\n"), 0o600)
	ep, from, sess, _, err := resolve(Config{})
	if err != nil || ep != "http://front:2633/RPC2" || !strings.HasSuffix(from, "one_endpoint") || sess != "alice:secret" {
		t.Errorf("~/.one: %s %s %s %v", ep, from, sess, err)
	}
	f := filepath.Join(t.TempDir(), "auth")
	os.WriteFile(f, []byte("bob:pw\n"), 0o600)
	t.Setenv("ONE_XMLRPC", "http://env:2633/RPC2")
	t.Setenv("ONE_AUTH", f)
	ep, from, sess, _, err = resolve(Config{})
	if err != nil || ep != "http://env:2633/RPC2" || from != "ONE_XMLRPC" || sess != "bob:pw" {
		t.Errorf("environment: %s %s %s %v", ep, from, sess, err)
	}
	ep, _, _, _, err = resolve(Config{Endpoint: "http://flag/RPC2"})
	if err != nil || ep != "http://flag/RPC2" {
		t.Errorf("flag: %s %v", ep, err)
	}
	os.WriteFile(f, []byte("nopassword\n"), 0o600)
	if _, _, _, _, err := resolve(Config{}); err == nil || !strings.Contains(err.Error(), "want user:password") {
		t.Errorf("bad auth file: %v", err)
	}
	if _, _, _, _, err := resolve(Config{Endpoint: "front:2633", Session: "a:b"}); err == nil || !strings.Contains(err.Error(), "http://") {
		t.Errorf("bad endpoint: %v", err)
	}
}

// TestTemplateValues: values a user gives (names, KERNEL_CMD, provenance)
// travel as XML: quotes, brackets, newlines, backslashes, '<' and '&' stay
// inside their attribute and add none; a value with "]]>" (which oned can
// neither parse as one attribute nor write back) is refused before any
// call.
func TestTemplateValues(t *testing.T) {
	nasty := "a\" ]\nB=[C=1]\\ <X>&amp; ]]"
	tp := (&tmpl{}).single("NAME", nasty).vector("OS", "KERNEL_CMD", nasty, "ROOT", "vda")
	parsed, err := oneendpoint.ParseTemplate(tp.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Attrs) != 2 || parsed.Get("NAME") != nasty || parsed.Vector("OS").Sub("KERNEL_CMD") != nasty ||
		parsed.Vector("OS").Sub("ROOT") != "vda" || len(parsed.Vector("OS").Vec) != 2 {
		t.Errorf("template %s parsed as %+v", tp.String(), parsed)
	}
	sent := false
	c := replying(t, okReply, 200, func(*http.Request, string) { sent = true })
	for _, tp := range []*tmpl{(&tmpl{}).single("NAME", "x]]>y"), (&tmpl{}).vector("OS", "KERNEL_CMD", "ks=http://h/]]>")} {
		_, err := c.callInt(context.Background(), "one.vm.allocate", tp, false)
		if err == nil || !strings.Contains(err.Error(), "]]>") || sent {
			t.Errorf("template %s: %v (sent: %v), want a refusal before the call", tp.String(), err, sent)
		}
	}
}

// TestInstanceStateLCM: LCM states of a running VM are running, those of
// a powered-off one stopped, failures flagged — including the states
// 6.x/7.0 added (include/VirtualMachine.h: HOTPLUG_RESIZE 66 … RESTORE 71).
func TestInstanceStateLCM(t *testing.T) {
	for lcm, want := range map[int]string{3: cloud.InstanceRunning, 66: cloud.InstanceRunning, 69: cloud.InstanceRunning,
		70: cloud.InstanceStopped, 67: cloud.InstanceStopped, 68: cloud.InstanceStopped, 71: cloud.InstanceStopped,
		18: cloud.InstanceStopping, 1: cloud.InstancePending, 11: cloud.InstanceShuttingDown} {
		if got, failed := instanceState(stActive, lcm); got != want || failed {
			t.Errorf("ACTIVE/%d: %s (failed %v), want %s", lcm, got, failed, want)
		}
	}
	if got, failed := instanceState(stActive, 36); got != cloud.InstanceStopped || !failed {
		t.Errorf("BOOT_FAILURE: %s, failed %v", got, failed)
	}
}

// TestSanitizeName: names keep to what PoolObjectSQL::name_is_valid takes
// (none of its characters, \v included; at most 128 bytes) and stay valid
// UTF-8 for the XML template.
func TestSanitizeName(t *testing.T) {
	long := sanitizeName("a" + strings.Repeat("é", 100))
	if len(long) > 128 || !utf8.ValidString(long) {
		t.Errorf("long name: %d bytes, valid UTF-8 %v", len(long), utf8.ValidString(long))
	}
	if got := sanitizeName("a\vb\x01c:d\xffe"); got != "a-b-c-d-e" {
		t.Errorf("sanitizeName: %q", got)
	}
}

// TestHostileReplies: a reply over the size bound, or an id oned never
// gives (negative), is one error naming what was wrong, not a mangled id.
func TestHostileReplies(t *testing.T) {
	ctx := context.Background()
	negID := strings.Replace(okReply, "<value><string>&lt;VM&gt;&lt;ID&gt;7&lt;/ID&gt;&lt;/VM&gt;</string></value>", "<value><i4>-5</i4></value>", 1)
	if n, err := replying(t, negID, 200, nil).callInt(ctx, "one.vm.allocate", "x"); err == nil || !strings.Contains(err.Error(), "returned id -5") {
		t.Errorf("negative id from allocate: %d, %v", n, err)
	}
	var pool imagePool
	if err := decode("image pool", "<IMAGE_POOL><IMAGE><ID>3</ID></IMAGE><IMAGE><ID>-5</ID></IMAGE></IMAGE_POOL>", &pool); err == nil || !strings.Contains(err.Error(), "ID -5") {
		t.Errorf("negative id in a pool: %v", err)
	}
	var vms vmPool
	if err := decode("VM pool", "<VM_POOL><VM><ID>3</ID></VM></VM_POOL>", &vms); err != nil || len(vms.VMs) != 1 {
		t.Errorf("a good pool: %+v, %v", vms, err)
	}
	defer func(n int) { maxReply = n }(maxReply)
	maxReply = len(okReply) - 1
	if _, err := replying(t, okReply, 200, nil).callString(ctx, "one.vm.info", 7); err == nil || !strings.Contains(err.Error(), "is over") {
		t.Errorf("reply over the bound: %v", err)
	}
	maxReply = len(okReply)
	if _, err := replying(t, okReply, 200, nil).callString(ctx, "one.vm.info", 7); err != nil {
		t.Errorf("reply of exactly the bound: %v", err)
	}
}

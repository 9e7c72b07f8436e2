package kickstart

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, version, text string) (*File, []Diagnostic) {
	t.Helper()
	return Parse(Source{Name: "ks.cfg", Data: []byte(text)}, Options{Version: version})
}

func codes(diags []Diagnostic) []string {
	var out []string
	for _, d := range diags {
		out = append(out, fmt.Sprintf("%d:%s:%s", d.Pos.Line, d.Severity, d.Code))
	}
	return out
}

func TestParseStructure(t *testing.T) {
	text := `# cloud image
text
lang en_US.UTF-8
rootpw --iscrypted $6$salt$hash
part / --size=4096 --fstype ext4 --grow
network --bootproto=dhcp --device=link
poweroff

%packages --ignoremissing
@core   # minimal
-firewalld
%end

%post --nochroot --log=/mnt/sysimage/root/post.log
echo "# a comment in a script is body"
%end
%post --interpreter=/usr/bin/python3 --erroronfail
print("hi")
%end
`
	f, diags := parse(t, "RHEL9", text)
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics: %v", diags)
	}
	if f.Version != "RHEL9" || f.Lines != 19 {
		t.Errorf("Version %q Lines %d", f.Version, f.Lines)
	}
	var names []string
	for _, c := range f.Commands {
		names = append(names, fmt.Sprintf("%s@%d", c.Name, c.Pos.Line))
	}
	want := []string{"text@2", "lang@3", "rootpw@4", "part@5", "network@6", "poweroff@7"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("commands %v, want %v", names, want)
	}
	part := f.Commands[3]
	if part.Key != "partition" || part.Class != "RHEL9_Partition" || part.Status != "ok" {
		t.Errorf("part: key %q class %q status %q", part.Key, part.Class, part.Status)
	}
	if o, ok := part.Opt("--size"); !ok || o.Value() != "4096" {
		t.Errorf("--size = %+v %v", o, ok)
	}
	// --fstype and --type are aliases of one option.
	if o, ok := part.Opt("--type"); !ok || o.Value() != "ext4" || o.Name != "--fstype" {
		t.Errorf("--type lookup = %+v %v", o, ok)
	}
	if !part.Has("--grow") || part.Has("--maxsize") {
		t.Errorf("Has: grow %v maxsize %v", part.Has("--grow"), part.Has("--maxsize"))
	}
	if !reflect.DeepEqual(part.Positional, []string{"/"}) {
		t.Errorf("part positional %q", part.Positional)
	}
	if len(f.Sections) != 3 {
		t.Fatalf("%d sections", len(f.Sections))
	}
	pk := f.Sections[0]
	if pk.Kind != "%packages" || pk.Pos.Line != 9 || pk.EndPos.Line != 12 {
		t.Errorf("packages at %v..%v", pk.Pos, pk.EndPos)
	}
	if got := []string{pk.Body[0].Text, pk.Body[1].Text}; !reflect.DeepEqual(got, []string{"@core   # minimal", "-firewalld"}) || pk.Body[1].Pos.Line != 11 {
		t.Errorf("packages body %q", got)
	}
	post := f.Sections[1]
	if !post.NoChroot || post.Log != "/mnt/sysimage/root/post.log" || post.Interpreter != "/bin/sh" || post.ErrorOnFail {
		t.Errorf("first %%post: %+v", post)
	}
	if post.Text() != `echo "# a comment in a script is body"` {
		t.Errorf("post body %q", post.Text())
	}
	py := f.Sections[2]
	if py.Interpreter != "/usr/bin/python3" || !py.ErrorOnFail || py.NoChroot {
		t.Errorf("second %%post: %+v", py)
	}
	if f.PowerAction() != "poweroff" {
		t.Errorf("PowerAction %q", f.PowerAction())
	}
}

func TestParseDiagnostics(t *testing.T) {
	cases := []struct {
		name, version, text string
		want                []string
		fatal               bool
	}{
		{"unknown command", "RHEL9", "text\nbogus --x\n", []string{"2:error:unknown-command"}, false},
		{"removed command", "RHEL10", "auth --enableshadow\n", []string{"1:error:removed"}, false},
		{"deprecated command", "RHEL9", "autostep\n", []string{"1:warning:deprecated"}, false},
		{"deprecated option", "F45", "timezone UTC --isUtc\n", []string{"1:warning:deprecated"}, false},
		{"unknown option", "RHEL9", "bootloader --timeout=1 --bogus\n", []string{"1:error:option"}, false},
		{"missing argument", "RHEL9", "rootpw\n", []string{"1:error:option"}, false},
		{"extra argument", "RHEL9", "rootpw a b\n", []string{"1:error:option"}, false},
		{"bad int", "RHEL9", "part / --size=big\n", []string{"1:error:option"}, false},
		{"duplicate data", "RHEL9", "part / --size=1\npart / --size=2\n", []string{"2:warning:duplicate"}, false},
		{"conflict", "RHEL9", "autopart\npart / --size=1\n", []string{"2:error:conflict"}, false},
		{"missing end", "RHEL9", "%post\necho\n", []string{"2:error:missing-end"}, true},
		{"section without end before next", "RHEL9", "%post\necho\n%packages\n%end\n", []string{"3:error:missing-end"}, true},
		{"no end needed before F8", "F7", "%post\necho\n%packages\n", nil, false},
		{"unknown section", "RHEL9", "text\n%bogus\n%end\nbogus\n", []string{"2:error:unknown-section"}, true},
		{"unclosed quote", "RHEL9", "rootpw \"abc\nbogus\n", []string{"1:error:syntax"}, true},
		{"bad section option", "RHEL9", "%post --bogus\n%end\n", []string{"1:error:section"}, false},
		{"post only nochroot", "RHEL9", "%pre --nochroot\n%end\n", []string{"1:error:section"}, false},
		{"empty certificate", "F45", "%certificate --filename=a --dir=/x\n%end\n", []string{"2:error:section"}, true},
		{"empty file", "RHEL9", "  \n\n", []string{"2:error:syntax"}, true},
		{"traceback deprecated", "F40", "%traceback\necho\n%end\n", []string{"1:warning:deprecated"}, false},
		{"not utf-8", "RHEL9", "text\nlang \xff\n", []string{"2:error:encoding"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := parse(t, c.version, c.text)
			if got := codes(diags); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v (%v)", got, c.want, diags)
			}
			fatal := false
			for _, d := range diags {
				fatal = fatal || d.Fatal
			}
			if fatal != c.fatal {
				t.Errorf("fatal = %v, want %v", fatal, c.fatal)
			}
		})
	}
}

func TestLastWinsAndAll(t *testing.T) {
	f, diags := parse(t, "RHEL9", "reboot\ntimezone UTC\npoweroff\ntimezone Europe/Paris\nhalt --bogus\n")
	if len(diags) != 1 || diags[0].Pos.Line != 5 {
		t.Fatalf("diagnostics %v", diags)
	}
	if got := f.Last("timezone"); got == nil || got.Pos.Line != 4 {
		t.Errorf("Last(timezone) = %+v", got)
	}
	if n := len(f.All("timezone")); n != 2 {
		t.Errorf("All(timezone) has %d", n)
	}
	// reboot, poweroff and halt are one command; halt failed to parse, so
	// poweroff is the one in effect.
	if n := len(f.All("poweroff")); n != 3 {
		t.Errorf("All(poweroff) has %d", n)
	}
	if got := f.Last("reboot"); got == nil || got.Name != "poweroff" {
		t.Errorf("Last(reboot) = %+v", got)
	}
	if f.PowerAction() != "poweroff" {
		t.Errorf("PowerAction %q", f.PowerAction())
	}
	if g, _ := parse(t, "RHEL9", "text\n"); g.PowerAction() != "" {
		t.Errorf("no power action: %q", g.PowerAction())
	}
}

func TestInstallSources(t *testing.T) {
	f, diags := parse(t, "RHEL9", `url --mirrorlist="http://mirrors/?repo=os&arch=x86_64"
repo --name=epel --baseurl=https://dl/epel/9/
repo --name=local --metalink=http://meta/link
harddrive --partition=sdb1 --dir=/iso
`)
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	want := []string{"http://mirrors/?repo=os&arch=x86_64", "https://dl/epel/9/", "http://meta/link", "hd:sdb1:/iso"}
	if got := f.InstallSources(); !reflect.DeepEqual(got, want) {
		t.Errorf("InstallSources = %q, want %q", got, want)
	}
	g, _ := parse(t, "RHEL9", "nfs --server=10.0.0.1 --dir=/export/os\ncdrom\nliveimg --url=http://h/root.img\n")
	if got, want := g.InstallSources(), []string{"nfs:10.0.0.1:/export/os", "cdrom", "http://h/root.img"}; !reflect.DeepEqual(got, want) {
		t.Errorf("InstallSources = %q, want %q", got, want)
	}
	h, _ := parse(t, "F45", "bootc --source-imgref=registry:quay.io/fedora/fedora-bootc:41\n")
	if got, want := h.InstallSources(), []string{"registry:quay.io/fedora/fedora-bootc:41"}; !reflect.DeepEqual(got, want) {
		t.Errorf("InstallSources = %q, want %q", got, want)
	}
	o, _ := parse(t, "RHEL9", "ostreesetup --osname=rhel --url=https://h/repo --ref=rhel/9/x86_64/edge\nurl --url=http://bad#cut\n")
	if got, want := o.InstallSources(), []string{"https://h/repo", "http://bad"}; !reflect.DeepEqual(got, want) {
		t.Errorf("InstallSources = %q, want %q", got, want)
	}
}

type mapResolver map[string]string

func (m mapResolver) Resolve(from, target string) (Source, error) {
	loc, err := Locate(from, target)
	if err != nil {
		return Source{}, err
	}
	s, ok := m[loc]
	if !ok {
		return Source{}, fmt.Errorf("%s: %w", loc, os.ErrNotExist)
	}
	return Source{Name: loc, Data: []byte(s)}, nil
}

func TestIncludes(t *testing.T) {
	res := mapResolver{
		"/ks/common.cfg":     "lang en_US.UTF-8\n%include parts/disk.cfg\n",
		"/ks/parts/disk.cfg": "part / --size=1 --bogus\n",
		"/ks/post.sh":        "echo from include\n",
		"/ks/loop.cfg":       "%include loop.cfg\n",
		"/ks/append.cfg":     "timezone UTC",
	}
	text := "text\n%include common.cfg\n%post\n%include post.sh\necho main\n%end\n%include missing.cfg\n%include loop.cfg\n%ksappend append.cfg\nreboot\n"
	f, diags := Parse(Source{Name: "/ks/main.cfg", Data: []byte(text)}, Options{Version: "RHEL9", Resolver: res})
	got := map[string]bool{}
	for _, d := range diags {
		got[fmt.Sprintf("%s:%s", d.Pos, d.Code)] = true
	}
	for _, w := range []string{"/ks/parts/disk.cfg:1:option", "/ks/main.cfg:7:include", "/ks/loop.cfg:1:include"} {
		if !got[w] {
			t.Errorf("missing diagnostic %s in %v", w, diags)
		}
	}
	if len(diags) != 3 {
		t.Errorf("diagnostics: %v", diags)
	}
	lang := f.Last("lang")
	if lang == nil || lang.Pos != (Pos{"/ks/common.cfg", 1}) {
		t.Errorf("lang at %+v", lang)
	}
	// %ksappend text without a final newline joins the next line, as in
	// pykickstart: "timezone UTCreboot".
	tz := f.Last("timezone")
	if tz == nil || tz.Pos != (Pos{"/ks/append.cfg", 1}) || !reflect.DeepEqual(tz.Positional, []string{"UTCreboot"}) {
		t.Errorf("timezone %+v", tz)
	}
	post := f.Scripts("%post")
	if len(post) != 1 || post[0].Text() != "echo from include\necho main" || post[0].Body[0].Pos.File != "/ks/post.sh" {
		t.Errorf("post %+v", post)
	}
	var followed []string
	for _, inc := range f.Includes {
		followed = append(followed, fmt.Sprintf("%s %s %v", inc.Directive, inc.Target, inc.Followed))
	}
	want := []string{"%ksappend append.cfg true", "%include common.cfg true", "%include parts/disk.cfg true", "%include post.sh true", "%include missing.cfg false", "%include loop.cfg true", "%include loop.cfg false"}
	if !reflect.DeepEqual(followed, want) {
		t.Errorf("includes %q, want %q", followed, want)
	}
}

func TestIncludeDepthBound(t *testing.T) {
	res := mapResolver{}
	for i := 0; i < 20; i++ {
		res[fmt.Sprintf("/d/%d.cfg", i)] = fmt.Sprintf("%%include %d.cfg\n", i+1)
	}
	_, diags := Parse(Source{Name: "/d/0.cfg", Data: []byte("%include 1.cfg\n")}, Options{Resolver: res, MaxIncludeDepth: 3})
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "deeper than 3") || diags[0].Pos.File != "/d/3.cfg" {
		t.Fatalf("diagnostics %v", diags)
	}
}

func TestIncludeSizeBound(t *testing.T) {
	res := mapResolver{"/big.cfg": strings.Repeat("# padding\n", 2000)}
	_, diags := Parse(Source{Name: "/main.cfg", Data: []byte("%include /big.cfg\n")}, Options{Resolver: res, MaxTotalBytes: 1000})
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "exceeds 1000 bytes") {
		t.Fatalf("diagnostics %v", diags)
	}
}

func TestIncludeCountBound(t *testing.T) {
	// Every file includes 18 others, each of which is the same text under
	// another name: 18^8 includes without a bound.
	var b strings.Builder
	for i := 0; i < 18; i++ {
		fmt.Fprintf(&b, "%%include %c\n", 'a'+i)
	}
	text := b.String()
	res := resolverFunc(func(from, target string) (Source, error) {
		return Source{Name: from + "/" + target, Data: []byte(text)}, nil
	})
	f, diags := Parse(Source{Name: "ks.cfg", Data: []byte(text)}, Options{Resolver: res})
	followed := 0
	for _, inc := range f.Includes {
		if inc.Followed {
			followed++
		}
	}
	last := diags[len(diags)-1]
	if followed > 100 || len(diags) > 101 || !strings.Contains(last.Message, "more than 100 includes") {
		t.Fatalf("followed %d includes, %d diagnostics, the last %v", followed, len(diags), last)
	}
}

type resolverFunc func(from, target string) (Source, error)

func (r resolverFunc) Resolve(from, target string) (Source, error) { return r(from, target) }

func TestLoader(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "part.cfg"), []byte("part / --size=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fetched := []string{}
	l := &Loader{MaxBytes: 64, Fetch: func(u string) ([]byte, error) {
		fetched = append(fetched, u)
		if strings.HasSuffix(u, "big.cfg") {
			return make([]byte, 65), nil
		}
		return []byte("lang C\n"), nil
	}}
	s, err := l.Resolve(filepath.Join(dir, "main.cfg"), "part.cfg")
	if err != nil || string(s.Data) != "part / --size=1\n" || s.Name != filepath.Join(dir, "part.cfg") {
		t.Fatalf("local: %+v %v", s, err)
	}
	s, err = l.Resolve("http://ks.example/dir/main.cfg", "../common/lang.cfg")
	if err != nil || s.Name != "http://ks.example/common/lang.cfg" || string(s.Data) != "lang C\n" {
		t.Fatalf("relative URL: %+v %v", s, err)
	}
	if _, err := l.Resolve("http://ks.example/main.cfg", "big.cfg"); err == nil || !strings.Contains(err.Error(), "larger than 64") {
		t.Errorf("big URL: %v", err)
	}
	if _, err := l.Resolve("main.cfg", "ftp://h/x.cfg"); err == nil || !strings.Contains(err.Error(), "only http and https") {
		t.Errorf("ftp: %v", err)
	}
	if _, err := (&Loader{}).Resolve("main.cfg", "https://h/x.cfg"); !errors.Is(err, ErrNoFetcher) {
		t.Errorf("no fetcher: %v", err)
	}
	if _, err := l.Resolve(filepath.Join(dir, "main.cfg"), "absent.cfg"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent: %v", err)
	}
	if !reflect.DeepEqual(fetched, []string{"http://ks.example/common/lang.cfg", "http://ks.example/big.cfg"}) {
		t.Errorf("fetched %q", fetched)
	}
}

func TestLookupVersion(t *testing.T) {
	for in, want := range map[string]string{
		"rhel9": "RHEL9", "F40": "F40", "devel": "DEVEL", "Fedora 14": "F14", "fedora core 3": "FC3",
		"Red Hat Enterprise Linux 9.4": "RHEL9", "RHEL11": "RHEL11",
	} {
		v, err := LookupVersion(in)
		if err != nil || v.Name != want {
			t.Errorf("LookupVersion(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for _, bad := range []string{"RHEL2", "F99", "", "ubuntu"} {
		if _, err := LookupVersion(bad); err == nil {
			t.Errorf("LookupVersion(%q) succeeded", bad)
		}
	}
	if v, _ := LookupVersion(DefaultVersion); v.Name != "RHEL10" {
		t.Errorf("default version %v", v)
	}
	vs := Versions()
	if len(vs) < 50 || vs[0] != "RHEL3" || !contains(vs, "F14") || !contains(vs, "RHEL5") {
		t.Errorf("Versions() = %v", vs)
	}
	v, _ := LookupVersion("RHEL9")
	if contains(v.Options("part"), "--only-use") || !contains(v.Options("ignoredisk"), "--only-use") || !contains(v.Options("part"), "--ondisk") {
		t.Errorf("options tables wrong: part %v", v.Options("part"))
	}
	if v.CommandStatus("method") != "deprecated" || v.CommandStatus("install") != "removed" || v.CommandStatus("nosuch") != "" {
		t.Errorf("statuses wrong")
	}
}

package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/home/u/ks.cfg", "/home/u/ks.cfg"},
		{"http://10.0.0.1/ks.cfg", "http://10.0.0.1/ks.cfg"},
		{"https://user:s3cret@git.example.com/ks/f40.cfg", "https://REDACTED@git.example.com/ks/f40.cfg"},
		{"https://tok3n@host/ks.cfg", "https://REDACTED@host/ks.cfg"},
		{"https://host:8443/ks.cfg?token=abc123&arch=x86_64", "https://host:8443/ks.cfg?token=REDACTED&arch=REDACTED"},
		{"https://b.s3.amazonaws.com/ks.cfg?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=deadbeef", "https://b.s3.amazonaws.com/ks.cfg?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"},
		{"http://h/ks.cfg#access_token=xyz", "http://h/ks.cfg#REDACTED"},
		{"http://u:p@[::1]:80/ks.cfg", "http://REDACTED@[::1]:80/ks.cfg"},
		{"http://u:p%zz@h/ks?k=v", "http://REDACTED@h/ks?REDACTED"},
		// A password with an unencoded '#', '?' or '/' (the URL does not
		// parse): nothing before the last '@' is kept.
		{"http://u:p#s3cret@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
		{"http://u:p?s3cret@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
		{"http://u:p/s3cret@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
		// ... even where the part before it parses as host:port.
		{"http://u:123#x@h/", "http://REDACTED@h/"},
		{"http://u:123?x@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
		{"http://u:123/x@h/ks.cfg", "http://REDACTED@h/ks.cfg"},
		{"http://u:p@h:1#s3cret@h2/", "http://REDACTED@h2/"},
	} {
		got := URL(c.in)
		if got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, secret := range []string{"s3cret", "tok3n", "abc123", "deadbeef", "AKIA", "xyz", "u:p", "u:123"} {
			if strings.Contains(got, secret) {
				t.Errorf("URL(%q) = %q keeps %q", c.in, got, secret)
			}
		}
	}
	line := `kickstart https://u:pw@h/ks.cfg?token=t0k: Get "https://u:***@h/ks.cfg?token=t0k": 404; inst.ks=http://a:b@c/d`
	got := Text(line)
	if strings.Contains(got, "pw@") || strings.Contains(got, "t0k") || strings.Contains(got, "a:b") || !strings.Contains(got, "https://REDACTED@h/ks.cfg?token=REDACTED") || !strings.Contains(got, "inst.ks=http://REDACTED@c/d") {
		t.Fatalf("RedactText = %q", got)
	}
}

// FuzzRedactURLPassword: whatever a password holds (unencoded '/', '?',
// '#', '@', '%', ':'), no part of it of four bytes or more survives in
// URL's output, nor the user name, with the URL alone or in text.
func FuzzRedactURLPassword(f *testing.F) {
	for _, s := range [][2]string{{"u", "123#x"}, {"user", "s3cret"}, {"u", "p/q?r#s@t"}, {"a", "%zz:1"}, {"bob", "12345"}, {"u", "1:2@3"}} {
		f.Add(s[0], s[1], "h", "/ks.cfg")
	}
	f.Fuzz(func(t *testing.T, user, pass, host, path string) {
		if !plain(user) || !plain(host) || (path != "" && (path[0] != '/' || !plain(strings.ReplaceAll(path, "/", ".")))) {
			return
		}
		ins := []string{"http://" + user + ":" + pass + "@" + host + path}
		if !strings.ContainsAny(pass, " \t\n\f\r\"'<>") { // in text, these end a URL
			ins = append(ins, "see inst.ks=https://"+user+":"+pass+"@"+host+path+" now")
		}
		for _, in := range ins {
			out := URL(in)
			if strings.HasPrefix(in, "see") {
				out = Text(in)
			}
			keep := "http https see inst.ks now REDACTED " + host + path
			for i := 0; i+4 <= len(pass); i++ {
				if sub := pass[i : i+4]; strings.Contains(out, sub) && !strings.Contains(keep, sub) {
					t.Fatalf("%q -> %q keeps %q of the password", in, out, sub)
				}
			}
			if len(user) >= 4 && strings.Contains(out, user+":") {
				t.Fatalf("%q -> %q keeps the user %q", in, out, user)
			}
		}
	})
}

// plain: a non-empty name of lower-case letters, digits and dots.
func plain(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}

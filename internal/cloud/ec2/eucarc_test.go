package ec2

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// eucarc34 is what Eucalyptus 3.3–4.x write (X509Download.java), with the
// zip unpacked under a symlinked directory.
const eucarc34 = `EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)
export EC2_URL=http://10.1.1.1:8773/services/compute
echo WARN:  Walrus URL is not configured. >&2
export EUARE_URL=http://10.1.1.1:8773/services/Euare
export EC2_PRIVATE_KEY=${EUCA_KEY_DIR}/euca2-admin-0a1b2c3d-pk.pem
export EC2_CERT=${EUCA_KEY_DIR}/euca2-admin-0a1b2c3d-cert.pem
export EC2_JVM_ARGS=-Djavax.net.ssl.trustStore=${EUCA_KEY_DIR}/jssecacerts
export EC2_ACCOUNT_NUMBER='123456789012'
export EC2_ACCESS_KEY='AKIEXAMPLE34'
export EC2_SECRET_KEY='s3cr3t/with+chars='
export AWS_ACCESS_KEY='AKIEXAMPLE34'
export AWS_SECRET_KEY='s3cr3t/with+chars='
export AWS_CREDENTIAL_FILE=${EUCA_KEY_DIR}/iamrc
alias ec2-bundle-image="ec2-bundle-image --cert ${EC2_CERT} --privatekey ${EC2_PRIVATE_KEY}"
`

// eucarc32 is the Eucalyptus 3.2 form of the first line.
const eucarc32 = `EUCA_KEY_DIR=$(dirname $(readlink -f ${BASH_SOURCE}))
export EC2_URL="http://clc.example:8773/services/Eucalyptus"
# a comment
export EC2_ACCESS_KEY=AKI32 # trailing comment
export EC2_SECRET_KEY="sec\"ret"
export S3_URL=${S3_HOST:-walrus.example}:8773
export BROKEN=$(hostname)
`

func writeEucarc(t *testing.T, body string) (link, real string) {
	t.Helper()
	base := t.TempDir()
	real = filepath.Join(base, "creds-real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "eucarc"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	link = filepath.Join(base, "creds")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(link, "eucarc"), real
}

func TestEucarc(t *testing.T) {
	t.Setenv("S3_HOST", "")
	p34, real34 := writeEucarc(t, eucarc34)
	p32, real32 := writeEucarc(t, eucarc32)
	tests := []struct {
		path, name, want string
	}{
		{p34, "EC2_URL", "http://10.1.1.1:8773/services/compute"},
		{p34, "EUCA_KEY_DIR", real34},
		{p34, "EC2_CERT", real34 + "/euca2-admin-0a1b2c3d-cert.pem"},
		{p34, "EC2_ACCESS_KEY", "AKIEXAMPLE34"},
		{p34, "EC2_SECRET_KEY", "s3cr3t/with+chars="},
		{p34, "EC2_ACCOUNT_NUMBER", "123456789012"},
		{p32, "EUCA_KEY_DIR", real32},
		{p32, "EC2_URL", "http://clc.example:8773/services/Eucalyptus"},
		{p32, "EC2_ACCESS_KEY", "AKI32"},
		{p32, "EC2_SECRET_KEY", `sec"ret`},
		{p32, "S3_URL", "walrus.example:8773"},
	}
	for _, tc := range tests {
		rc, err := ReadEucarc(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := rc.Get(tc.name)
		if err != nil || !ok || got != tc.want {
			t.Errorf("%s %s = %q, %v, %v; want %q", filepath.Base(filepath.Dir(tc.path)), tc.name, got, ok, err, tc.want)
		}
	}
	rc, err := ReadEucarc(p32)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := rc.Get("BROKEN"); !ok || err == nil || !strings.Contains(err.Error(), "line 7") || !strings.Contains(err.Error(), "hostname") {
		t.Errorf("BROKEN: ok=%v err=%v; want an error naming line 7 and the command", ok, err)
	}
	if _, ok, err := rc.Get("NOT_SET"); ok || err != nil {
		t.Errorf("NOT_SET: ok=%v err=%v", ok, err)
	}
	if _, err := ReadEucarc(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing eucarc read without error")
	}
}

func TestEucarcUnterminated(t *testing.T) {
	for _, body := range []string{"export A='x\n", "export A=\"x\n", "export A=$(dirname x\n", "export A=${X\n", "export A=`x\n"} {
		rc, err := ParseEucarc(strings.NewReader(body), "/tmp/eucarc")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := rc.Get("A"); err == nil {
			t.Errorf("%q: no error", body)
		}
	}
}

// TestConfigSources checks the order New takes endpoint and credentials in.
func TestConfigSources(t *testing.T) {
	p34, _ := writeEucarc(t, eucarc34)
	ctx := context.Background()
	t.Setenv("EC2_URL", "http://env.example:8773/services/compute")
	t.Setenv("EC2_ACCESS_KEY", "AKIENV")
	t.Setenv("EC2_SECRET_KEY", "envsecret")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	cases := []struct {
		name                string
		cfg                 Config
		endpoint, credsFrom string
		key                 string
	}{
		{"explicit", Config{Endpoint: "http://cfg.example:8773/services/compute/", AccessKey: "AKICFG", SecretKey: "x", Eucarc: p34}, "http://cfg.example:8773/services/compute", "config", "AKICFG"},
		{"eucarc", Config{Eucarc: p34}, "http://10.1.1.1:8773/services/compute", "eucarc ", "AKIEXAMPLE34"},
		{"env", Config{}, "http://env.example:8773/services/compute", "env EC2_ACCESS_KEY", "AKIENV"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(ctx, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			eff := p.Effective()
			if eff.Endpoint != tc.endpoint || !strings.HasPrefix(eff.Credentials, tc.credsFrom) || eff.Region != DefaultRegion || eff.Signature != SignatureV4 {
				t.Errorf("effective %s; want endpoint %s, credentials from %s", eff, tc.endpoint, tc.credsFrom)
			}
			creds, err := p.api.Options().Credentials.Retrieve(ctx)
			if err != nil || creds.AccessKeyID != tc.key {
				t.Errorf("access key %q, %v; want %q", creds.AccessKeyID, err, tc.key)
			}
		})
	}
	if _, err := New(ctx, Config{AccessKey: "only"}); err == nil {
		t.Error("an access key without a secret was accepted")
	}
	if _, err := New(ctx, Config{Endpoint: "ftp://x"}); err == nil {
		t.Error("an ftp endpoint was accepted")
	}
	if _, err := New(ctx, Config{Signature: "v3"}); err == nil || !strings.Contains(err.Error(), "v2 or v4") {
		t.Errorf("signature v3: %v", err)
	}
}

// TestEucarcAsBash: the key-directory variables come out as bash makes
// them when it sources the eucarc, for a eucarc that is itself a symlink
// into another (symlinked) directory: $(cd $(dirname $BASH_SOURCE); pwd -P)
// is the link's directory resolved, readlink -f the target's directory,
// plain dirname the link's directory as named.
func TestEucarcAsBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to compare with")
	}
	for name, first := range map[string]string{
		"pwd -P (3.3+)":     `EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)`,
		"readlink -f (3.2)": `EUCA_KEY_DIR=$(dirname $(readlink -f ${BASH_SOURCE}))`,
		"pwd":               `EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd)`,
		"dirname":           `EUCA_KEY_DIR=$(dirname ${BASH_SOURCE})`,
	} {
		t.Run(name, func(t *testing.T) {
			body := first + "\nexport EC2_URL=http://clc:8773/services/compute\nexport EC2_CERT=${EUCA_KEY_DIR}/euca2-admin-cert.pem\n"
			// base/creds-real/eucarc: the file; base/creds → creds-real;
			// base/home/eucarc → ../creds/eucarc; base/homelink → home.
			base := t.TempDir()
			for _, d := range []string{"creds-real", "home"} {
				if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(base, "creds-real", "eucarc"), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			for link, target := range map[string]string{"creds": "creds-real", "home/eucarc": "../creds/eucarc", "homelink": "home"} {
				if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(base, "homelink", "eucarc")
			out, err := exec.Command(bash, "-c", `source "$1" 2>/dev/null; printf '%s\n%s' "$EUCA_KEY_DIR" "$EC2_CERT"`, "bash", path).Output()
			if err != nil {
				t.Fatalf("bash: %v", err)
			}
			want := strings.SplitN(string(out), "\n", 2)
			rc, err := ReadEucarc(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range []string{"EUCA_KEY_DIR", "EC2_CERT"} {
				got, _, err := rc.Get(v)
				if err != nil || got != want[i] {
					t.Errorf("%s = %q (%v), bash says %q", v, got, err, want[i])
				}
			}
		})
	}
}

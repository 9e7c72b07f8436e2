package userdata

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sentinels lists every sentinel an error from this package may wrap.
var sentinels = []error{ErrBase64, ErrTooLarge, ErrNesting, ErrTooManyParts, ErrMIME, ErrGzip,
	ErrUnknownDirective, ErrConflict, ErrBadValue, ErrCmdline}

// checkFuzzError asserts the error contract for arbitrary input: an *Error,
// wrapping exactly one sentinel, with a single-line printable message.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q is %T, not *Error", err, err)
	}
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q wraps %d sentinels", err, n)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "user-data: ") || len(msg) > 400 {
		t.Fatalf("message %q", msg)
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f || 0x80 <= r && r <= 0x9f {
			t.Fatalf("message %q contains control character U+%04X", msg, r)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add([]byte(tc.in))
	}
	for _, name := range []string{"make-mime.txt", "make-mime-kickstart.txt", "make-mime-gzip.bin"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range renderCases() {
		if out, err := Render(tc.in); err == nil {
			f.Add(out)
		}
	}
	// Small limits make the limit paths reachable for the fuzzer.
	small := Limits{MaxInput: 4096, MaxExpanded: 8192, MaxParts: 8, MaxDepth: 2, MaxKickstart: 512}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []Limits{DefaultLimits(), small} {
			req, err := Parse(data, lim)
			if err != nil {
				if req != nil {
					t.Fatalf("Request %+v with error %v", req, err)
				}
				checkFuzzError(t, err)
				continue
			}
			checkInvariants(t, req)
			if req.HasBootParams && len(req.BootParams) > MaxCmdline {
				t.Fatalf("BootParams of %d bytes", len(req.BootParams))
			}
			if len(req.Kickstart) > lim.withDefaults().MaxKickstart {
				t.Fatalf("Kickstart of %d bytes over the limit", len(req.Kickstart))
			}
		}
	})
}

func FuzzDecodeBase64(f *testing.F) {
	for _, tc := range base64Cases() {
		f.Add(tc.in)
	}
	for _, tc := range parseCases() {
		f.Add(base64.StdEncoding.EncodeToString([]byte(tc.in)))
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := DecodeBase64(s)
		if err != nil {
			if out != nil {
				t.Fatalf("output with error %v", err)
			}
			checkFuzzError(t, err)
			if !errors.Is(err, ErrBase64) {
				t.Fatalf("error %v does not wrap ErrBase64", err)
			}
			return
		}
		if len(out) > len(s)*3/4+2 {
			t.Fatalf("%d bytes out of %d characters", len(out), len(s))
		}
		// Decoding the canonical encoding of the output gives the output back.
		again, err := DecodeBase64(base64.StdEncoding.EncodeToString(out))
		if err != nil || string(again) != string(out) {
			t.Fatalf("re-encoding round trip: %q, %v", again, err)
		}
		// The hook path: whatever decodes is parsed, and a successful parse
		// satisfies the command-line rules.
		req, err := Parse(out, DefaultLimits())
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		checkInvariants(t, req)
	})
}

// FuzzRender checks that whatever Render accepts, Parse reads back.
func FuzzRender(f *testing.F) {
	for _, tc := range renderCases() {
		f.Add(tc.in.BootParams, string(tc.in.Mode), tc.in.Installer, tc.in.VNC, tc.in.Kickstart, tc.in.CloudConfig, tc.in.Compress)
	}
	f.Fuzz(func(t *testing.T, bootParams, mode, installer string, vnc bool, kickstart, cloudConfig []byte, compress string) {
		in := RenderInput{BootParams: bootParams, Mode: Mode(mode), Installer: installer, VNC: vnc,
			Kickstart: kickstart, CloudConfig: cloudConfig, Compress: compress}
		out, err := Render(in)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if len(out) > MaxUserData {
			t.Fatalf("%d bytes rendered", len(out))
		}
		req, err := Parse(out, DefaultLimits())
		if err != nil {
			t.Fatalf("Parse(Render(%+v)): %v", in, err)
		}
		checkInvariants(t, req)
		wantMode := Mode(mode)
		if wantMode == "" {
			wantMode = ModeBake
		}
		if req.BootParams != strings.TrimRight(bootParams, " \t\r") || req.Mode != wantMode ||
			req.Installer != installer || req.VNC != vnc || string(req.Kickstart) != string(kickstart) {
			t.Fatalf("Parse(Render(%+v)) = %+v", in, req)
		}
	})
}

package userdata

import (
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	mimeKS, err := Render(RenderInput{BootParams: "inst.ks=file:/ks.cfg console=ttyS1", Mode: ModeInPlace,
		Kickstart: []byte(kickstartText), CloudConfig: []byte(cloudConfig), Compress: "never"})
	if err != nil {
		b.Fatal(err)
	}
	makeMime, err := os.ReadFile(filepath.Join("testdata", "make-mime-gzip.bin"))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"plain-seed", []byte(seed)},
		{"mime-cloud-config-kickstart", mimeKS},
		{"gzip-mime-gzip-part", makeMime},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				req, err := Parse(bc.in, DefaultLimits())
				if err != nil || !req.HasBootParams {
					b.Fatalf("%+v, %v", req, err)
				}
			}
		})
	}
}

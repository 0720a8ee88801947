package twin

import (
	"fmt"
	"strings"
	"testing"
)

// kbTwin has about 1 KB of reported properties (Size), some desired
// properties and tags three deep.
func kbTwin(b *testing.B) *Twin {
	tw := New(t0)
	var r strings.Builder
	r.WriteString(`{"telemetryConfig":{"sendFrequency":"5m","status":"success"},"errors":["power","sensor"]`)
	for i := range 40 {
		fmt.Fprintf(&r, `,"sensor%02d":{"value":%d.5,"unit":"C"}`, i, i)
	}
	r.WriteString("}")
	if _, err := tw.PatchReported([]byte(r.String()), at(1)); err != nil {
		b.Fatal(err)
	}
	if _, err := tw.ServicePatch([]byte(`{"tags":{"site":{"building":{"floor":"3"}},"owner":"ops"},"properties":{"desired":{"rate":5,"fw":{"version":"1.2.0"}}}}`), at(2)); err != nil {
		b.Fatal(err)
	}
	if n := Size(tw.Reported.Values); n < 900 || n > 1200 {
		b.Fatalf("reported is %d bytes, want about 1 KB", n)
	}
	return tw
}

func BenchmarkPatchReported(b *testing.B) {
	tw := kbTwin(b)
	patch := []byte(`{"sensor07":{"value":22.5},"uptime":1234}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tw.PatchReported(patch, at(3)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeviceJSON(b *testing.B) {
	tw := kbTwin(b)
	b.ReportAllocs()
	for b.Loop() {
		tw.DeviceJSON()
	}
}

func BenchmarkServiceJSON(b *testing.B) {
	tw := kbTwin(b)
	b.ReportAllocs()
	for b.Loop() {
		tw.ServiceJSON(sampleDevice)
	}
}

func BenchmarkLookup(b *testing.B) {
	tw := kbTwin(b)
	doc := tw.Doc(sampleDevice)
	for _, bc := range []struct {
		name string
		path []string
	}{
		{"connectionState", []string{"connectionState"}},
		{"tags.site.building.floor", []string{"tags", "site", "building", "floor"}},
		{"properties.reported.sensor07.value", []string{"properties", "reported", "sensor07", "value"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := doc.Lookup(bc.path); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	tw := kbTwin(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tw.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	data, err := kbTwin(b).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

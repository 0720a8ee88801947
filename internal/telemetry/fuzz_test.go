package telemetry

import (
	"maps"
	"sort"
	"strings"
	"testing"
)

// FuzzParseEventsTopic: every device's D2C topic goes through the parser.
// It never panics; what it accepts is a devices/{id}/… topic whose ids it
// returns as they stand; and the properties it decodes, encoded again as
// an SDK encodes them, decode to the same (nothing is lost or invented).
func FuzzParseEventsTopic(f *testing.F) {
	for _, s := range []string{
		"devices/dev1/messages/events/%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&%24.ce=utf-8&alert=hot%26cold&k%20y=v%2F1%3D2&%24.sub=subj",
		"devices/d/messages/events/",
		"devices/d/messages/events",
		"devices/d/modules/m/messages/events/a=1",
		"devices/d/messages/events/?a=1&&b&c=&=d",
		"devices/d/messages/events/%24.x=1&%24.=2&$.mid=3",
		"devices/d/messages/events/%zz=1",
		"devices/d/messages/devicebound/",
		"devices//messages/events/",
		"devices/d/modules//messages/events/",
		"devices/é/messages/events/k=%C3%A9%00",
		"foo",
	} {
		f.Add(s)
	}
	short := map[string]string{}
	for k, v := range systemNames {
		short[v] = k
	}
	f.Fuzz(func(t *testing.T, topic string) {
		dev, mod, props, sys, err := ParseEventsTopic(topic)
		if err != nil {
			return
		}
		if dev == "" || strings.Contains(dev, "/") || strings.Contains(mod, "/") {
			t.Fatalf("%q: device %q module %q", topic, dev, mod)
		}
		prefix := "devices/" + dev + "/"
		if mod != "" {
			prefix += "modules/" + mod + "/"
		}
		if !strings.HasPrefix(topic, prefix+"messages/events") {
			t.Fatalf("%q accepted as device %q module %q", topic, dev, mod)
		}
		var parts []string
		for k, v := range props {
			parts = append(parts, escape(k)+"="+escape(v))
		}
		for k, v := range sys {
			name := k
			if s, ok := short[k]; ok {
				name = s
			}
			parts = append(parts, "%24."+escape(name)+"="+escape(v))
		}
		sort.Strings(parts)
		p2, s2, err := ParseProperties(strings.Join(parts, "&"))
		if err != nil {
			t.Fatalf("%q: re-encoded properties do not parse: %v", topic, err)
		}
		if !maps.Equal(props, p2) || !maps.Equal(sys, s2) {
			t.Fatalf("%q: properties %v %v, after a round trip %v %v", topic, props, sys, p2, s2)
		}
	})
}

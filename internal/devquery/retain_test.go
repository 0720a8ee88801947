package devquery

import (
	"encoding/json"
	"testing"
)

// reusingSource hands every document in one reused holder, as the hub's
// twin source does; Run must keep the copies Retain makes.
type reusingSource struct{ fleet *fleet }

type holder struct{ MapDoc }

func (h *holder) Retain() Doc { c := *h; return &c }

func (s reusingSource) Scan(after string, fn func(id string, d Doc) bool) {
	h := &holder{}
	s.fleet.Scan(after, func(id string, d Doc) bool {
		h.MapDoc = d.(MapDoc)
		return fn(id, h)
	})
}

func TestRunRetainsReusedDocs(t *testing.T) {
	f := newFleet()
	for _, id := range []string{"a", "b", "c"} {
		f.put(id, MapDoc{"deviceId": id})
	}
	q, err := Parse("SELECT * FROM devices")
	if err != nil {
		t.Fatal(err)
	}
	page, err := q.Run(reusingSource{f}, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(page.Items)
	if string(got) != `[{"deviceId":"a"},{"deviceId":"b"},{"deviceId":"c"}]` {
		t.Errorf("items %s: a reused document was kept instead of its copy", got)
	}
}

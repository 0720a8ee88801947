package devquery

import (
	"fmt"
	"slices"
	"sort"
)

// fleet is an in-memory Source: documents in device id order. Tests
// change it between pages as a registry would change.
type fleet struct {
	ids  []string
	docs []Doc
}

func newFleet() *fleet { return &fleet{} }

func (f *fleet) put(id string, d Doc) {
	i := sort.SearchStrings(f.ids, id)
	if i < len(f.ids) && f.ids[i] == id {
		f.docs[i] = d
		return
	}
	f.ids = slices.Insert(f.ids, i, id)
	f.docs = slices.Insert(f.docs, i, d)
}

func (f *fleet) remove(id string) {
	if i := sort.SearchStrings(f.ids, id); i < len(f.ids) && f.ids[i] == id {
		f.ids = slices.Delete(f.ids, i, i+1)
		f.docs = slices.Delete(f.docs, i, i+1)
	}
}

func (f *fleet) Scan(after string, fn func(id string, d Doc) bool) {
	i := sort.SearchStrings(f.ids, after)
	if i < len(f.ids) && f.ids[i] == after {
		i++
	}
	for ; i < len(f.ids); i++ {
		if !fn(f.ids[i], f.docs[i]) {
			return
		}
	}
}

// device is a small twin: every third device is disconnected, regions
// cycle through three values and one in seven has no region tag.
func device(i int) (string, MapDoc) {
	id := fmt.Sprintf("dev-%06d", i)
	state := "Connected"
	if i%3 == 0 {
		state = "Disconnected"
	}
	tags := map[string]any{"floor": float64(i % 10)}
	if i%7 != 0 {
		tags["region"] = []string{"EU", "US", "APAC"}[i%3]
	}
	return id, MapDoc{
		"deviceId": id, "status": "enabled", "connectionState": state, "tags": tags,
		"properties": map[string]any{"reported": map[string]any{"fw": fmt.Sprintf("1.%d", i%4)}},
	}
}

func fleetOf(n int) *fleet {
	f := newFleet()
	for i := range n {
		id, d := device(i)
		f.ids = append(f.ids, id) // device ids grow with i
		f.docs = append(f.docs, d)
	}
	return f
}

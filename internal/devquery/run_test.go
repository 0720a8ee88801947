package devquery

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// runAll pages through q, failing the test on any error; it returns every
// page.
func runAll(t *testing.T, q *Query, src Source, pageSize int) []Page {
	t.Helper()
	var pages []Page
	token := ""
	for {
		p, err := q.Run(src, pageSize, token)
		if err != nil {
			t.Fatalf("page %d: %v", len(pages)+1, err)
		}
		pages = append(pages, p)
		if p.Continuation == "" {
			return pages
		}
		if len(pages) > 10000 {
			t.Fatal("no end of pages")
		}
		token = p.Continuation
	}
}

func ids(items []any) []string {
	var out []string
	for _, it := range items {
		switch it := it.(type) {
		case MapDoc:
			out = append(out, it["deviceId"].(string))
		case Row:
			v, _ := it.Get("deviceId")
			out = append(out, v.(string))
		}
	}
	return out
}

func mustParse(t testing.TB, q string) *Query {
	t.Helper()
	query, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	return query
}

// matching lists the ids of src that q matches, in order.
func matching(q *Query, f *fleet) []string {
	var out []string
	f.Scan("", func(id string, d Doc) bool {
		if q.Match(d) {
			out = append(out, id)
		}
		return true
	})
	return out
}

func TestRunPages(t *testing.T) {
	f := fleetOf(1000)
	q := mustParse(t, "SELECT * FROM devices WHERE connectionState = 'Disconnected'")
	want := matching(q, f) // 334 ids
	for _, size := range []int{1, 7, 50, 167, 334, 1000} {
		pages := runAll(t, q, f, size)
		var got []string
		for i, p := range pages {
			if p.ItemType != ItemTwin {
				t.Errorf("size %d page %d: item type %q", size, i+1, p.ItemType)
			}
			if len(p.Items) > size || len(p.Items) == 0 {
				t.Errorf("size %d page %d: %d items", size, i+1, len(p.Items))
			}
			got = append(got, ids(p.Items)...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("size %d: %d ids, want %d (first %v)", size, len(got), len(want), got[:min(3, len(got))])
		}
		// One match of look-ahead: no empty page at the end, also when the
		// matches divide evenly into pages.
		if n := (len(want) + size - 1) / size; len(pages) != n {
			t.Errorf("size %d: %d pages, want %d", size, len(pages), n)
		}
	}
}

func TestRunPageSize(t *testing.T) {
	f := fleetOf(2500)
	q := mustParse(t, "SELECT deviceId FROM devices")
	for size, want := range map[int]int{0: DefaultPageSize, -5: DefaultPageSize, 1000: 1000, 1001: MaxPageSize, 1 << 40: MaxPageSize} {
		p, err := q.Run(f, size, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != want || p.Continuation == "" {
			t.Errorf("page size %d: %d items (continuation %q), want %d", size, len(p.Items), p.Continuation, want)
		}
	}
	for h, want := range map[string]int{"": 100, " 25 ": 25, "1000": 1000, "5000": 1000} {
		if got, err := ParsePageSize(h); err != nil || got != want {
			t.Errorf("ParsePageSize(%q) = %d, %v; want %d", h, got, err, want)
		}
	}
	for _, h := range []string{"0", "-1", "ten", "1.5", "99999999999999999999"} {
		if _, err := ParsePageSize(h); err == nil || !strings.Contains(err.Error(), "x-ms-max-item-count must be a positive whole number") {
			t.Errorf("ParsePageSize(%q): error %v", h, err)
		}
	}
}

func TestRunTop(t *testing.T) {
	f := fleetOf(1000)
	all := matching(mustParse(t, "SELECT * FROM devices WHERE connectionState = 'Disconnected'"), f)
	for _, tc := range []struct {
		top, size int
		pages     []int
	}{
		{top: 120, size: 50, pages: []int{50, 50, 20}},
		{top: 100, size: 50, pages: []int{50, 50}},
		{top: 50, size: 50, pages: []int{50}},
		{top: 3, size: 50, pages: []int{3}},
		{top: 0, size: 50, pages: []int{0}},
		{top: 5000, size: 200, pages: []int{200, 134}},
	} {
		q := mustParse(t, "SELECT TOP "+itoa(tc.top)+" deviceId FROM devices WHERE connectionState = 'Disconnected'")
		pages := runAll(t, q, f, tc.size)
		var sizes []int
		var got []string
		for _, p := range pages {
			sizes = append(sizes, len(p.Items))
			got = append(got, ids(p.Items)...)
		}
		if !slices.Equal(sizes, tc.pages) {
			t.Errorf("TOP %d page size %d: pages of %v, want %v", tc.top, tc.size, sizes, tc.pages)
		}
		if !slices.Equal(got, all[:min(tc.top, len(all))]) {
			t.Errorf("TOP %d page size %d: wrong devices", tc.top, tc.size)
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestRunChangingData: between pages devices are added, removed and
// changed. No device appears twice, and every device that matched the
// whole time appears.
func TestRunChangingData(t *testing.T) {
	f := fleetOf(300)
	q := mustParse(t, "SELECT * FROM devices WHERE connectionState = 'Disconnected'")
	before := matching(q, f)
	p1, err := q.Run(f, 40, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := ids(p1.Items)
	last := seen[len(seen)-1]
	// Behind the cursor: remove a returned device, add new matching ones.
	f.remove(seen[0])
	f.put("dev-000000a", MapDoc{"deviceId": "dev-000000a", "connectionState": "Disconnected"})
	// Ahead of it: add one, remove one, make one stop matching.
	f.put("dev-000200a", MapDoc{"deviceId": "dev-000200a", "connectionState": "Disconnected"})
	f.remove("dev-000201")
	_, changed := device(204)
	changed["connectionState"] = "Connected"
	f.put("dev-000204", changed)
	var got []string
	got = append(got, seen...)
	token := p1.Continuation
	for token != "" {
		p, err := q.Run(f, 40, token)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p.Items)...)
		token = p.Continuation
	}
	counts := map[string]int{}
	for _, id := range got {
		counts[id]++
		if counts[id] > 1 {
			t.Errorf("%s returned twice", id)
		}
	}
	for _, id := range before {
		if id != "dev-000201" && id != "dev-000204" && counts[id] == 0 {
			t.Errorf("%s matched throughout but was skipped", id)
		}
	}
	if counts["dev-000200a"] != 1 || counts["dev-000000a"] != 0 || counts["dev-000201"] != 0 || counts["dev-000204"] != 0 {
		t.Errorf("after the cursor %s: new %d, before-cursor new %d, removed %d, changed %d",
			last, counts["dev-000200a"], counts["dev-000000a"], counts["dev-000201"], counts["dev-000204"])
	}
	if !slices.IsSorted(got) {
		t.Error("results are not in device id order")
	}
}

func TestRunBadContinuation(t *testing.T) {
	f := fleetOf(100)
	q := mustParse(t, "SELECT * FROM devices WHERE connectionState = 'Disconnected'")
	other := mustParse(t, "SELECT * FROM devices WHERE connectionState = 'Connected'")
	agg := mustParse(t, "SELECT COUNT() AS n FROM devices GROUP BY tags.region")
	p, err := other.Run(f, 5, "")
	if err != nil || p.Continuation == "" {
		t.Fatalf("first page: %v %q", err, p.Continuation)
	}
	good := p.Continuation
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int, b byte) string {
		c := slices.Clone(raw)
		c[i] = b
		return base64.RawURLEncoding.EncodeToString(c)
	}
	notIssued := "x-ms-continuation: the token is not one this hub issued (%s); start the query again without x-ms-continuation"
	for _, tc := range []struct {
		q     *Query
		token string
		why   string
	}{
		{q, good, "x-ms-continuation: the token belongs to another query; send the same query text to continue, or start again without x-ms-continuation"},
		{agg, good, "x-ms-continuation: the token belongs to another query; send the same query text to continue, or start again without x-ms-continuation"},
		{other, "!!!", strings.Replace(notIssued, "%s", "not base64url", 1)},
		{other, good + "=", strings.Replace(notIssued, "%s", "not base64url", 1)},
		{other, "AAAA", strings.Replace(notIssued, "%s", "too short", 1)},
		{other, good[:12], strings.Replace(notIssued, "%s", "too short", 1)},
		{other, flip(0, 9), strings.Replace(notIssued, "%s", "unknown version", 1)},
		{other, flip(1, 'a'), strings.Replace(notIssued, "%s", "wrong kind", 1)},
		{other, base64.RawURLEncoding.EncodeToString(append(slices.Clone(raw[:10]), 0xff)), strings.Replace(notIssued, "%s", "bad count", 1)},
		{other, base64.RawURLEncoding.EncodeToString(append(slices.Clone(raw[:10]), 5)), strings.Replace(notIssued, "%s", "no position", 1)},
		{other, strings.Repeat("A", 2000), strings.Replace(notIssued, "%s", "2000 characters is too long", 1)},
	} {
		_, err := tc.q.Run(f, 5, tc.token)
		var ce *ContinuationError
		if !errors.As(err, &ce) || err.Error() != tc.why {
			t.Errorf("token %.30q to %s:\n got %v\nwant %s", tc.token, tc.q, err, tc.why)
		}
	}
	// The right query continues; an equivalent spelling is the same query.
	if _, err := mustParse(t, "select * from devices where connectionState='Connected'").Run(f, 5, good); err != nil {
		t.Errorf("same query, other spelling: %v", err)
	}
}

func TestRunEmpty(t *testing.T) {
	q := mustParse(t, "SELECT deviceId FROM devices WHERE status = 'nope'")
	p, err := q.Run(fleetOf(10), 10, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p.Items)
	if string(b) != "[]" || p.Continuation != "" || p.ItemType != ItemRaw {
		t.Errorf("empty result: %s, continuation %q, type %q", b, p.Continuation, p.ItemType)
	}
}

// TestRunAggregatePages: aggregates page over their rows; TOP limits rows.
func TestRunAggregatePages(t *testing.T) {
	f := fleetOf(1000)
	q := mustParse(t, "SELECT properties.reported.fw AS fw, tags.region AS region, COUNT() AS n FROM devices GROUP BY tags.region, properties.reported.fw")
	one, err := q.Run(f, 1000, "")
	if err != nil || one.Continuation != "" {
		t.Fatalf("one page: %v %q", err, one.Continuation)
	}
	if len(one.Items) != 16 { // 4 regions (one undefined) × 4 firmware versions
		t.Fatalf("%d groups, want 16", len(one.Items))
	}
	total := int64(0)
	for _, it := range one.Items {
		n, _ := it.(Row).Get("n")
		total += n.(int64)
	}
	if total != 1000 {
		t.Errorf("groups count %d devices, want 1000", total)
	}
	var paged []any
	for _, p := range runAll(t, q, f, 3) {
		if p.ItemType != ItemRaw {
			t.Errorf("item type %q", p.ItemType)
		}
		paged = append(paged, p.Items...)
	}
	a, _ := json.Marshal(paged)
	b, _ := json.Marshal(one.Items)
	if string(a) != string(b) {
		t.Errorf("paged rows differ from one page:\n%s\n%s", a, b)
	}
	top := mustParse(t, "SELECT TOP 5 tags.region AS region, COUNT() AS n FROM devices GROUP BY tags.region, properties.reported.fw")
	var sizes []int
	for _, p := range runAll(t, top, f, 2) {
		sizes = append(sizes, len(p.Items))
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Errorf("TOP 5 over pages of 2: %v", sizes)
	}
}

// TestRunConcurrent: one Query serves many requests at once (run with
// -race).
func TestRunConcurrent(t *testing.T) {
	f := fleetOf(500)
	queries := []*Query{
		mustParse(t, "SELECT * FROM devices WHERE connectionState = 'Disconnected'"),
		mustParse(t, "SELECT tags.region AS region, COUNT() AS n FROM devices GROUP BY tags.region"),
	}
	want := make([]int, len(queries))
	for i, q := range queries {
		for _, p := range runAll(t, q, f, 7) {
			want[i] += len(p.Items)
		}
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			q := queries[g%len(queries)]
			n, token := 0, ""
			for {
				p, err := q.Run(f, 7, token)
				if err != nil {
					errs <- err
					return
				}
				n += len(p.Items)
				if token = p.Continuation; token == "" {
					break
				}
			}
			if n != want[g%len(queries)] {
				errs <- errors.New("wrong number of items")
				return
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

package connlog_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
)

func TestResourceID(t *testing.T) {
	cases := []struct {
		res  connlog.Resource
		host string
		want string
	}{
		{connlog.Resource{}, "myhub.azure-devices.net",
			"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/TETHER/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/MYHUB"},
		{connlog.Resource{}, "localhost", "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/TETHER/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/LOCALHOST"},
		{connlog.Resource{}, "", "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/TETHER/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/TETHER"},
		{connlog.Resource{SubscriptionID: "abc", ResourceGroup: "Rg-1", Hub: "Factory"}, "ignored.example",
			"/SUBSCRIPTIONS/ABC/RESOURCEGROUPS/RG-1/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/FACTORY"},
	}
	for _, tc := range cases {
		if got := tc.res.ID(tc.host); got != tc.want {
			t.Errorf("%+v.ID(%q) = %s, want %s", tc.res, tc.host, got, tc.want)
		}
	}
}

func TestItemID(t *testing.T) {
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	a := connlog.ItemID(connlog.CategoryConnections, "d/1", 0, at)
	if !guid.MatchString(a) {
		t.Fatalf("ItemID %s is not a version-7 GUID", a)
	}
	// The scheme is stored data: a change would store a redelivered
	// entry again. This pins it (computed independently: 48-bit ms, then
	// SHA-256("tether/connlog\x00Connections\x00d/1\x000") with the
	// version and variant bits set).
	if want := "01972b5c-ee7b-75be-8ee6-ac781cb15ba5"; a != want {
		t.Fatalf("ItemID = %s, want %s (the id scheme changed)", a, want)
	}
	if a != connlog.ItemID(connlog.CategoryConnections, "d/1", 0, at) {
		t.Fatal("ItemID is not deterministic")
	}
	if ms := strings.ReplaceAll(a[:13], "-", ""); ms != fmt.Sprintf("%012x", at.UnixMilli()) {
		t.Errorf("ItemID %s does not start with the Unix milliseconds of %s (%012x)", a, at, at.UnixMilli())
	}
	for _, other := range []string{
		connlog.ItemID(connlog.CategoryConnections, "d/1", 1, at),
		connlog.ItemID(connlog.CategoryDeviceIdentityOperations, "d/1", 0, at),
		connlog.ItemID(connlog.CategoryConnections, "d/10", 0, at),
		connlog.ItemID(connlog.CategoryConnections+"d", "/1", 0, at),
	} {
		if other == a {
			t.Errorf("ItemID collision: %s", a)
		}
	}
	// Ids sort by time (to the millisecond), whatever the entry.
	prev := ""
	for i := range 100 {
		id := connlog.ItemID(connlog.CategoryConnections, fmt.Sprintf("dev-%d/%d", 99-i, i), 0, at.Add(time.Duration(i)*time.Millisecond))
		if id <= prev {
			t.Fatalf("ItemID %s of a later time sorts before %s", id, prev)
		}
		prev = id
	}
	if id := connlog.ItemID(connlog.CategoryConnections, "old", 0, time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)); !strings.HasPrefix(id, "00000000-0000-7") {
		t.Errorf("ItemID before 1970 = %s, want a zero time field", id)
	}
}

// TestStampAlternatingHubs: records of different resources and hub hosts,
// interleaved, each get their own resource columns.
func TestStampAlternatingHubs(t *testing.T) {
	a := connlog.Resource{SubscriptionID: "sub-a", ResourceGroup: "rg-a", Location: "westeurope"}
	b := connlog.Resource{SubscriptionID: "sub-b", TenantID: "tenant-b", Hub: "fixed"}
	for i := range 6 {
		r, host := a, "one.azure-devices.net"
		if i%2 == 1 {
			r = b
		}
		if i%3 == 2 {
			host = "two.azure-devices.net"
		}
		e := presence.ConnectionEvent{ID: fmt.Sprintf("d/%d", i), Kind: presence.Connected, Time: time.Now(), Hub: host, DeviceID: "d"}
		recs, err := connlog.FromConnectionEvent(r, e)
		if err != nil {
			t.Fatal(err)
		}
		got := recs[0]
		if got.ResourceID != r.ID(host) || got.Resource != r.HubName(host) || got.SubscriptionID != strings.ToLower(got.SubscriptionID) ||
			(r.SubscriptionID != "" && got.SubscriptionID != r.SubscriptionID) || (r.TenantID != "" && got.TenantID != r.TenantID) ||
			(r.Location != "" && got.Location != r.Location) {
			t.Errorf("event %d (%+v, %s): resource columns %q %q %q %q %q", i, r, host, got.ResourceID, got.Resource, got.SubscriptionID, got.TenantID, got.Location)
		}
	}
}

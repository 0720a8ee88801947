package connlog_test

import (
	"regexp"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
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
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a := connlog.ItemID(connlog.CategoryConnections, "d/1", 0)
	if !guid.MatchString(a) {
		t.Fatalf("ItemID %s is not a version-8 GUID", a)
	}
	if a != connlog.ItemID(connlog.CategoryConnections, "d/1", 0) {
		t.Fatal("ItemID is not deterministic")
	}
	for _, other := range []string{
		connlog.ItemID(connlog.CategoryConnections, "d/1", 1),
		connlog.ItemID(connlog.CategoryDeviceIdentityOperations, "d/1", 0),
		connlog.ItemID(connlog.CategoryConnections, "d/10", 0),
		connlog.ItemID(connlog.CategoryConnections+"d", "/1", 0),
	} {
		if other == a {
			t.Errorf("ItemID collision: %s", a)
		}
	}
}

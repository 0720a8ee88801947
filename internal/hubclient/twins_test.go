package hubclient

import (
	"strings"
	"testing"
)

func TestParseHubError(t *testing.T) {
	cases := []struct {
		body   string
		code   string
		number int
		inMsg  string
	}{
		{`{"Message":"ErrorCode:DeviceNotOnline;404103 DeviceNotOnline: the device is not connected","ExceptionMessage":"Tracking ID:x"}`, "DeviceNotOnline", 404103, "not connected"},
		{`{"Message":"ErrorCode:GatewayTimeout;504101 GatewayTimeout: the device did not answer"}`, "GatewayTimeout", 504101, "did not answer"},
		{`{"Message":"ErrorCode:DeviceNotOnline;the device is away"}`, "DeviceNotOnline", 404103, "away"},
		{`{"Message":"ErrorCode:PreconditionFailed;etag mismatch"}`, "PreconditionFailed", 412002, "etag"},
		{`{"Message":"ErrorCode:Weird;nothing numeric"}`, "Weird", 0, "nothing numeric"},
		{`upstream connect error`, "", 0, "upstream connect error"},
		{``, "", 0, ""},
	}
	for _, c := range cases {
		e := parseHubError("POST", "/twins/x/methods", 404, []byte(c.body))
		if e.Code != c.code || e.Number != c.number || !strings.Contains(e.Message, c.inMsg) {
			t.Errorf("%s: %+v", c.body, e)
		}
		if !strings.Contains(e.Error(), "404") {
			t.Errorf("error text %q lacks the status", e.Error())
		}
	}
	if !IsHubError(parseHubError("POST", "/p", 504, []byte(`{"Message":"ErrorCode:GatewayTimeout;x"}`)), 504101) {
		t.Error("IsHubError")
	}
}

// FuzzParseHubError: any body gives an error with a bounded message and
// never panics.
func FuzzParseHubError(f *testing.F) {
	for _, s := range []string{`{"Message":"ErrorCode:DeviceNotOnline;404103 x"}`, `{"Message":"ErrorCode:;"}`, `ErrorCode:`, `{"Message":1}`, "\xff\xfe", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := parseHubError("GET", "/twins/a", 500, body)
		if len(e.Message) > 510 || e.Status != 500 || (e.Number != 0 && (e.Number < 400000 || e.Number > 599999)) {
			t.Fatalf("%q → %+v", body, e)
		}
	})
}

package sas

import (
	"errors"
	"testing"
)

func TestParseUsername(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Username
	}{
		// What the Node SDK sends (reference/azure-sdk-wire.md §2).
		{"localhost/dev1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)",
			Username{Host: "localhost", DeviceID: "dev1", APIVersion: "2021-04-12", DeviceClientType: "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)"}},
		{"localhost/dev1/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1&DeviceClientType=x",
			Username{Host: "localhost", DeviceID: "dev1", APIVersion: "2021-04-12", ModelID: "dtmi:com:example:Thermostat;1", DeviceClientType: "x"}},
		{"hub/dev1/mod1/?api-version=2021-04-12", Username{Host: "hub", DeviceID: "dev1", ModuleID: "mod1", APIVersion: "2021-04-12"}},
		// Legacy forms without '?'.
		{"hub/dev1/api-version=2016-11-14&DeviceClientType=c%2F1", Username{Host: "hub", DeviceID: "dev1", APIVersion: "2016-11-14", DeviceClientType: "c/1"}},
		{"hub/dev1/DeviceClientType=azure-iot-device%2F1.0.1", Username{Host: "hub", DeviceID: "dev1", DeviceClientType: "azure-iot-device/1.0.1"}},
		// Device ids are verbatim.
		{"hub/dev%2Fx/?api-version=1", Username{Host: "hub", DeviceID: "dev%2Fx", APIVersion: "1"}},
	} {
		got, err := ParseUsername(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseUsername(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseUsernameErrors(t *testing.T) {
	for _, in := range []string{"", "justone", "/dev/?api-version=1", "hub//?a=1", "a/b/c/d/?x=1", "hub/dev/mod/junk"} {
		if _, err := ParseUsername(in); !errors.Is(err, ErrUsername) {
			t.Errorf("ParseUsername(%q) err = %v, want ErrUsername", in, err)
		}
	}
}

func FuzzParseUsername(f *testing.F) {
	f.Add("localhost/dev1/?api-version=2021-04-12&DeviceClientType=a%20b")
	f.Add("h/d/m/?model-id=%zz")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUsername(s)
		if err != nil {
			if !errors.Is(err, ErrUsername) {
				t.Fatalf("error %v is not ErrUsername", err)
			}
			return
		}
		if u.Host == "" || u.DeviceID == "" {
			t.Fatalf("accepted %q without host or device", s)
		}
	})
}

func TestConnectionString(t *testing.T) {
	cs, err := ParseConnectionString("HostName=h;DeviceId=d;SharedAccessKey=abc==")
	if err != nil || cs.SharedAccessKey != "abc==" || cs.DeviceID != "d" {
		t.Fatalf("%+v %v", cs, err)
	}
	if cs.String() != "HostName=h;DeviceId=d;SharedAccessKey=abc==" {
		t.Fatalf("String() = %q", cs.String())
	}
	for _, bad := range []string{"", "HostName=h", "HostName=h;SharedAccessKey=k", "HostName=h;DeviceId=d;SharedAccessKey=k;DeviceId=e", "HostName=h;Foo=1;DeviceId=d;SharedAccessKey=k", "junk"} {
		if _, err := ParseConnectionString(bad); err == nil {
			t.Errorf("ParseConnectionString(%q) accepted", bad)
		}
	}
}

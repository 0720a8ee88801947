package diag_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/diag"
)

func TestValidateListsEveryProblem(t *testing.T) {
	s := diag.Setting{
		Name:       "bad name!",
		Categories: []string{"Connections", "Telemetry", "connections"},
		Workspace:  &diag.Workspace{RetentionDays: -1},
		Archive:    &diag.Archive{RetentionDays: 100000},
		NATS:       &diag.NATS{Subject: "tether.conn.x", RetentionDays: 400},
	}
	err := s.Validate()
	var ve *diag.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, diag.ErrInvalid) {
		t.Fatalf("Validate: %v, want a *ValidationError", err)
	}
	want := []string{"name", "categories[1]", "categories[2]", "workspace.retentionDays", "archive.retentionDays", "nats.subject", "nats.retentionDays"}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Field)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fields %v, want %v\n%v", got, want, err)
	}
}

func TestValidate(t *testing.T) {
	ok := []diag.Setting{
		{Name: "a", Categories: []string{"allLogs"}, Workspace: &diag.Workspace{}},
		{Name: "Ops_2", Categories: []string{"DeviceIdentityOperations", "Connections"}, Archive: &diag.Archive{RetentionDays: 365}},
		{Name: "s", Categories: []string{"ALLLOGS"}, NATS: &diag.NATS{Subject: "tether.logs.iothub", RetentionDays: 7}},
		{Name: "s", Categories: []string{"Connections"}, NATS: &diag.NATS{Subject: "iothub.logs"}},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := map[string]diag.Setting{
		"no categories":   {Name: "a", Workspace: &diag.Workspace{}},
		"no destination":  {Name: "a", Categories: []string{"allLogs"}},
		"empty name":      {Categories: []string{"allLogs"}, Workspace: &diag.Workspace{}},
		"built-in":        {Name: "a", Categories: []string{"allLogs"}, Workspace: &diag.Workspace{}, BuiltIn: true},
		"wildcard":        {Name: "a", Categories: []string{"allLogs"}, NATS: &diag.NATS{Subject: "logs.>"}},
		"empty token":     {Name: "a", Categories: []string{"allLogs"}, NATS: &diag.NATS{Subject: "logs..x"}},
		"system subject":  {Name: "a", Categories: []string{"allLogs"}, NATS: &diag.NATS{Subject: "$JS.API.x"}},
		"journal subject": {Name: "a", Categories: []string{"allLogs"}, NATS: &diag.NATS{Subject: "tether.registry.d1"}},
		"no subject":      {Name: "a", Categories: []string{"allLogs"}, NATS: &diag.NATS{}},
	}
	for name, s := range bad {
		if err := s.Validate(); !errors.Is(err, diag.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestRoutes(t *testing.T) {
	s := diag.Setting{Categories: []string{"connections"}}
	if !s.Routes("Connections") || s.Routes("DeviceIdentityOperations") {
		t.Error("Connections only")
	}
	if d := diag.Default(); !d.Routes("Connections") || !d.Routes("DeviceIdentityOperations") || d.Workspace == nil {
		t.Errorf("default %+v", d)
	}
}

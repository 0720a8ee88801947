package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

func writeJSONFile(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "devices.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (h *twinHub) deviceCount() int {
	h.t.Helper()
	return len(h.a.Registry().DeviceIDs())
}

func TestDeviceImportCLI(t *testing.T) {
	h := startTwinHub(t)
	h.create("existing")

	// 250 creates, 100 per call; the one for an existing device fails
	// alone, the others apply.
	entries := make([]map[string]any, 250)
	for i := range entries {
		entries[i] = map[string]any{"id": fmt.Sprintf("imp-%03d", i), "importMode": "create"}
	}
	entries[130]["id"] = "existing"
	entries[7]["status"] = "disabled"
	entries[8]["authentication"] = map[string]any{"type": "sas", "symmetricKey": map[string]string{
		"primaryKey": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "secondaryKey": "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="}}
	file := writeJSONFile(t, entries)
	out, errOut, err := h.runIn("", "device", "import", file)
	wantExit(t, err, exitImportFailures, "1 of 250 entries failed (listed above); the others were applied")
	if !strings.HasPrefix(out, "Applied 249 of 250 entries; 1 failed:\nENTRY  DEVICE ID  MODE    CODE    ERROR\n131    existing   create  409001  a device with id 'existing' is already registered\n") {
		t.Errorf("summary:\n%s", out)
	}
	if !strings.Contains(errOut, "tether: 250/250 entries sent, 1 failed\n") {
		t.Errorf("progress: %q", errOut)
	}
	reg := h.a.Registry()
	if d, ok := reg.Device("imp-007"); !ok || d.Status != registry.Disabled {
		t.Errorf("imp-007: %+v %v", d, ok)
	}
	if d, ok := reg.Device("imp-008"); !ok || d.Authentication.SymmetricKey.PrimaryKey != "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" {
		t.Errorf("imp-008 keys: %+v", d.Authentication)
	}
	if _, ok := reg.Device("imp-249"); !ok {
		t.Error("the last batch was not applied")
	}
	if n := h.deviceCount(); n != 250 {
		t.Fatalf("%d devices after the import, want 250", n)
	}

	// A file with problems: all listed, nothing sent.
	bad := []any{
		map[string]any{"id": "n1", "importMode": "frob"},
		map[string]any{"importMode": "create"},
		5,
		map[string]any{"id": "bad id", "importMode": "create"},
		map[string]any{"id": "n2", "importMode": "create", "status": 5},
		map[string]any{"id": "imp-001", "importMode": "updateIfMatchETag"},
		map[string]any{"id": "n3"},
		map[string]any{"id": "n4", "deviceId": "n5", "importMode": "create"},
		map[string]any{"id": "n6", "importMode": "create"},
	}
	_, err = h.run(t, "device", "import", writeJSONFile(t, bad))
	for _, want := range []string{"devices.json: 8 problems, nothing was sent:",
		"\n  entry 1 (n1): importMode \"frob\" is not one of create, createOrUpdate,",
		"\n  entry 2: no \"id\"",
		"\n  entry 3: want a device object, got a number",
		"\n  entry 4 (bad id): deviceId \"bad id\" has the character ' '",
		"\n  entry 5 (n2): status: expected a string, got a JSON number",
		"\n  entry 6 (imp-001): importMode updateIfMatchETag needs the device's \"eTag\"",
		"\n  entry 7 (n3): no importMode: give one of",
		"\n  entry 8: id \"n4\" and deviceId \"n5\" differ"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad file: error lacks %q:\n%v", want, err)
		}
	}
	if _, ok := reg.Device("n6"); ok || h.deviceCount() != 250 {
		t.Error("a file with problems changed the registry")
	}

	// --dry-run checks and sends nothing.
	retire := []map[string]any{}
	for i := range 120 {
		retire = append(retire, map[string]any{"deviceId": fmt.Sprintf("imp-%03d", i)})
	}
	retireFile := writeJSONFile(t, retire)
	out = h.mustRun(t, "device", "import", retireFile, "--mode", "DELETE", "--dry-run")
	if out != retireFile+": 120 entries, all valid (delete 120); nothing sent (--dry-run)\n" || h.deviceCount() != 250 {
		t.Errorf("dry run: %q, %d devices", out, h.deviceCount())
	}
	// From standard input, --mode for entries without one, -o json.
	data, _ := os.ReadFile(retireFile)
	out, _, err = h.runIn(string(data), "-o", "json", "device", "bulk", "-", "--mode", "delete")
	var sum importSummary
	if err != nil || json.Unmarshal([]byte(out), &sum) != nil || sum.Entries != 120 || sum.Succeeded != 120 || sum.Modes["delete"] != 120 || len(sum.Errors) != 0 {
		t.Fatalf("delete from stdin: %v\n%s", err, out)
	}
	if h.deviceCount() != 130 {
		t.Fatalf("%d devices after deleting 120 of 250", h.deviceCount())
	}

	// etag-conditional modes: a stale etag fails that entry with 412002.
	d, _ := reg.Device("imp-200")
	_, err = reg.Replace(context.Background(), registry.Device{DeviceID: "imp-200", Status: registry.Disabled, Authentication: d.Authentication}, "*", "test")
	if err != nil {
		t.Fatal(err)
	}
	cond := []map[string]any{
		{"id": "imp-200", "importMode": "deleteIfMatchETag", "eTag": d.ETag},
		{"id": "imp-201", "importMode": "createOrUpdate", "status": "disabled"},
	}
	out, err = h.run(t, "-o", "json", "device", "import", writeJSONFile(t, cond))
	wantExit(t, err, exitImportFailures)
	if json.Unmarshal([]byte(out), &sum) != nil || len(sum.Errors) != 1 || sum.Errors[0].Entry != 1 || sum.Errors[0].ErrorCode != 412002 || sum.Errors[0].ImportMode != "deleteIfMatchETag" {
		t.Errorf("stale etag: %s", out)
	}
	if d, _ := reg.Device("imp-201"); d.Status != registry.Disabled {
		t.Error("the other entry of the call was not applied")
	}

	// Every entry failing says so.
	_, err = h.run(t, "device", "import", writeJSONFile(t, []map[string]any{{"id": "ghost", "importMode": "delete"}}))
	wantExit(t, err, exitImportFailures, "all 1 entries failed")

	for _, tc := range []struct {
		content, msg string
	}{
		{`[{"id":"a","importMode":"create"},`, "not valid JSON at line 1, column 35: unexpected end of JSON input"},
		{"[\n  {\"id\": \"a\" \"importMode\": \"create\"}\n]", "not valid JSON at line 2, column 14: invalid character '\"' after object key:value pair"},
		{`{"id":"a"}`, `want a JSON array of devices ([{"id":…,"importMode":…}, …]), got an object`},
		{`[]`, "the array is empty"},
		{``, "empty: give a JSON value"},
	} {
		p := filepath.Join(t.TempDir(), "f.json")
		os.WriteFile(p, []byte(tc.content), 0o600)
		_, err := h.run(t, "device", "import", p)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("file %q: %v, want %q", tc.content, err, tc.msg)
		}
	}
	if _, err := h.run(t, "device", "import", "/nonexistent.json"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := h.run(t, "device", "import", retireFile, "--mode", "upsert"); err == nil || !strings.Contains(err.Error(), `--mode "upsert": use one of create,`) {
		t.Errorf("bad --mode: %v", err)
	}
	// A call the hub refuses as a whole (a policy without RegistryWrite)
	// stops the import and says what was applied.
	svc, _ := reg.Policy("service")
	cs := sas.ConnectionString{HostName: "localhost", SharedAccessKeyName: "service", SharedAccessKey: svc.PrimaryKey}.String()
	out, err = h.run(t, "--connection-string", cs, "device", "import", file)
	wantExit(t, err, 1, "entries 1-100 could not be applied: hub answered 401", "lacks RegistryWrite", "none from entry 1 on were applied")
	if out != "Applied none of 250 entries.\n" {
		t.Errorf("refused import: %q", out)
	}
	if h.deviceCount() != 130 {
		t.Errorf("%d devices at the end, want 130", h.deviceCount())
	}
}

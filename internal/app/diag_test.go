package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/diag"
)

// archiveFile is the hour file of category for a record of the test hub
// (hub "localhost", default resource names) at t.
func archiveFile(root, setting, category string, t time.Time) string {
	t = t.UTC()
	return filepath.Join(root, setting, "insights-logs-"+strings.ToLower(category), "resourceId=",
		"SUBSCRIPTIONS", "00000000-0000-0000-0000-000000000000", "RESOURCEGROUPS", "TETHER",
		"PROVIDERS", "MICROSOFT.DEVICES", "IOTHUBS", "LOCALHOST",
		fmt.Sprintf("y=%04d", t.Year()), fmt.Sprintf("m=%02d", int(t.Month())), fmt.Sprintf("d=%02d", t.Day()),
		fmt.Sprintf("h=%02d", t.Hour()), "m=00", "PT1H.json")
}

// readLines parses a JSON-lines archive file.
func readLines(path string) ([]diag.StorageRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []diag.StorageRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r diag.StorageRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: line %q: %w", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// TestDiagnosticSettingRoutesToArchiveAndNATS: a setting created while the
// hub runs sends what devices do to the workspace, to hourly archive files
// in Azure's layout and shape, and to a NATS subject; the archive's
// retention deletes old hour files by the injected clock.
func TestDiagnosticSettingRoutesToArchiveAndNATS(t *testing.T) {
	var offset atomic.Int64 // the injected clock runs this far ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	dir := t.TempDir()
	h := startHubWith(t, dir, func(c *app.Config) { c.Clock = clock; c.RetentionEvery = 20 * time.Millisecond })
	ctx := context.Background()
	root := filepath.Join(dir, "archive")

	var mu sync.Mutex
	var published []*nats.Msg
	sub, err := h.Journal().NC.Subscribe("iothub.logs", func(m *nats.Msg) {
		mu.Lock()
		published = append(published, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := h.Journal().NC.Flush(); err != nil {
		t.Fatal(err)
	}

	// An hour file from 12 hours ago (kept by a 1-day retention) and one
	// from last year (deleted at once).
	recent := archiveFile(root, "ops", connlog.CategoryConnections, time.Now().Add(-12*time.Hour))
	old := archiveFile(root, "ops", connlog.CategoryConnections, time.Now().AddDate(-1, 0, 0))
	for _, p := range []string{recent, old} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(`{"time":"x"}`+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := h.Diag().Create(ctx, diag.Setting{
		Name: "ops", Categories: []string{diag.AllLogs}, Workspace: &diag.Workspace{},
		Archive: &diag.Archive{RetentionDays: 1}, NATS: &diag.NATS{Subject: "iothub.logs"},
	}); err != nil {
		t.Fatal(err)
	}
	key := h.device("arch-1")
	c, rc := h.v3("arch-1", username("arch-1"), h.token("arch-1", key, time.Hour))
	if c == nil {
		t.Fatalf("connect refused: %d", rc)
	}
	c.Disconnect(100)
	recs := h.waitLogs("arch-1", 2)

	// The archive: one line per record, in the hour file of its time.
	for _, r := range recs {
		path := archiveFile(root, "ops", connlog.CategoryConnections, r.TimeGenerated)
		eventually(t, 10*time.Second, func() error {
			lines, err := readLines(path)
			if err != nil {
				return err
			}
			for _, l := range lines {
				if l.OperationName == r.OperationName && strings.Contains(l.Properties, `"deviceId":"arch-1"`) {
					if l.Category != "Connections" || l.ResourceID != r.ResourceID || l.Level != r.Level || l.Location != r.Location || l.Properties != r.Properties {
						return fmt.Errorf("line %+v does not match record %+v", l, r)
					}
					if tm, err := diag.ParseStorageTime(l.Time); err != nil || !tm.Equal(r.TimeGenerated.Truncate(100*time.Nanosecond)) {
						return fmt.Errorf("line time %q (%v), record %s", l.Time, err, r.TimeGenerated)
					}
					return nil
				}
			}
			return fmt.Errorf("%s has no %s line of arch-1 (%d lines)", path, r.OperationName, len(lines))
		})
	}
	// The registry write is a DeviceIdentityOperations record in its own container.
	created := archiveFile(root, "ops", connlog.CategoryDeviceIdentityOperations, recs[0].TimeGenerated)
	eventually(t, 10*time.Second, func() error {
		// The create may fall in the hour before the connect.
		for _, p := range []string{created, archiveFile(root, "ops", connlog.CategoryDeviceIdentityOperations, recs[0].TimeGenerated.Add(-time.Hour))} {
			lines, _ := readLines(p)
			for _, l := range lines {
				if l.OperationName == "create" && strings.Contains(l.Properties, `"deviceId":"arch-1"`) {
					return nil
				}
			}
		}
		return fmt.Errorf("no create record of arch-1 in %s", created)
	})

	// NATS: the same records, with their _ItemId as message id.
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		ids := map[string]bool{}
		for _, m := range published {
			ids[m.Header.Get(jetstream.MsgIDHeader)] = true
		}
		for _, r := range recs {
			if !ids[r.ItemID] {
				return fmt.Errorf("record %s (%s) not published (%d messages)", r.ItemID, r.OperationName, len(published))
			}
		}
		return nil
	})
	// and every destination acknowledged what it took: a publish that
	// reached the subscriber but whose flush failed would stay pending.
	eventually(t, 10*time.Second, func() error {
		if n, err := h.Diag().Lag(ctx); err != nil || n != 0 {
			return fmt.Errorf("diagnostic destinations lag %d messages (%v)", n, err)
		}
		return nil
	})

	// Retention by the injected clock: last year's file went at once, the
	// recent one stays until the clock moves two days on.
	eventually(t, 10*time.Second, func() error {
		if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("old hour file still there: %v", err)
		}
		return nil
	})
	if _, err := os.Stat(recent); err != nil {
		t.Fatalf("the hour file of 12 hours ago was deleted: %v", err)
	}
	offset.Store(int64(48 * time.Hour))
	eventually(t, 10*time.Second, func() error {
		if _, err := os.Stat(recent); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hour file of 12 hours ago still there 2 days later: %v", err)
		}
		return nil
	})
}

// TestDiagnosticSettingsReplaceTheDefault: with no setting the workspace
// gets everything; a setting without the workspace replaces the default
// (new records go only to its archive); deleting it brings the default
// back, all without a restart.
func TestDiagnosticSettingsReplaceTheDefault(t *testing.T) {
	dir := t.TempDir()
	h := startHubWith(t, dir, nil)
	ctx := context.Background()
	list, err := h.Diag().List(ctx)
	if err != nil || len(list) != 1 || !list[0].BuiltIn || list[0].Workspace == nil {
		t.Fatalf("settings of a new hub: %+v, %v; want the built-in default", list, err)
	}
	if err := h.Diag().Delete(ctx, diag.DefaultName); !errors.Is(err, diag.ErrBuiltIn) {
		t.Errorf("deleting the built-in default: %v, want ErrBuiltIn", err)
	}
	connect := func(id string) {
		key := h.device(id)
		c, rc := h.v3(id, username(id), h.token(id, key, time.Hour))
		if c == nil {
			t.Fatalf("connect %s refused: %d", id, rc)
		}
	}
	connect("before")
	h.waitLogs("before", 1)

	if _, err := h.Diag().Create(ctx, diag.Setting{Name: "cold", Categories: []string{"Connections"}, Archive: &diag.Archive{}}); err != nil {
		t.Fatal(err)
	}
	connect("during")
	eventually(t, 10*time.Second, func() error {
		var found bool
		err := filepath.WalkDir(filepath.Join(dir, "archive", "cold"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			found = found || strings.Contains(string(b), `\"deviceId\":\"during\"`)
			return err
		})
		if !found {
			return fmt.Errorf("no archive line of device during (%v)", err)
		}
		return nil
	})
	if recs, err := h.Logs().Find(ctx, connlog.Filter{DeviceID: "during"}); err != nil || len(recs) != 0 {
		t.Errorf("the workspace got %d records of device during (%v); the setting routes only to the archive", len(recs), err)
	}

	if err := h.Diag().Delete(ctx, "cold"); err != nil {
		t.Fatal(err)
	}
	connect("after")
	h.waitLogs("after", 1)
}

// TestDiagnosticSettingsAPI: PUT creates (201) then replaces (200),
// unknown fields and bad values are 400 with every problem listed, and the
// built-in default cannot be deleted.
func TestDiagnosticSettingsAPI(t *testing.T) {
	h := startHub(t)
	const path = "/api/v1/diagnostic-settings"
	if st, body := h.api("GET", path, nil); st != 200 || !strings.Contains(string(body), `"builtIn":true`) {
		t.Fatalf("list: %d %s", st, body)
	}
	if st, body := h.api("DELETE", path+"/default", nil); st != 409 || !strings.Contains(string(body), "BuiltInDiagnosticSetting") {
		t.Errorf("delete default: %d %s", st, body)
	}
	def := map[string]any{"categories": []string{"Connections"}, "archive": map[string]any{"retentionDays": 3}}
	if st, body := h.api("PUT", path+"/Arch", def); st != 201 || !strings.Contains(string(body), `"name":"Arch"`) {
		t.Fatalf("PUT new: %d %s", st, body)
	}
	def["workspace"] = map[string]any{}
	if st, body := h.api("PUT", path+"/arch", def); st != 200 || !strings.Contains(string(body), `"workspace"`) {
		t.Fatalf("PUT existing: %d %s", st, body)
	}
	if st, body := h.api("POST", path, map[string]any{"name": "x", "categories": []string{"allLogs"}, "workspace": map[string]any{}, "colour": "red"}); st != 400 || !strings.Contains(string(body), "colour") {
		t.Errorf("unknown field: %d %s", st, body)
	}
	st, body := h.api("POST", path, map[string]any{"name": "no good", "categories": []string{}, "nats": map[string]any{"subject": "a.*"}})
	var inv struct {
		Error struct {
			Details []diag.FieldError `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &inv); st != 400 || err != nil || len(inv.Error.Details) != 3 {
		t.Errorf("invalid: %d %s", st, body)
	}
	if st, body := h.api("GET", path+"/nothing", nil); st != 404 || !strings.Contains(string(body), "DiagnosticSettingNotFound") {
		t.Errorf("get missing: %d %s", st, body)
	}
	if st, _ := h.api("DELETE", path+"/ARCH", nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
}

package app_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	diagkv "github.com/tether-hub/tether/internal/diag/kvstore"
)

// archived reports whether the archive of setting on h holds a record
// of device id (the properties are a JSON string inside each line).
func (h *hub) archived(setting, id string) (bool, error) {
	var found bool
	err := filepath.WalkDir(filepath.Join(h.dir, "archive", setting), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		found = found || strings.Contains(string(b), `\"deviceId\":\"`+id+`\"`)
		return err
	})
	if os.IsNotExist(err) {
		return false, nil
	}
	return found, err
}

// metricValue is the value of h's /metrics line for name (without
// labels); -1 without one.
func (h *hub) metricValue(name string) float64 {
	h.t.Helper()
	l := h.metricLine(name)
	v, err := strconv.ParseFloat(strings.TrimPrefix(l, name+" "), 64)
	if l == "" || err != nil {
		return -1
	}
	return v
}

// workspaced counts h's workspace records of device id in category.
func (h *hub) workspaced(category, id string) (int, error) {
	recs, err := h.Logs().Find(context.Background(), connlog.Filter{DeviceID: id, Category: category})
	return len(recs), err
}

// TestClusterDiagnosticSettingsApplyOnEveryNode: diagnostic settings
// are cluster-wide. A setting created, changed and deleted through node
// 1's API routes the records of devices on the other nodes on every node
// (each node keeps its workspace and archive from the whole journal); a
// stored revision that is not a valid setting is refused on every node,
// which keep the setting in force.
func TestClusterDiagnosticSettingsApplyOnEveryNode(t *testing.T) {
	hubs := startCluster(t)
	ctx := context.Background()
	const path = "/api/v1/diagnostic-settings/cold"

	// synced waits until every node has applied revision rev of the
	// settings bucket (the nodes apply it from their watch).
	synced := func(rev uint64) {
		t.Helper()
		eventually(t, 60*time.Second, func() error {
			for i, h := range hubs {
				if got := h.Diag().Applied(); got < rev {
					return fmt.Errorf("node %d applied revision %d of the settings, want %d", i+1, got, rev)
				}
			}
			return nil
		})
	}
	// connect makes device id (through node 1) and connects it to node.
	connect := func(id string, node int) {
		t.Helper()
		key := hubs[0].device(id)
		waitDevice(t, hubs, id)
		h := hubs[node-1]
		c, rc := h.v3(id, username(id), h.token(id, key, time.Hour))
		if c == nil {
			t.Fatalf("connect %s to node %d refused: %d", id, node, rc)
		}
		t.Cleanup(func() { c.Disconnect(0) })
	}
	// onEvery waits for cond on every node.
	onEvery := func(what string, cond func(h *hub) error) {
		t.Helper()
		for i, h := range hubs {
			eventually(t, 60*time.Second, func() error {
				if err := cond(h); err != nil {
					return fmt.Errorf("node %d, %s: %w", i+1, what, err)
				}
				return nil
			})
		}
	}
	// caughtUp waits until every node's destinations have taken the
	// journal's records so far: what a destination lacks then, it was
	// not sent.
	caughtUp := func() {
		t.Helper()
		onEvery("destinations caught up", func(h *hub) error {
			if n, err := h.Diag().Lag(ctx); err != nil || n != 0 {
				return fmt.Errorf("lag %d (%v)", n, err)
			}
			return nil
		})
	}
	inArchive := func(id string) func(h *hub) error {
		return func(h *hub) error {
			if ok, err := h.archived("cold", id); err != nil || !ok {
				return fmt.Errorf("no archive line of %s (%v)", id, err)
			}
			return nil
		}
	}
	notInArchive := func(id string) func(h *hub) error {
		return func(h *hub) error {
			if ok, err := h.archived("cold", id); err != nil || ok {
				return fmt.Errorf("archive lines of %s: %v (%v), want none", id, ok, err)
			}
			return nil
		}
	}
	inWorkspace := func(category, id string, want bool) func(h *hub) error {
		return func(h *hub) error {
			n, err := h.workspaced(category, id)
			if err != nil {
				return err
			}
			if (n > 0) != want {
				return fmt.Errorf("%d %s records of %s in the workspace, want them: %v", n, category, id, want)
			}
			return nil
		}
	}

	// Created on node 1: archive only, so every node archives the
	// records of a device on node 2 and its workspace gets none.
	if st, body := hubs[0].api("PUT", path, map[string]any{"categories": []string{"Connections"}, "archive": map[string]any{}}); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	synced(hubs[0].Diag().Applied())
	connect("d-create", 2)
	onEvery("archived", inArchive("d-create"))
	caughtUp()
	onEvery("workspace", inWorkspace("Connections", "d-create", false))
	for i, h := range hubs {
		if st, body := h.api("GET", path, nil); st != 200 || !strings.Contains(string(body), `"archive"`) {
			t.Errorf("node %d serves the setting as %d %s", i+1, st, body)
		}
	}

	// Changed on node 1 to the workspace only: every node's workspace
	// gets the Connections records of a device on node 3, the archive
	// and the other categories nothing.
	if st, body := hubs[0].api("PUT", path, map[string]any{"categories": []string{"Connections"}, "workspace": map[string]any{}}); st != 200 {
		t.Fatalf("update: %d %s", st, body)
	}
	synced(hubs[0].Diag().Applied())
	connect("d-update", 3)
	onEvery("workspace", inWorkspace("Connections", "d-update", true))
	caughtUp()
	onEvery("archive", notInArchive("d-update"))
	onEvery("identity records", inWorkspace("DeviceIdentityOperations", "d-update", false))

	// A revision this version cannot apply (a category it does not know,
	// archive only) written to the bucket: every node refuses it and
	// keeps routing by the workspace-only revision.
	kv, err := hubs[0].Journal().JS.KeyValue(ctx, diagkv.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "cold", []byte(`{"name":"cold","categories":["FutureCategory"],"archive":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	synced(rev)
	// /metrics shows it on every node: the revision applied and the
	// refusal counted.
	for i, h := range hubs {
		if n := h.metricValue("tether_diagnostic_settings_refused_total"); n < 1 {
			t.Errorf("node %d: tether_diagnostic_settings_refused_total %v after the refused revision %d", i+1, n, rev)
		}
		if n := h.metricValue("tether_diagnostic_settings_revision"); n < float64(rev) {
			t.Errorf("node %d: tether_diagnostic_settings_revision %v, want at least %d", i+1, n, rev)
		}
	}
	connect("d-refused", 2)
	onEvery("workspace", inWorkspace("Connections", "d-refused", true))
	caughtUp()
	onEvery("archive", notInArchive("d-refused"))

	// Deleted on node 1 (its stored value is the refused one): the
	// bucket holds no setting, so the built-in default (every category
	// to the workspace) applies on every node.
	if st, body := hubs[0].api("DELETE", path, nil); st != 204 && st != 200 {
		t.Fatalf("delete: %d %s", st, body)
	}
	synced(hubs[0].Diag().Applied())
	connect("d-delete", 3)
	onEvery("workspace", inWorkspace("Connections", "d-delete", true))
	onEvery("identity records", inWorkspace("DeviceIdentityOperations", "d-delete", true))
	caughtUp()
	onEvery("archive", notInArchive("d-delete"))
}

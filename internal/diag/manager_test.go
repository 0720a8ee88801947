package diag_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/diag"
	"github.com/tether-hub/tether/internal/diag/kvstore"
	"github.com/tether-hub/tether/internal/journal"
)

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// archived reads every line under an archive root, by container
// (insights-logs-<category>).
func archived(t *testing.T, root string) map[string][]diag.StorageRecord {
	t.Helper()
	out := map[string][]diag.StorageRecord{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		container, _, _ := strings.Cut(rel, string(filepath.Separator))
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r diag.StorageRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			out[container] = append(out[container], r)
		}
		return sc.Err()
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// ops makes n operations of each category, from start, named prefix-i.
func ops(prefix string, start time.Time, n int) []journal.Operation {
	var out []journal.Operation
	for i := range n {
		at := start.Add(time.Duration(i) * time.Millisecond)
		base := journal.Operation{Time: at, Hub: "myhub.azure-devices.net", DeviceID: fmt.Sprintf("dev-%d", i), Status: 200,
			DurationMs: 2, SDKVersion: "2021-04-12", Caller: "service"}
		for _, k := range []struct{ cat, name string }{
			{journal.CategoryD2CTwinOperations, journal.OpGet}, {journal.CategoryC2DTwinOperations, journal.OpUpdate},
			{journal.CategoryTwinQueries, journal.OpQuery}, {journal.CategoryDirectMethods, journal.OpSend},
			{journal.CategoryAdministrative, journal.OpDiagnosticSettingWrite},
		} {
			op := base
			op.ID, op.Category, op.OperationName = fmt.Sprintf("%s-%s-%d", prefix, k.cat, i), k.cat, k.name
			if k.cat == journal.CategoryTwinQueries {
				op.DeviceID, op.Query = "", "SELECT * FROM devices"
			}
			if k.cat == journal.CategoryAdministrative {
				op.DeviceID, op.Target, op.After = "", fmt.Sprintf("setting-%d", i), json.RawMessage(`{"name":"x"}`)
			}
			if k.cat == journal.CategoryDirectMethods && i%2 == 1 {
				op.Status, op.ErrorCode = 404, "404103"
			}
			out = append(out, op)
		}
	}
	return out
}

// openStores opens what a Manager works on, in dir: a journal, a SQLite
// workspace and the settings bucket (closed when t ends).
func openStores(t *testing.T, dir string) (*journal.Journal, *sqlite.Store, *kvstore.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: filepath.Join(dir, "journal")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	ws, err := sqlite.Open(ctx, filepath.Join(dir, "logs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	settings, err := kvstore.New(ctx, j.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	return j, ws, settings
}

// A setting routes the operation categories it names, and allLogs routes
// them all: the workspace (allLogs) gets every operation, an archive set
// to DirectMethods only that category's records, in its Azure container;
// moving the archive to TwinQueries deletes its DirectMethods consumer,
// keeps its records, and routes the queries from then on.
func TestManagerRoutesOperationCategories(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, ws, settings := openStores(t, dir)
	root := filepath.Join(dir, "archive")
	m, err := diag.NewManager(diag.Options{JS: j.JS, NC: j.NC, Store: settings, Workspace: ws, ArchiveDir: root,
		MaxWait: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	if _, err := m.Create(ctx, diag.Setting{Name: "all", Categories: []string{diag.AllLogs}, Workspace: &diag.Workspace{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, diag.Setting{Name: "methods", Categories: []string{"directmethods"}, Archive: &diag.Archive{}}); err != nil {
		t.Fatal(err)
	}
	publish := func(ops []journal.Operation) {
		p := journal.NewPublisher(j.JS, len(ops), slog.New(slog.DiscardHandler))
		for _, op := range ops {
			if err := p.Publish(journal.OperationMsg(op)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(ctx); err != nil || p.Failed() != 0 {
			t.Fatalf("publish: %v, %d failed", err, p.Failed())
		}
	}
	start := time.Now().UTC().Truncate(time.Millisecond)
	first := ops("a", start, 10)
	publish(first)

	count := func(category string) int {
		rs, err := ws.Find(ctx, connlog.Filter{Category: category})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	eventually(t, func() error {
		for _, c := range journal.OperationCategories {
			if n := count(c); n != 10 {
				return fmt.Errorf("workspace has %d %s records, want 10", n, c)
			}
		}
		return nil
	})
	eventually(t, func() error {
		got := archived(t, filepath.Join(root, "methods"))
		if len(got) != 1 || len(got["insights-logs-directmethods"]) != 10 {
			return fmt.Errorf("archive containers: %d; DirectMethods lines %d, want only insights-logs-directmethods with 10", len(got), len(got["insights-logs-directmethods"]))
		}
		errs := 0
		for _, r := range got["insights-logs-directmethods"] {
			if r.Category != "DirectMethods" || r.OperationName != "send" || r.DurationMs == nil || *r.DurationMs != 2 {
				return fmt.Errorf("line %+v", r)
			}
			if r.Level == "Error" {
				errs++
				if r.ResultType != "404103" || r.ResultDescription != "DeviceNotOnline" {
					return fmt.Errorf("error line %+v", r)
				}
			}
		}
		if errs != 5 {
			return fmt.Errorf("%d error lines, want 5", errs)
		}
		return nil
	})
	consumers := func() []string {
		st, err := j.JS.Stream(ctx, journal.StreamOps)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for info := range st.ListConsumers(ctx).Info() {
			// One consumer per writer on TETHER_OPS, filtering its
			// categories' subjects.
			names = append(names, fmt.Sprintf("%s%v", info.Name, len(info.Config.FilterSubjects)))
			if len(info.Config.FilterSubjects) == 1 {
				names[len(names)-1] = info.Name + ":" + info.Config.FilterSubjects[0]
			}
		}
		slices.Sort(names)
		return names
	}
	want := []string{"connlog-ops5", "diag-methods-archive-ops:tether.ops.DirectMethods.*"}
	if got := consumers(); !slices.Equal(got, want) {
		t.Errorf("TETHER_OPS consumers %v, want %v", got, want)
	}

	if _, err := m.Update(ctx, diag.Setting{Name: "methods", Categories: []string{"TwinQueries"}, Archive: &diag.Archive{}}); err != nil {
		t.Fatal(err)
	}
	want = []string{"connlog-ops5", "diag-methods-archive-ops:tether.ops.TwinQueries.*"}
	if got := consumers(); !slices.Equal(got, want) {
		t.Errorf("after the update, TETHER_OPS consumers %v, want %v", got, want)
	}
	publish(ops("b", start.Add(time.Second), 10))
	eventually(t, func() error {
		got := archived(t, filepath.Join(root, "methods"))
		if len(got["insights-logs-directmethods"]) != 10 || len(got["insights-logs-twinqueries"]) != 10 || len(got) != 2 {
			return fmt.Errorf("archive: DirectMethods %d lines, TwinQueries %d, containers %d; want 10, 10 (only the new queries), 2",
				len(got["insights-logs-directmethods"]), len(got["insights-logs-twinqueries"]), len(got))
		}
		for _, c := range journal.OperationCategories {
			if n := count(c); n != 20 {
				return fmt.Errorf("workspace has %d %s records, want 20", n, c)
			}
		}
		return nil
	})
}

// allLogs and a named operation category validate; an unknown category
// is refused with the known ones listed.
func TestValidateOperationCategories(t *testing.T) {
	for _, c := range journal.OperationCategories {
		s := diag.Setting{Name: "x", Categories: []string{strings.ToUpper(c)}, Workspace: &diag.Workspace{}}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", c, err)
		}
		if !s.Routes(c) || !diag.Default().Routes(c) {
			t.Errorf("%s is not routed by its setting or by allLogs", c)
		}
	}
	err := diag.Setting{Name: "x", Categories: []string{"C2DCommands"}, Workspace: &diag.Workspace{}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "DirectMethods") {
		t.Errorf("unknown category: %v; want an error listing the known ones", err)
	}
}

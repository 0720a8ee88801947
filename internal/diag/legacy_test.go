package diag_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/diag"
)

// A cluster node started on a journal where an earlier release left the
// shared archive consumer of a setting ("diag-<setting>-archive", which
// a single hub still uses) deletes it, says so, and archives on its own
// consumer ("diag-<setting>-archive-<node>").
func TestClusterNodeRemovesSharedArchiveConsumer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, ws, settings := openStores(t, dir)
	var logs bytes.Buffer
	manager := func(node string) *diag.Manager {
		m, err := diag.NewManager(diag.Options{JS: j.JS, NC: j.NC, Store: settings, Workspace: ws, Node: node,
			ArchiveDir: filepath.Join(dir, "archive-"+node), MaxWait: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// exists reports which categories have a consumer of durable.
	exists := func(durable string) []string {
		var out []string
		for _, c := range diag.Categories {
			_, err := j.JS.Consumer(ctx, connlog.StreamOf(c), connlog.ConsumerName(durable, c))
			switch {
			case err == nil:
				out = append(out, c)
			case !errors.Is(err, jetstream.ErrConsumerNotFound):
				t.Fatal(err)
			}
		}
		return out
	}

	// The earlier release's consumers: what the shared name made.
	old := manager("")
	if _, err := old.Create(ctx, diag.Setting{Name: "Cold", Categories: []string{diag.AllLogs}, Archive: &diag.Archive{}}); err != nil {
		t.Fatal(err)
	}
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exists("diag-cold-archive"); len(got) == 0 {
		t.Fatal("the shared archive consumer was not made; the test makes no point")
	}

	m := manager("n1")
	defer m.Stop(ctx)
	if got := exists("diag-cold-archive"); len(got) != 0 {
		t.Errorf("the shared archive consumer is left on %v", got)
	}
	if got := exists("diag-cold-archive-n1"); len(got) == 0 {
		t.Error("the node has no archive consumer of its own")
	}
	if s := logs.String(); !strings.Contains(s, "removed the archive consumer the cluster's nodes shared") || !strings.Contains(s, "consumer=diag-cold-archive ") {
		t.Errorf("the removal is not logged:\n%s", s)
	}
}

package insight_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden verdicts in testdata/diagnose")

// The causes, each from a hand-built history: the verdict named first, and
// the whole diagnosis against its golden JSON (go test -run
// TestDiagnoseGolden -update rewrites them; read the diff).
var histories = []struct {
	name   string
	build  func(*fleet) string
	first  string // cause named first; "" for a healthy device
	status string
}{
	{"healthy-node", healthyNode, insight.CauseTokenRenewal, insight.StatusHealthy},
	{"renewal-dotnet", renewalDotnet, insight.CauseTokenRenewal, insight.StatusHealthy},
	{"probed", probed, "", insight.StatusHealthy},
	{"duplicate-identity", duplicate, insight.CauseDuplicateIdentity, insight.StatusProblem},
	{"clock-skew", clockSkew, insight.CauseExpiredToken, insight.StatusProblem},
	{"short-tokens", shortTokens, insight.CauseExpiredToken, insight.StatusProblem},
	{"rotated-key", rotatedKey, insight.CauseWrongKey, insight.StatusProblem},
	{"disabled", disabled, insight.CauseDisabledDevice, insight.StatusProblem},
	{"idle-timeout", idleNAT, insight.CauseIdleTimeout, insight.StatusProblem},
	{"unstable-network", unstable, insight.CauseUnstableNetwork, insight.StatusProblem},
	{"hub-side", hubRestarts, insight.CauseHubSide, insight.StatusProblem},
	{"flapping", crashLoop, insight.CauseFlapping, insight.StatusProblem},
}

func TestDiagnoseGolden(t *testing.T) {
	for _, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			f := newFleet(t, insight.Options{})
			id := h.build(f)
			d, err := f.engine.Diagnose(id, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != h.status {
				t.Errorf("status %q, want %q (summary %q)", d.Status, h.status, d.Summary)
			}
			got := ""
			if len(d.Verdicts) > 0 {
				got = d.Verdicts[0].Cause
			}
			if got != h.first {
				t.Errorf("first verdict %q, want %q; verdicts:", got, h.first)
				for _, v := range d.Verdicts {
					t.Logf("  %s %.2f: %s", v.Cause, v.Confidence, v.Evidence.Pattern)
				}
			}
			for _, v := range d.Verdicts {
				if len(v.Evidence.Samples) == 0 && v.Cause != insight.CauseFlapping {
					t.Errorf("%s: no samples", v.Cause)
				}
				if v.Query == "" || v.Explanation == "" || v.Fix == "" || v.Title == "" {
					t.Errorf("%s: a verdict needs a title, explanation, fix and query: %+v", v.Cause, v)
				}
			}
			checkGolden(t, filepath.Join("testdata", "diagnose", h.name+".json"), d)
			runQueries(t, f, d)
		})
	}
}

func checkGolden(t *testing.T, path string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update and read the diff):\n%s", path, got)
	}
}

// runQueries loads the history into a real log store, as the log writer
// would, and runs every verdict's query through the KQL engine: each must
// run as it is and find records.
func runQueries(t *testing.T, f *fleet, d insight.Diagnosis) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "logs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var recs []connlog.Record
	for _, ev := range f.events {
		rs, err := connlog.FromConnectionEvent(connlog.Resource{}, ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rs...)
	}
	if err := store.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{}}
	for _, v := range d.Verdicts {
		res, err := eng.Run(ctx, kql.Request{Query: v.Query})
		if err != nil {
			t.Errorf("%s: query does not run: %v\n%s", v.Cause, err, v.Query)
			continue
		}
		if len(res.Rows) == 0 {
			t.Errorf("%s: query finds nothing:\n%s", v.Cause, v.Query)
		}
	}
}

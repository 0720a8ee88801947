package kql_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/*.txt")

// TestScripts runs the script files of testdata/. A file holds
// directives separated by blank lines:
//
//	# comment
//	now 2026-03-01T12:00:00Z          the queries' now()
//	load                              log records, one event per line (loadLine)
//	query [ordered] [timespan=S/E] [maxrows=N]
//	<KQL, any number of lines>
//	----
//	<expected: "columns: Name:type, …", then one JSON array per row,
//	 "truncated: reason" if cut; or "error CODE message">
//
// Rows are compared sorted unless the query is "ordered". -update
// rewrites the expected blocks with what the engine returns.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no script files: %v", err)
	}
	for _, st := range scriptStores {
		t.Run(st.name, func(t *testing.T) {
			total := 0
			for _, f := range files {
				t.Run(filepath.Base(f), func(t *testing.T) { total += runScript(t, st, f) })
			}
			if total < 60 {
				t.Errorf("the scripts hold %d queries; want at least 60", total)
			}
		})
	}
}

// scriptStore is a log store the scripts run on, with its dialect.
type scriptStore struct {
	name string
	open func(t *testing.T) (scriptDB, kql.Dialect)
}

// scriptDB is what the scripts need of a store.
type scriptDB interface {
	connlog.LogStore
	kql.Querier
}

// scriptStores are the stores TestScripts runs on; -update rewrites the
// expected output from the first. Build-dependent stores add themselves
// (script_duckdb_test.go).
var scriptStores = []scriptStore{{"sqlite", func(t *testing.T) (scriptDB, kql.Dialect) {
	store, err := logsqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	return store, kqlsqlite.Dialect{}
}}}

type scriptQuery struct {
	header   string
	text     string
	expected string
	start    int // line index of the expected block in the file
	end      int
}

func runScript(t *testing.T, st scriptStore, path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	store, dialect := st.open(t)
	defer store.Close()
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: dialect}
	update := *update && st.name == scriptStores[0].name
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var out []string
	var queries int
	changed := false
	for i := 0; i < len(lines); {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			out = append(out, line)
			i++
		case strings.HasPrefix(line, "now "):
			now, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(line[4:]))
			if err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
			out = append(out, line)
			i++
		case line == "load":
			out = append(out, line)
			i++
			var recs []connlog.Record
			for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
				out = append(out, lines[i])
				if strings.HasPrefix(lines[i], "#") {
					continue
				}
				rs, err := loadLine(lines[i], len(recs))
				if err != nil {
					t.Fatalf("%s:%d: %v", path, i+1, err)
				}
				recs = append(recs, rs...)
			}
			if err := store.Append(context.Background(), recs); err != nil {
				t.Fatalf("%s: append: %v", path, err)
			}
		case strings.HasPrefix(line, "query"):
			header := line
			out = append(out, line)
			i++
			var text []string
			for ; i < len(lines) && lines[i] != "----"; i++ {
				text = append(text, lines[i])
				out = append(out, lines[i])
			}
			if i >= len(lines) {
				t.Fatalf("%s: query without ----", path)
			}
			out = append(out, "----")
			i++
			var exp []string
			for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
				exp = append(exp, lines[i])
			}
			queries++
			got := runQuery(t, eng, now, header, strings.Join(text, "\n"))
			want := strings.Join(exp, "\n")
			if got != want {
				changed = true
				if !update {
					t.Errorf("%s: query\n%s\n--- got\n%s\n--- want\n%s", path, strings.Join(text, "\n"), got, want)
				}
			}
			out = append(out, strings.Split(got, "\n")...)
		default:
			t.Fatalf("%s:%d: unknown directive %q", path, i+1, line)
		}
	}
	if update && changed {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return queries
}

func runQuery(t *testing.T, eng *kql.Engine, now time.Time, header, text string) string {
	t.Helper()
	e := *eng
	e.Now = func() time.Time { return now }
	req := kql.Request{Query: text}
	ordered := false
	for _, f := range strings.Fields(header)[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "ordered":
			ordered = true
		case "maxrows":
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad maxrows %q", v)
			}
			e.MaxRows = n
		case "timespan":
			a, b, _ := strings.Cut(v, "/")
			start, err1 := time.Parse(time.RFC3339, a)
			end, err2 := time.Parse(time.RFC3339, b)
			if err1 != nil || err2 != nil {
				t.Fatalf("bad timespan %q", v)
			}
			req.Timespan = &kql.TimeRange{Start: start, End: end}
		default:
			t.Fatalf("unknown query option %q", f)
		}
	}
	res, err := e.Run(context.Background(), req)
	if err != nil {
		qe, ok := err.(*kql.Error)
		if !ok {
			t.Errorf("query %q: internal error: %v", text, err)
			return "internal error: " + err.Error()
		}
		return "error " + qe.Code + " " + qe.Error()
	}
	return formatResult(res, ordered)
}

func formatResult(res *kql.Result, ordered bool) string {
	var cols []string
	for _, c := range res.Columns {
		cols = append(cols, c.Name+":"+string(c.Type))
	}
	lines := []string{"columns: " + strings.Join(cols, ", ")}
	var rows []string
	for _, r := range res.Rows {
		cells := make([]any, len(r))
		for i, v := range r {
			cells[i] = kql.JSONCell(v)
		}
		b, _ := json.Marshal(cells)
		rows = append(rows, string(b))
	}
	if !ordered {
		slices.Sort(rows)
	}
	lines = append(lines, rows...)
	if res.Truncated {
		lines = append(lines, "truncated: "+res.Reason)
	}
	return strings.Join(lines, "\n")
}

// loadLine turns one line of a load block into records through the log
// writer's own mappers, so test records look like the real log:
//
//	connect    TIME DEVICE [proto=MQTT|MQTT-WS] [sdk="…"] [ip=…] [renewal]
//	disconnect TIME DEVICE [reason=client|network|keep-alive|takeover|token-expired|disabled|…]
//	refused    TIME DEVICE [reason=auth-failed|…] [result=CODE]
//	create|update|delete TIME DEVICE [status=enabled|disabled]
func loadLine(line string, n int) ([]connlog.Record, error) {
	f, err := fields(line)
	if err != nil {
		return nil, err
	}
	if len(f) < 3 {
		return nil, fmt.Errorf("want KIND TIME DEVICE …: %q", line)
	}
	tm, err := time.Parse(time.RFC3339Nano, f[1])
	if err != nil {
		return nil, err
	}
	opts := map[string]string{"proto": "MQTT", "ip": "10.0.0.XXX"}
	for _, kv := range f[3:] {
		k, v, _ := strings.Cut(kv, "=")
		opts[k] = v
	}
	if cat, name, ok := strings.Cut(f[0], "/"); ok {
		return loadOperation(cat, name, tm, f[2], n, opts)
	}
	res := connlog.Resource{}
	hub := "myhub.azure-devices.net"
	switch f[0] {
	case "create", "update", "delete":
		op := map[string]registry.Op{"create": registry.OpCreated, "update": registry.OpUpdated, "delete": registry.OpDeleted}[f[0]]
		status := registry.Status(opts["status"])
		if status == "" {
			status = "enabled"
		}
		c := registry.Change{ID: fmt.Sprintf("chg-%04d", n), Op: op, Time: tm, Hub: hub, DeviceID: f[2],
			Device: registry.Device{DeviceID: f[2], Status: status}, Caller: "iothubowner"}
		return []connlog.Record{connlog.FromChange(res, c)}, nil
	}
	kind := map[string]presence.Kind{"connect": presence.Connected, "disconnect": presence.Disconnected, "refused": presence.Refused}[f[0]]
	if kind == "" {
		return nil, fmt.Errorf("unknown kind %q", f[0])
	}
	e := presence.ConnectionEvent{
		ID: fmt.Sprintf("%s/%064X", f[2], n), Kind: kind, Time: tm, Hub: hub, DeviceID: f[2],
		Sequence: fmt.Sprintf("%064X", n+1), Protocol: opts["proto"], ProtocolVersion: 4,
		MaskedIP: opts["ip"], SDKVersion: opts["sdk"], AuthType: "sas", Reason: presence.Reason(opts["reason"]),
	}
	if kind == presence.Refused {
		e.Sequence = ""
	}
	if _, ok := opts["renewal"]; ok {
		e.TokenRenewal = true
	}
	results := map[presence.Reason]presence.Result{
		presence.ReasonTakeover: presence.ResultTakeover, presence.ReasonNetwork: presence.ResultClosedRemotely,
		presence.ReasonKeepAlive: presence.ResultClosedRemotely, presence.ReasonDisabled: presence.ResultUnauthorized,
		presence.ReasonServerShutdown: presence.ResultServerError,
	}
	if kind == presence.Disconnected {
		e.Result = results[e.Reason]
		e.DurationMs = 60000
	}
	if code, ok := opts["result"]; ok {
		for _, r := range []presence.Result{presence.ResultTakeover, presence.ResultClosedRemotely, presence.ResultUnauthorized,
			presence.ResultServerError, presence.ResultTimeout, presence.ResultLinkCreationConflict, presence.ResultBadRequest} {
			if r.Type == code {
				e.Result = r
			}
		}
	}
	return connlog.FromConnectionEvent(res, e)
}

// loadOperation makes the record of "CATEGORY/NAME TIME DEVICE|-
// [status=N] [code=C] [ms=N] [req=N] [resp=N] [method=M] [query=Q]
// [page=N] [count=N] [sdk=S] [proto=P] [ip=I]": one journal.Operation
// through the writer's mapper. Device-side (D2C) operations get a
// protocol, an address and an SAS session; the others the api-version
// and a caller.
func loadOperation(cat, name string, tm time.Time, device string, n int, opts map[string]string) ([]connlog.Record, error) {
	num := func(k string) int64 {
		v, _ := strconv.ParseInt(opts[k], 10, 64)
		return v
	}
	op := journal.Operation{ID: fmt.Sprintf("op-%04d", n), Time: tm, Hub: "myhub.azure-devices.net", Category: cat,
		OperationName: name, DeviceID: device, Status: 200, ErrorCode: opts["code"], DurationMs: num("ms"),
		RequestSize: num("req"), ResponseSize: num("resp"), MethodName: opts["method"], Query: opts["query"],
		PageSize: int(num("page")), ResultCount: int(num("count")), SDKVersion: opts["sdk"]}
	if op.DeviceID == "-" {
		op.DeviceID = ""
	}
	if v := num("status"); v != 0 {
		op.Status = int(v)
	}
	if cat == journal.CategoryD2CTwinOperations {
		op.Protocol, op.MaskedIP, op.AuthType = opts["proto"], opts["ip"], "sas"
	} else {
		op.Caller = "service"
		if op.SDKVersion == "" {
			op.SDKVersion = "2021-04-12"
		}
	}
	if err := op.Validate(); err != nil {
		return nil, err
	}
	r, err := connlog.FromOperation(connlog.Resource{}, op)
	return []connlog.Record{r}, err
}

// fields splits on spaces; "…" quotes a value (k="a b").
func fields(s string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		i := 0
		for i < len(data) && data[i] == ' ' {
			i++
		}
		if i == len(data) {
			return i, nil, nil
		}
		j, quoted := i, false
		for j < len(data) && (quoted || data[j] != ' ') {
			if data[j] == '"' {
				quoted = !quoted
			}
			j++
		}
		if j == len(data) && !atEOF {
			return 0, nil, nil
		}
		return j, data[i:j], nil
	})
	for sc.Scan() {
		tok := sc.Text()
		if strings.HasPrefix(tok, `"`) {
			u, err := strconv.Unquote(tok)
			if err != nil {
				return nil, err
			}
			tok = u
		} else if k, v, ok := strings.Cut(tok, "="); ok && strings.HasPrefix(v, `"`) {
			u, err := strconv.Unquote(v)
			if err != nil {
				return nil, err
			}
			tok = k + "=" + u
		}
		out = append(out, tok)
	}
	return out, sc.Err()
}

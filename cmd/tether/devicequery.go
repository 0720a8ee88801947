package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/hubclient"
)

// tether device query: IoT Hub's device query language over the hub's
// twins (POST /devices/query), following continuation tokens.

// defaultQueryCap is how many items a query returns without --all or
// --max: enough for a terminal or a script's usual fleet, small enough
// that a forgotten WHERE over 100,000 devices does not print them all.
// A variable for tests.
var defaultQueryCap = 10000

// queryTagColumns is how many tags a row of SELECT * shows.
const queryTagColumns = 3

func newDeviceQueryCmd() *cobra.Command {
	var pageSize, maxItems int
	var all bool
	cmd := &cobra.Command{
		Use:   "query QUERY",
		Short: "Query device twins with IoT Hub's query language (SELECT … FROM devices …)",
		Long: `Run an IoT Hub device query over the twins of all devices: SELECT * or
a projection, FROM devices, WHERE over tags, properties.desired,
properties.reported, status and connectionState (= != < > <= >=, AND, OR,
NOT, IN, NIN, IS_DEFINED, STARTSWITH, …), TOP n, GROUP BY with COUNT(),
SUM(), AVG(), MIN(), MAX().

The command follows the hub's continuation tokens and prints every page's
items together: at most 10,000 unless --all (every item) or --max N (the
first N); a note on stderr says when it stopped before the end.
--page-size sets how many items one request asks for (1-1000; default
1000, or N for a smaller --max).

Table output: for SELECT * one row per device (id, status, connection
state, last activity and its first tags); for projections and aggregates
one column per member name. -o json prints one JSON array of all items as
the hub wrote them (twins, or the projected objects).`,
		Example: `  tether device query "SELECT * FROM devices WHERE connectionState = 'Disconnected'"
  tether device query "SELECT * FROM devices WHERE tags.site = 'berlin' AND properties.reported.fw < '2.0'" --all -o json
  tether device query "SELECT deviceId, properties.reported.fw FROM devices WHERE STARTSWITH(deviceId, 'thermo-')" --max 50
  tether device query "SELECT properties.reported.fw AS fw, COUNT() AS n FROM devices GROUP BY properties.reported.fw"`,
		Args: deviceArgs(1, "the query (quote it)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("page-size") && (pageSize < 1 || pageSize > hubclient.MaxQueryPage) {
				return fmt.Errorf("--page-size %d: use 1 to %d", pageSize, hubclient.MaxQueryPage)
			}
			if f.Changed("max") && maxItems < 1 {
				return fmt.Errorf("--max %d: give a positive number", maxItems)
			}
			if strings.TrimSpace(args[0]) == "" {
				return errors.New(`the query is empty: give one such as "SELECT * FROM devices"`)
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			limit := defaultQueryCap
			switch {
			case all:
				limit = 0
			case f.Changed("max"):
				limit = maxItems
			}
			res, err := queryDevices(cmd.Context(), c, args[0], pageSize, limit)
			if err != nil {
				return err
			}
			if res.more && !all && !f.Changed("max") {
				fmt.Fprintf(cmd.ErrOrStderr(), "tether: showing the first %d items; the query has more: give --all for every item or --max N\n", len(res.items))
			}
			if clientFlags.output == "json" {
				return printIndented(cmd.OutOrStdout(), joinJSON(res.items))
			}
			if res.itemType == "twin" {
				return printTwinRows(cmd.OutOrStdout(), res.items)
			}
			return printRawRows(cmd.OutOrStdout(), res.items)
		},
	}
	f := cmd.Flags()
	f.IntVar(&pageSize, "page-size", 0, "items per request, 1-1000 (default 1000, or --max if smaller)")
	f.BoolVar(&all, "all", false, "return every item, however many")
	f.IntVar(&maxItems, "max", 0, "return at most N items (default 10000)")
	cmd.MarkFlagsMutuallyExclusive("all", "max")
	return cmd
}

// queryResult is what a query returned over all the pages read.
type deviceQueryResult struct {
	items    []json.RawMessage
	itemType string
	more     bool // the hub had more items than limit
}

// queryDevices reads pages until the last one or until limit items (0:
// no limit).
func queryDevices(ctx context.Context, c *apiClient, query string, pageSize, limit int) (deviceQueryResult, error) {
	res := deviceQueryResult{items: []json.RawMessage{}}
	cont := ""
	for {
		size := pageSize
		if size == 0 {
			size = hubclient.MaxQueryPage
			if limit > 0 {
				size = min(size, limit-len(res.items))
			}
		}
		page, err := c.QueryDevices(ctx, query, size, cont)
		if err != nil {
			return res, deviceQueryError(query, err)
		}
		if res.itemType == "" {
			res.itemType = page.ItemType
		}
		res.items = append(res.items, page.Items...)
		if limit > 0 && len(res.items) >= limit {
			res.more = len(res.items) > limit || page.Continuation != ""
			res.items = res.items[:limit]
			return res, nil
		}
		if page.Continuation == "" {
			return res, nil
		}
		if page.Continuation == cont {
			return res, fmt.Errorf("the hub answered the same continuation token twice (%q); stopped after %d items", cont, len(res.items))
		}
		cont = page.Continuation
	}
}

// joinJSON makes one JSON array of items as the hub wrote them.
func joinJSON(items []json.RawMessage) json.RawMessage {
	b := []byte{'['}
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

// queryPos finds the position in a query error ("line 1, column 28: …").
var queryPos = regexp.MustCompile(`line (\d+), column (\d+)`)

// deviceQueryError turns an error answer into the hub's message, with the
// query's line and a caret under the column it names.
func deviceQueryError(query string, err error) error {
	var se *hubclient.StatusError
	if !errors.As(err, &se) {
		return err
	}
	ae := &APIError{Status: se.Status, Message: errorMessage([]byte(se.Body))}
	m := queryPos.FindStringSubmatch(ae.Message)
	if m == nil {
		return ae
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	if c, ok := caretAt(query, line, col); ok {
		return fmt.Errorf("%w%s", ae, c)
	}
	return ae
}

// printTwinRows prints one line per twin of a SELECT *.
func printTwinRows(w io.Writer, items []json.RawMessage) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "(no devices)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE ID\tSTATUS\tCONNECTION\tLAST ACTIVITY\tTAGS")
	for _, raw := range items {
		var t struct {
			DeviceID         string                     `json:"deviceId"`
			Status           string                     `json:"status"`
			ConnectionState  string                     `json:"connectionState"`
			LastActivityTime time.Time                  `json:"lastActivityTime"`
			Tags             map[string]json.RawMessage `json:"tags"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("the hub sent a twin the client cannot read: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.DeviceID, orDash(t.Status), orDash(t.ConnectionState), fmtDeviceTime(t.LastActivityTime), tagSummary(t.Tags))
	}
	return tw.Flush()
}

// tagSummary is the first few tags as path=value (strings unquoted).
func tagSummary(tags map[string]json.RawMessage) string {
	leaves := flattenTwin(tags, false)
	if len(leaves) == 0 {
		return "-"
	}
	parts := make([]string, 0, queryTagColumns+1)
	for i, l := range leaves {
		if i == queryTagColumns {
			parts = append(parts, fmt.Sprintf("+%d more", len(leaves)-i))
			break
		}
		parts = append(parts, l.path+"="+cellText(json.RawMessage(l.value)))
	}
	return oneLine(strings.Join(parts, ","))
}

// printRawRows prints projected or aggregated items, one column per
// member name in the order the names first appear.
func printRawRows(w io.Writer, items []json.RawMessage) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "(no results)")
		return err
	}
	var cols []string
	seen := map[string]bool{}
	rows := make([]map[string]json.RawMessage, len(items))
	for i, raw := range items {
		keys, vals, ok := objectMembers(raw)
		if !ok {
			keys, vals = []string{"value"}, map[string]json.RawMessage{"value": raw}
		}
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
		rows[i] = vals
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	cells := make([]string, len(cols))
	for _, r := range rows {
		for j, k := range cols {
			v, ok := r[k]
			cells[j] = "-"
			if ok {
				cells[j] = oneLine(cellText(v))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// objectMembers reads a JSON object's members in the order written.
func objectMembers(raw json.RawMessage) ([]string, map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, false
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		k, isKey := t.(string)
		if err != nil || !isKey {
			return nil, nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		if _, dup := vals[k]; !dup {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	return keys, vals, true
}

// cellText renders a JSON value for a table cell: a string as its text,
// anything else as compact JSON.
func cellText(v json.RawMessage) string {
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v)
	}
	return buf.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

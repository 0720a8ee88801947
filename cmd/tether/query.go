package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newQueryCmd) }

// queryResult is the answer of POST /api/v1/query (Log Analytics shape).
type queryResult struct {
	Tables []struct {
		Name    string `json:"name"`
		Columns []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"columns"`
		Rows [][]any `json:"rows"`
	} `json:"tables"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func newQueryCmd() *cobra.Command {
	var timespan string
	cmd := &cobra.Command{
		Use:   "query KQL",
		Short: "Run a Kusto (KQL) query over the hub's AzureDiagnostics log",
		Long: `Run a query in Tether's KQL subset over the hub's resource log, the
AzureDiagnostics table of Connections, DeviceIdentityOperations,
D2CTwinOperations, C2DTwinOperations, TwinQueries and DirectMethods records
(see README: "Querying the log"). Queries written for Log Analytics run as
they are.

Without --timespan and without a filter on TimeGenerated in the query, the
last 24 hours are searched, as in Log Analytics. --timespan takes a
duration ending now (1h, 7d, PT1H, P7D) or an interval start/end
(RFC 3339).

-o table (default) aligns the columns; -o csv writes a header and one line
per row; -o json prints the Log Analytics response
({"tables":[{"name":"PrimaryResult","columns":[…],"rows":[…]}]}).
At most 10,000 rows come back; a note on stderr says when there were more.`,
		Example: `  tether query 'AzureDiagnostics | where Category == "Connections" and Level == "Error"'
  tether query 'AzureDiagnostics | where DeviceId == "thermo-1" | project TimeGenerated, OperationName, ResultType' --timespan 7d
  tether query 'AzureDiagnostics | summarize count() by ResultType, bin(TimeGenerated, 1h)' -o csv
  tether query 'AzureDiagnostics | where Category == "DirectMethods" and Level == "Error" | summarize count() by ResultDescription'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch clientFlags.output {
			case "table", "json", "csv":
			default:
				return fmt.Errorf("unknown output format %q: use table, json or csv", clientFlags.output)
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			body := map[string]string{"query": args[0]}
			if timespan != "" {
				body["timespan"] = timespan
			}
			var res queryResult
			if err := c.do(cmd.Context(), "POST", "/api/v1/query", body, &res, nil); err != nil {
				var ae *APIError
				if errors.As(err, &ae) {
					return queryError(args[0], ae.Message)
				}
				return err
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			if len(res.Tables) == 0 {
				return errors.New("the hub's answer has no table")
			}
			if err := printQueryTable(cmd.OutOrStdout(), res, clientFlags.output == "csv"); err != nil {
				return err
			}
			if res.Error != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "("+res.Error.Message+")")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&timespan, "timespan", "", "time range to search: a duration ending now (1h, 7d, PT1H) or start/end (RFC 3339); default: the last 24 h unless the query filters TimeGenerated")
	return cmd
}

// queryError shows a positioned error ("2:9: column …") under the line of
// the query it points at, with a caret.
func queryError(query, msg string) error {
	pos, _, ok := strings.Cut(msg, ": ")
	lineStr, colStr, ok2 := strings.Cut(pos, ":")
	line, err1 := strconv.Atoi(lineStr)
	col, err2 := strconv.Atoi(colStr)
	if !ok || !ok2 || err1 != nil || err2 != nil {
		return errors.New(msg)
	}
	if c, ok := caretAt(query, line, col); ok {
		return errors.New(msg + c)
	}
	return errors.New(msg)
}

// caretAt returns line line of text and a caret under column col (1-based,
// in characters), each on its own indented line, to append to an error
// message; ok is false when the position is not in text.
func caretAt(text string, line, col int) (string, bool) {
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) || col < 1 {
		return "", false
	}
	l := strings.TrimRight(lines[line-1], "\r")
	if col-1 > len([]rune(l)) {
		return "", false
	}
	return "\n  " + l + "\n  " + strings.Repeat(" ", col-1) + "^", true
}

func printQueryTable(w io.Writer, res queryResult, asCSV bool) error {
	t := res.Tables[0]
	header := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = c.Name
	}
	if asCSV {
		cw := csv.NewWriter(w)
		if err := cw.Write(header); err != nil {
			return err
		}
		for _, r := range t.Rows {
			if err := cw.Write(queryCells(r)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(w, "No rows.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range t.Rows {
		cells := queryCells(r)
		for i := range cells {
			cells[i] = oneLine(cells[i])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// queryCells renders JSON cell values as text: null is empty, numbers
// as JSON writes them.
func queryCells(row []any) []string {
	out := make([]string, len(row))
	for i, v := range row {
		switch x := v.(type) {
		case nil:
		case string:
			out[i] = x
		case float64:
			out[i] = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			out[i] = fmt.Sprint(x)
		}
	}
	return out
}

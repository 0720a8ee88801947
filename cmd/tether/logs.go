package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/connlog"
)

func init() { subcommands = append(subcommands, newLogsCmd) }

// logsResponse is the answer of GET /api/v1/logs.
type logsResponse struct {
	Records []connlog.Record `json:"records"`
}

func newLogsCmd() *cobra.Command {
	var flags struct {
		device, since, until, level, category string
		limit                                 int
	}
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show the hub's resource log (connections, registry writes, twin, method and query operations), oldest to newest",
		Long: `Show records of the hub's resource log: device connects, disconnects and
refused connections (category Connections), registry writes (category
DeviceIdentityOperations), twin reads and updates by devices
(D2CTwinOperations) and by the back end (C2DTwinOperations), twin queries
(TwinQueries) and direct method calls (DirectMethods), in the shape of Azure
Monitor's AzureDiagnostics table. The newest --limit matching records are
printed oldest first.

--since and --until take an RFC 3339 time or an age: 90s, 15m, 1h, 7d.
--level is Information or Error; --category is one of the categories above
(both case-insensitive).

-o json prints {"records":[…]} with the AzureDiagnostics column names as keys
(properties_s is the escaped JSON string Azure writes).`,
		Example: `  tether logs --since 1h
  tether logs --device thermo-1 --level error --since 24h
  tether logs --category Connections --since 2026-01-02T00:00:00Z --until 2026-01-03T00:00:00Z -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"device": flags.device, "since": flags.since, "until": flags.until,
				"level": flags.level, "category": flags.category, "limit": strconv.Itoa(flags.limit)} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if flags.limit > connlog.MaxQueryLimit {
				return fmt.Errorf("--limit %d: at most %d", flags.limit, connlog.MaxQueryLimit)
			}
			// Validate here for immediate errors; ages become absolute
			// times, so the answer does not depend on the hub's clock.
			f, err := connlog.FilterFromQuery(q, time.Now())
			if err != nil {
				return err
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			var out logsResponse
			if err := c.do(cmd.Context(), "GET", "/api/v1/logs?"+f.Query().Encode(), nil, &out, nil); err != nil {
				return err
			}
			if out.Records == nil {
				out.Records = []connlog.Record{}
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			if err := printLogTable(cmd.OutOrStdout(), out.Records); err != nil {
				return err
			}
			if len(out.Records) == f.Limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "(the newest %d records; raise --limit or narrow --since/--until for others)\n", f.Limit)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&flags.device, "device", "", "only records of this device id")
	fl.StringVar(&flags.since, "since", "", "only records at or after this time or age (RFC 3339, or 90s, 15m, 1h, 7d)")
	fl.StringVar(&flags.until, "until", "", "only records before this time or age")
	fl.StringVar(&flags.level, "level", "", "only records of this level: Information or Error")
	fl.StringVar(&flags.category, "category", "", "only records of this category: "+strings.Join(connlog.Categories, ", "))
	fl.IntVar(&flags.limit, "limit", connlog.DefaultQueryLimit, fmt.Sprintf("print the newest N matching records (1–%d)", connlog.MaxQueryLimit))
	cmd.AddCommand(newLogsMigrateCmd())
	return cmd
}

// logTimeFormat shows TimeGenerated in UTC to the millisecond.
const logTimeFormat = "2006-01-02T15:04:05.000Z"

// printLogTable prints the columns that explain a connection problem:
// when, what, how it ended, which device, and the error message.
func printLogTable(w io.Writer, recs []connlog.Record) error {
	if len(recs) == 0 {
		_, err := fmt.Fprintln(w, "No records.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TimeGenerated\tOperationName\tLevel\tResultType\tResultDescription\tDeviceId\tProtocol\terrorMessage")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.TimeGenerated.UTC().Format(logTimeFormat), cell(r.OperationName), cell(r.Level),
			cell(r.ResultType), cell(r.ResultDescription), cell(r.DeviceID), cell(r.Protocol),
			oneLine(errorMessageOf(r)))
	}
	return tw.Flush()
}

// errorMessageOf reads errorMessage from properties_s; "" if absent.
func errorMessageOf(r connlog.Record) string {
	var p struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(r.Properties), &p) != nil {
		return ""
	}
	return p.ErrorMessage
}

// cell shows an empty value as "-" so columns stay readable.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return oneLine(s)
}

// oneLine keeps a value on its row: tabs and newlines would break the table.
func oneLine(s string) string {
	return strings.NewReplacer("\t", " ", "\r", " ", "\n", " ").Replace(s)
}

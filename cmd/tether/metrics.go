package main

import (
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/metrics"
)

func init() { subcommands = append(subcommands, newMetricsCmd) }

// metricsResponse is the part of GET /api/v1/metrics (Azure Monitor's
// shape) the CLI prints.
type metricsResponse struct {
	Timespan string `json:"timespan"`
	Interval string `json:"interval"`
	Value    []struct {
		Name struct {
			Value string `json:"value"`
		} `json:"name"`
		Unit       string `json:"unit"`
		Timeseries []struct {
			Metadatavalues []struct {
				Name struct {
					Value string `json:"value"`
				} `json:"name"`
				Value string `json:"value"`
			} `json:"metadatavalues"`
			Data []map[string]any `json:"data"`
		} `json:"timeseries"`
	} `json:"value"`
}

func newMetricsCmd() *cobra.Command {
	var flags struct{ aggregation, interval, timespan, filter string }
	cmd := &cobra.Command{
		Use:   "metrics [NAME…]",
		Short: "Show hub metrics (connected devices, connects by ResultType, …) over time",
		Long: `Without a name, list the metrics the hub keeps: their Azure Monitor–style
names (as /api/v1/metrics and alert rules use them), kind, dimensions,
aggregations and the Prometheus name on /metrics.

With names, query the hub's history (GET /api/v1/metrics): --timespan is
an ISO 8601 duration ending now (PT1H) or start/end in RFC 3339;
--interval the bucket (PT1S, PT1M, PT5M, … or FULL); --aggregation a
comma-separated list (Average, Minimum, Maximum, Total, Count; default
each metric's first); --filter Azure Monitor's $filter, where '*' splits
by the dimension. Buckets without data are not printed.`,
		Example: `  tether metrics
  tether metrics connectedDeviceCount --interval PT1S --timespan PT2M --aggregation Minimum,Maximum
  tether metrics deviceConnects --filter "ResultType eq '*'" --timespan PT24H --interval PT1H
  tether metrics deviceDisconnects --filter "ResultType eq '404104' and Reason eq '*'" -o json`,
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			if len(names) == 0 {
				if clientFlags.output == "json" {
					return printJSON(cmd.OutOrStdout(), metrics.Catalog)
				}
				return printCatalog(cmd.OutOrStdout())
			}
			// Check offline first, for immediate errors.
			for _, n := range names {
				if _, err := metrics.Lookup(n); err != nil {
					return err
				}
			}
			if _, _, err := metrics.ParseFilter(flags.filter); err != nil {
				return err
			}
			q := url.Values{"metricnames": {strings.Join(names, ",")}, "timespan": {flags.timespan}, "interval": {flags.interval}}
			if flags.aggregation != "" {
				q.Set("aggregation", flags.aggregation)
			}
			if flags.filter != "" {
				q.Set("$filter", flags.filter)
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			var out metricsResponse
			var raw map[string]any
			if clientFlags.output == "json" {
				if err := c.do(cmd.Context(), "GET", "/api/v1/metrics?"+q.Encode(), nil, &raw, nil); err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if err := c.do(cmd.Context(), "GET", "/api/v1/metrics?"+q.Encode(), nil, &out, nil); err != nil {
				return err
			}
			return printMetrics(cmd.OutOrStdout(), out)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&flags.aggregation, "aggregation", "", "Average, Minimum, Maximum, Total, Count (comma-separated)")
	fl.StringVar(&flags.interval, "interval", "PT1M", "bucket size (ISO 8601: PT1S, PT1M, PT1H …) or FULL")
	fl.StringVar(&flags.timespan, "timespan", "PT1H", "PT1H (ending now) or start/end in RFC 3339")
	fl.StringVar(&flags.filter, "filter", "", "Azure Monitor $filter, e.g. \"ResultType eq '*' and Protocol eq 'MQTT'\"")
	return cmd
}

func printCatalog(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tUNIT\tDIMENSIONS\tAGGREGATIONS\tPROMETHEUS")
	for _, d := range metrics.Catalog {
		aggs := make([]string, len(d.Aggregations))
		for i, a := range d.Aggregations {
			aggs[i] = string(a)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Kind, d.Unit, cell(strings.Join(d.Dimensions, ",")),
			strings.Join(aggs, ","), d.Prometheus)
	}
	return tw.Flush()
}

// aggFields are the data point fields in Azure's order.
var aggFields = []string{"average", "minimum", "maximum", "total", "count"}

func printMetrics(w io.Writer, resp metricsResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range resp.Value {
		fmt.Fprintf(tw, "%s (%s), %s, interval %s\n", v.Name.Value, v.Unit, resp.Timespan, resp.Interval)
		if len(v.Timeseries) == 0 {
			fmt.Fprintln(tw, "  no series")
			continue
		}
		// The columns: the series' dimensions, then the aggregations that
		// appear in any point.
		var fields []string
		for _, f := range aggFields {
			for _, ts := range v.Timeseries {
				if hasField(ts.Data, f) && !slices.Contains(fields, f) {
					fields = append(fields, f)
				}
			}
		}
		head := []string{"  timeStamp"}
		for _, m := range v.Timeseries[0].Metadatavalues {
			head = append(head, m.Name.Value)
		}
		fmt.Fprintln(tw, strings.Join(append(head, fields...), "\t"))
		empty := 0
		for _, ts := range v.Timeseries {
			for _, p := range ts.Data {
				if !anyField(p, fields) {
					empty++
					continue
				}
				row := []string{"  " + fmt.Sprint(p["timeStamp"])}
				for _, m := range ts.Metadatavalues {
					row = append(row, cell(m.Value))
				}
				for _, f := range fields {
					if x, ok := p[f].(float64); ok {
						row = append(row, strconv.FormatFloat(x, 'f', -1, 64))
					} else {
						row = append(row, "-")
					}
				}
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
		}
		if empty > 0 {
			fmt.Fprintf(tw, "  (%d buckets without data)\n", empty)
		}
	}
	return tw.Flush()
}

func hasField(data []map[string]any, f string) bool {
	for _, p := range data {
		if _, ok := p[f]; ok {
			return true
		}
	}
	return false
}

func anyField(p map[string]any, fields []string) bool {
	for _, f := range fields {
		if _, ok := p[f]; ok {
			return true
		}
	}
	return false
}

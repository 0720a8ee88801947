package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/insight"
)

func init() { subcommands = append(subcommands, newInsightsCmd) }

func newInsightsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "insights",
		Short: "Fleet insights: flapping devices and mass-disconnect incidents",
		Long: `What the hub derives from its devices' connection events as they happen:

  flapping    devices by flap score: reconnects in the last hour, token
              renewals, returns after hub-side ends and probes excluded, with
              the trend (the last 15 minutes against the 45 before). The
              flappingDevices metric counts those at or above the threshold
              (6), and each device that starts or stops flapping is an
              Insights log record (OperationName deviceFlapping).
  incidents   mass disconnects: a burst of drops well above the recent
              baseline, grouped by what the devices share (ResultType, reason,
              SDK, protocol, source prefix, hub node), closed when the fleet
              came back. Also an Insights log record (massDisconnect,
              massDisconnectResolved) and the event type
              Tether.Insights.MassDisconnect for subscriptions.`,
	}
	cmd.AddCommand(newFlappingCmd(), newIncidentsCmd())
	return cmd
}

type flappingAnswer struct {
	Devices []insight.FlapScore `json:"devices"`
}

func newFlappingCmd() *cobra.Command {
	var top int
	cmd := &cobra.Command{
		Use:   "flapping",
		Short: "List the devices with the highest flap score",
		Example: `  tether insights flapping
  tether insights flapping --top 100 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if top < 0 {
				return fmt.Errorf("--top %d: want 0 (all) or more", top)
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			var out flappingAnswer
			if err := c.do(cmd.Context(), "GET", "/api/v1/insights/flapping?top="+strconv.Itoa(top), nil, &out, nil); err != nil {
				return err
			}
			if out.Devices == nil {
				out.Devices = []insight.FlapScore{}
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return printFlapping(cmd.OutOrStdout(), out.Devices)
		},
	}
	cmd.Flags().IntVar(&top, "top", 20, "how many devices (0: every device that reconnected in the last hour)")
	return cmd
}

func printFlapping(w io.Writer, ds []insight.FlapScore) error {
	if len(ds) == 0 {
		_, err := fmt.Fprintln(w, "No device reconnected in the last hour (renewals, hub-side returns and probes aside).")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSCORE\tLAST 15 MIN /h\tBEFORE /h\tTREND\tFLAPPING\tCONNECTED")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%s\t%s\t%s\n", d.DeviceID, d.Score, d.RecentPerHour, d.BeforePerHour, d.Trend, yesNo(d.Flapping), yesNo(d.Connected))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

type incidentsAnswer struct {
	Incidents []insight.Incident `json:"incidents"`
}

func newIncidentsCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "List mass-disconnect incidents, the open one first, then the newest closed",
		Example: `  tether insights incidents
  tether insights incidents --limit 5 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit %d: want 0 (all kept) or more", limit)
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			var out incidentsAnswer
			if err := c.do(cmd.Context(), "GET", "/api/v1/insights/incidents?limit="+strconv.Itoa(limit), nil, &out, nil); err != nil {
				return err
			}
			if out.Incidents == nil {
				out.Incidents = []insight.Incident{}
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return printIncidents(cmd.OutOrStdout(), out.Incidents)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many incidents (0: all the hub keeps, the last 100)")
	return cmd
}

func printIncidents(w io.Writer, incs []insight.Incident) error {
	if len(incs) == 0 {
		_, err := fmt.Fprintln(w, "No mass disconnect recorded.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTART (UTC)\tDEVICES\tBACK\tSUMMARY")
	for _, i := range incs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", i.ID, i.State, i.Start.UTC().Format("2006-01-02 15:04:05"), i.Devices, i.Recovered, i.Summary)
	}
	return tw.Flush()
}

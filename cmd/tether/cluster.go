package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/cluster"
)

func init() { subcommands = append(subcommands, newClusterCmd) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Nodes of a Tether cluster (serve --node-name …)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the nodes, their devices, the leader of each shared job and the streams' replication health",
		Example: `  tether cluster status
  tether cluster status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var st cluster.Status
			if err := c.do(cmd.Context(), "GET", "/api/v1/cluster", nil, &st, nil); err != nil {
				return err
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printClusterStatus(cmd.OutOrStdout(), st, time.Now())
		},
	})
	return cmd
}

func printClusterStatus(w io.Writer, st cluster.Status, now time.Time) error {
	fmt.Fprintf(w, "Answered by %s; a node silent for %s loses its devices (node-lost).\n\n", st.Node, st.Lease)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tDEVICES\tUP\tLAST HEARTBEAT")
	for _, n := range st.Nodes {
		state, up, seen := "lost", "-", "-"
		if n.Alive {
			state = "alive"
			up = now.Sub(n.Started).Round(time.Second).String()
			seen = now.Sub(n.Seen).Round(100*time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", n.Node, state, n.Devices, up, seen)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARED JOB\tLEADER")
	for _, l := range st.Leaders {
		fmt.Fprintf(tw, "%s\t%s\n", l.Job, firstNonEmpty(l.Node, "(none)"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if st.StreamsError != "" {
		fmt.Fprintf(w, "Streams not listed: %s\n", st.StreamsError)
	}
	fmt.Fprintln(tw, "STREAM\tREPLICAS\tLEADER\tOTHER REPLICAS\tMESSAGES")
	for _, s := range st.Streams {
		var peers []string
		for _, p := range s.Peers {
			state := "current"
			switch {
			case p.Offline:
				state = "offline"
			case !p.Current:
				state = fmt.Sprintf("behind %d", p.Lag)
			}
			peers = append(peers, p.Name+" "+state)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\n", s.Name, s.Replicas, firstNonEmpty(s.Leader, "-"), firstNonEmpty(strings.Join(peers, ", "), "-"), s.Messages)
	}
	return tw.Flush()
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/app"
)

func init() { subcommands = append(subcommands, newAlertCmd) }

func newAlertCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alert",
		Short: "Metric and log alert rules: check a rules file, show state and history, reload",
		Long: `Alert rules and action groups live in a YAML file given to 'tether serve
--rules FILE' (reloaded on SIGHUP or 'tether alert reload'). A metric rule
watches a hub metric (e.g. connectedDeviceCount < 90 every second); a log
rule runs a KQL query over the Connections log. When a rule fires or
resolves, its action groups are notified in Azure Monitor's common alert
schema: webhook, email (SMTP), a local command, a NATS subject.

'tether alert check FILE' validates a file offline and prints every
problem with its line and column. See deploy/alert-rules.yaml for an
annotated example.`,
	}
	cmd.AddCommand(newAlertCheckCmd(), newAlertListCmd(), newAlertHistoryCmd(), newAlertReloadCmd(), newAlertActionsCmd())
	return cmd
}

func newAlertCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a rules file offline; every problem is printed as file:line:column",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			cfg, err := alert.Load(data, app.RulesCheckOptions(args[0]))
			var le *alert.LoadError
			if errors.As(err, &le) {
				for _, p := range le.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p.Error())
				}
				return fmt.Errorf("%s: %d problem(s)", args[0], len(le.Problems))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d rule(s), %d action group(s): OK\n", args[0], len(cfg.Rules), len(cfg.ActionGroups))
			return nil
		},
	}
}

func newAlertListCmd() *cobra.Command {
	var fired bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the rules with their state, last evaluation and fired alerts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			path := "/api/v1/alerts"
			if fired {
				path += "?state=Fired"
			}
			var list api.AlertList
			if err := c.do(cmd.Context(), http.MethodGet, path, nil, &list, nil); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				return printJSON(w, list)
			}
			return printAlertRules(w, list.Rules)
		},
	}
	cmd.Flags().BoolVar(&fired, "fired", false, "only rules with fired alerts")
	return cmd
}

func printAlertRules(w io.Writer, rules []alert.RuleStatus) error {
	if len(rules) == 0 {
		_, err := fmt.Fprintln(w, "(no alert rules)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSEV\tSTATE\tCONDITION\tEVERY\tWINDOW\tLAST EVALUATED\tVALUE\tERROR")
	for _, r := range rules {
		state := string(r.State)
		if !r.Enabled {
			state = "Disabled"
		}
		what := r.Metric
		if r.Kind == alert.KindLog {
			what = "log query"
			if r.Measure != "" {
				what += " " + r.Measure
			}
		}
		cond := fmt.Sprintf("%s(%s) %s %s", r.Aggregation, what, r.Operator, strconv.FormatFloat(r.Threshold, 'f', -1, 64))
		last := "-"
		if r.LastEvaluated != nil {
			last = r.LastEvaluated.UTC().Format(logTimeFormat)
		}
		value := "-"
		for _, in := range r.Alerts {
			if in.Value != nil && len(in.Dimensions) == 0 {
				value = strconv.FormatFloat(*in.Value, 'g', 6, 64)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Severity, state, cond, r.Frequency, r.Window, last, value, cell(r.LastError))
		for _, in := range r.Alerts {
			if in.State != alert.Fired {
				continue
			}
			fmt.Fprintf(tw, "  └ %s\t\tFired\t%s\t\t\t%s\t%s\t\n", short(in.AlertID), dimsText(in.Dimensions), in.FiredAt.UTC().Format(logTimeFormat), valueText(in.Value))
		}
	}
	return tw.Flush()
}

func newAlertHistoryCmd() *cobra.Command {
	var rule, alertID, since string
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show past firings and resolutions, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"rule": rule, "alert": alertID, "since": since, "limit": strconv.Itoa(limit)} {
				if v != "" && v != "0" {
					q.Set(k, v)
				}
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			var h api.AlertHistory
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/alerts/history?"+q.Encode(), nil, &h, nil); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				return printJSON(w, h)
			}
			if len(h.History) == 0 {
				_, err := fmt.Fprintln(w, "(no alert transitions)")
				return err
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tRULE\tSEV\tCONDITION\tALERT\tDIMENSIONS\tVALUE\tREASON")
			for _, r := range h.History {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(logTimeFormat), r.Rule, r.Severity,
					r.Condition, short(r.AlertID), dimsText(r.Dimensions), valueText(r.Value), cell(r.Reason))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&rule, "rule", "", "only this rule")
	f.StringVar(&alertID, "alert", "", "only this alert id")
	f.StringVar(&since, "since", "", "only transitions at or after this time or age (RFC 3339, or 90s, 15m, 1h, 7d)")
	f.IntVar(&limit, "limit", 100, "print the newest N transitions (1–10000)")
	return cmd
}

func newAlertReloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the hub read its rules file again (as SIGHUP does); a file with problems changes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			resp, err := c.send(cmd.Context(), http.MethodPost, "/api/v1/alerts/reload", nil, nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			if resp.StatusCode == http.StatusBadRequest {
				var p api.RulesProblems
				if json.Unmarshal(data, &p) == nil && len(p.Error.Problems) > 0 {
					for _, line := range p.Error.Problems {
						fmt.Fprintln(cmd.ErrOrStderr(), line)
					}
					return errors.New(p.Error.Message)
				}
			}
			if resp.StatusCode >= 300 {
				return &APIError{Status: resp.StatusCode, Message: errorMessage(data)}
			}
			var res api.ReloadResult
			if err := json.Unmarshal(data, &res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reloaded %s: %d rule(s), %d action group(s)\n", res.File, res.Rules, res.ActionGroups)
			return nil
		},
	}
}

func newAlertActionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "actions",
		Short: "Show the action groups' destinations: sent, retried, failed, dropped notifications",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var d api.AlertDestinations
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/alerts/actions", nil, &d, nil); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				return printJSON(w, d)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tKIND\tTARGET\tQUEUED\tSENT\tRETRIED\tFAILED\tDROPPED\tLAST ERROR")
			for _, s := range d.Destinations {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Group, s.Kind, s.Target, s.Queued, s.Sent, s.Retried, s.Failed, s.Dropped, cell(s.LastError))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "notifications suppressed by rate limits: %d\n", d.RateLimited)
			return err
		},
	}
}

func dimsText(d map[string]string) string {
	if len(d) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d[k]
	}
	return strings.Join(parts, ",")
}

func valueText(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 6, 64)
}

// short shows the first block of an alert id (a UUID).
func short(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return cell(id)
}

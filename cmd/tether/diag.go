package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/diag"
)

func init() { subcommands = append(subcommands, newDiagCmd) }

func newDiagCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "diag",
		Aliases: []string{"diagnostic-settings"},
		Short:   "Manage diagnostic settings: where the resource logs go",
		Long: `Manage the hub's diagnostic settings, as for an Azure IoT hub: which log
categories (Connections, DeviceIdentityOperations, D2CTwinOperations,
C2DTwinOperations, TwinQueries, DirectMethods, or allLogs) go to which
destinations, each with a retention in days:

  workspace  the embedded log store that 'tether logs' and queries read
  archive    hourly JSON-lines files in <archive-dir>/<setting>/, laid out like
             Azure's export to a storage account (…/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json)
  nats       a NATS subject, one message per record (a retention keeps them in a
             JetStream stream)

While no setting exists the built-in "default" applies (allLogs to the
workspace). As in Azure, once any setting exists only the stored settings
apply: include --workspace to keep the workspace. Changes apply at once.`,
	}
	cmd.AddCommand(newDiagWriteCmd(false), newDiagListCmd(), newDiagShowCmd(), newDiagWriteCmd(true), newDiagDeleteCmd())
	return cmd
}

// diagFlags are the definition flags of create and update.
type diagFlags struct {
	categories         []string
	workspace          bool
	workspaceRetention int
	archive            bool
	archiveRetention   int
	natsSubject        string
	natsRetention      int
	noWorkspace        bool
	noArchive          bool
	noNATS             bool
}

func (f *diagFlags) add(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	fs.StringSliceVar(&f.categories, "categories", nil, "log categories, comma-separated: "+strings.Join(diag.Categories, ", ")+" or allLogs"+map[bool]string{false: " (default allLogs)", true: ""}[update])
	fs.BoolVar(&f.workspace, "workspace", false, "route to the embedded log workspace")
	fs.IntVar(&f.workspaceRetention, "workspace-retention", 0, "days the workspace keeps records (implies --workspace; 0: the hub's --log-retention)")
	fs.BoolVar(&f.archive, "archive", false, "route to hourly JSON-lines archive files")
	fs.IntVar(&f.archiveRetention, "archive-retention", 0, "days archive hour files are kept (implies --archive; 0: keep)")
	fs.StringVar(&f.natsSubject, "nats-subject", "", "route to this NATS subject, one message per record")
	fs.IntVar(&f.natsRetention, "nats-retention", 0, "days a JetStream stream keeps the messages (0: publish live only)")
	if update {
		fs.BoolVar(&f.noWorkspace, "no-workspace", false, "stop routing to the workspace")
		fs.BoolVar(&f.noArchive, "no-archive", false, "stop routing to the archive")
		fs.BoolVar(&f.noNATS, "no-nats", false, "stop routing to NATS")
	}
}

// apply sets the flags that were given on s.
func (f *diagFlags) apply(cmd *cobra.Command, s *diag.Setting) error {
	fs := cmd.Flags()
	if fs.Changed("categories") {
		s.Categories = nil
		for _, c := range f.categories {
			if c = strings.TrimSpace(c); c != "" {
				s.Categories = append(s.Categories, c)
			}
		}
	}
	if f.workspace || fs.Changed("workspace-retention") {
		if s.Workspace == nil {
			s.Workspace = &diag.Workspace{}
		}
		if fs.Changed("workspace-retention") {
			s.Workspace.RetentionDays = f.workspaceRetention
		}
	}
	if f.archive || fs.Changed("archive-retention") {
		if s.Archive == nil {
			s.Archive = &diag.Archive{}
		}
		if fs.Changed("archive-retention") {
			s.Archive.RetentionDays = f.archiveRetention
		}
	}
	if fs.Changed("nats-subject") || fs.Changed("nats-retention") {
		if s.NATS == nil {
			s.NATS = &diag.NATS{}
		}
		if fs.Changed("nats-subject") {
			s.NATS.Subject = f.natsSubject
		}
		if fs.Changed("nats-retention") {
			s.NATS.RetentionDays = f.natsRetention
		}
	}
	var errs []error
	for _, c := range []struct {
		off, on bool
		name    string
		clear   func()
	}{
		{f.noWorkspace, s.Workspace != nil && (f.workspace || fs.Changed("workspace-retention")), "workspace", func() { s.Workspace = nil }},
		{f.noArchive, s.Archive != nil && (f.archive || fs.Changed("archive-retention")), "archive", func() { s.Archive = nil }},
		{f.noNATS, fs.Changed("nats-subject") || fs.Changed("nats-retention"), "nats", func() { s.NATS = nil }},
	} {
		if c.off && c.on {
			errs = append(errs, fmt.Errorf("--no-%s contradicts the %s flags given", c.name, c.name))
		} else if c.off {
			c.clear()
		}
	}
	return errors.Join(errs...)
}

func diagPath(name string) string { return "/api/v1/diagnostic-settings/" + url.PathEscape(name) }

// diagCall is subCall for settings: a 400 lists the setting's problems.
func diagCall(ctx context.Context, c *apiClient, method, path string, body, out any) error {
	_, err := subCall(ctx, c, method, path, body, out, nil)
	var inv *InvalidSubscriptionError
	if errors.As(err, &inv) {
		inv.What = "diagnostic setting"
	}
	return err
}

// newDiagWriteCmd is create (update false) or update.
func newDiagWriteCmd(update bool) *cobra.Command {
	var f diagFlags
	cmd := &cobra.Command{
		Use:   "create NAME [--categories …] [--workspace] [--archive] [--nats-subject S] [retentions]",
		Short: "Create a diagnostic setting",
		Example: `  tether diag create keep-a-year --categories allLogs --workspace --archive --archive-retention 365
  tether diag create stream --categories Connections --nats-subject iothub.logs --nats-retention 7`,
		Args: deviceArgs(1, "the setting name"),
	}
	if update {
		cmd.Use = "update NAME [flags]"
		cmd.Short = "Change a diagnostic setting (flags not given are kept)"
		cmd.Example = `  tether diag update default --archive --archive-retention 90
  tether diag update stream --no-nats --workspace`
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := outputClient()
		if err != nil {
			return err
		}
		s := diag.Setting{Name: args[0], Categories: []string{diag.AllLogs}}
		method := http.MethodPost
		path := "/api/v1/diagnostic-settings"
		if update {
			if err := diagCall(cmd.Context(), c, http.MethodGet, diagPath(args[0]), nil, &s); err != nil {
				return err
			}
			s.BuiltIn = false
			method, path = http.MethodPut, diagPath(args[0])
		}
		if err := f.apply(cmd, &s); err != nil {
			return err
		}
		var out diag.Setting
		if err := diagCall(cmd.Context(), c, method, path, s, &out); err != nil {
			return err
		}
		return printSetting(cmd, out)
	}
	f.add(cmd, update)
	return cmd
}

func newDiagListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the diagnostic settings in force",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var list api.DiagnosticSettingList
			if err := diagCall(cmd.Context(), c, http.MethodGet, "/api/v1/diagnostic-settings", nil, &list); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				if list.Value == nil {
					list.Value = []diag.Setting{}
				}
				return printJSON(w, list.Value)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCATEGORIES\tWORKSPACE\tARCHIVE\tNATS")
			for _, s := range list.Value {
				name := s.Name
				if s.BuiltIn {
					name += " (built-in)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, strings.Join(s.Categories, ","), workspaceText(s.Workspace), archiveText(s.Archive), natsText(s.NATS))
			}
			return tw.Flush()
		},
	}
}

func newDiagShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a diagnostic setting",
		Args:  deviceArgs(1, "the setting name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var s diag.Setting
			if err := diagCall(cmd.Context(), c, http.MethodGet, diagPath(args[0]), nil, &s); err != nil {
				return err
			}
			return printSetting(cmd, s)
		},
	}
}

func newDiagDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a diagnostic setting (what its destinations hold stays)",
		Args:  deviceArgs(1, "the setting name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			if err := diagCall(cmd.Context(), c, http.MethodDelete, diagPath(args[0]), nil, nil); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted diagnostic setting %s\n", args[0])
			return err
		},
	}
}

func printSetting(cmd *cobra.Command, s diag.Setting) error {
	w := cmd.OutOrStdout()
	if clientFlags.output == "json" {
		return printJSON(w, s)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	name := s.Name
	if s.BuiltIn {
		name += " (built-in: applies while no setting is stored)"
	}
	fmt.Fprintf(tw, "Name:\t%s\n", name)
	fmt.Fprintf(tw, "Categories:\t%s\n", strings.Join(s.Categories, ", "))
	fmt.Fprintf(tw, "Workspace:\t%s\n", workspaceText(s.Workspace))
	fmt.Fprintf(tw, "Archive:\t%s\n", archiveText(s.Archive))
	fmt.Fprintf(tw, "NATS:\t%s\n", natsText(s.NATS))
	return tw.Flush()
}

func days(n int, zero string) string {
	if n == 0 {
		return zero
	}
	return strconv.Itoa(n) + " days"
}

func workspaceText(ws *diag.Workspace) string {
	if ws == nil {
		return "-"
	}
	return "yes, " + days(ws.RetentionDays, "hub retention")
}

func archiveText(a *diag.Archive) string {
	if a == nil {
		return "-"
	}
	return "yes, " + days(a.RetentionDays, "kept")
}

func natsText(n *diag.NATS) string {
	if n == nil {
		return "-"
	}
	return n.Subject + ", " + days(n.RetentionDays, "live only")
}

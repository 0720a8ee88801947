package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tether-hub/tether/internal/config"
)

func init() { subcommands = append(subcommands, newConfigCmd) }

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file of tether serve (--config)",
	}
	cmd.AddCommand(newConfigCheckCmd())
	return cmd
}

func newConfigCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file offline: keys, values, and the checks serve makes before it starts",
		Long: `Check a configuration file as 'tether serve --config FILE' would read it,
without starting anything: every key must be a flag of 'tether serve', every
value one the flag takes; then the settings are checked together as serve
does (addresses, TLS certificate and key given together and loading as a
pair, SMTP sender), as if no flag or TETHER_* variable were set. Every
problem is reported with its line:column; the exit status is 1 if there is
one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := checkConfigFile(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%d settings)\n", args[0], n)
			return nil
		},
	}
}

// checkConfigFile applies path to a fresh serve command's flags and runs
// serve's own checks on the result.
func checkConfigFile(path string) (int, error) {
	set := &serveSettings{}
	serve := newServeCmdFor(set)
	fs := serve.Flags()
	fs.StringVar(&set.cfg.DataDir, "data-dir", defaultDataDir, "")
	file, err := config.Load(path, fs, serveKey(serve))
	if file == nil {
		return 0, err
	}
	if err := config.Merge(err, file.Apply(fs, nil)); err != nil {
		return 0, err
	}
	if _, err := newLogger(io.Discard, set.logLevel, set.logFormat); err != nil {
		return 0, file.Annotate(err)
	}
	c := set.cfg
	c.Defaults()
	if err := c.Validate(); err != nil {
		return 0, file.Annotate(err)
	}
	if c.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			return 0, file.Annotate(fmt.Errorf("tls-cert %s / tls-key %s: %w", c.TLSCertFile, c.TLSKeyFile, err))
		}
	}
	if c.RulesFile != "" {
		if _, err := os.Stat(c.RulesFile); err != nil {
			return 0, file.Annotate(fmt.Errorf("rules %s: %w (check the rules themselves with tether alert check)", c.RulesFile, err))
		}
	}
	return len(file.Settings), nil
}

// serveKey says which flags a configuration file may set: serve's own
// (not the client flags every command inherits) and --data-dir.
func serveKey(serve *cobra.Command) func(*pflag.Flag) bool {
	return func(fl *pflag.Flag) bool {
		switch fl.Name {
		case "config", "help":
			return false
		case "data-dir":
			return true
		}
		return serve.LocalFlags().Lookup(fl.Name) != nil
	}
}

// applyConfigFile applies --config to the flags of serve that the command
// line and the environment left alone; nil when there is no file.
func applyConfigFile(serve *cobra.Command, path string) (*config.File, error) {
	if path == "" {
		return nil, nil
	}
	fs := serve.Flags()
	file, err := config.Load(path, fs, serveKey(serve))
	if file == nil {
		return nil, err
	}
	if err := config.Merge(err, file.Apply(fs, fs.Changed)); err != nil {
		return nil, err
	}
	return file, nil
}

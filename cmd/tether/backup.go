package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/backup"
	"github.com/tether-hub/tether/internal/metrics"
)

func init() { subcommands = append(subcommands, newBackupCmd, newRestoreCmd) }

func newBackupCmd() *cobra.Command {
	var to, natsURL, archiveDir string
	var local bool
	cmd := &cobra.Command{
		Use:   "backup --to DIR",
		Short: "Take a consistent backup of a running hub (registry, policies, journal, logs, metrics, settings, alert state)",
		Long: `Take a backup of the hub into DIR (new or empty) while it runs: the registry
and policies, every journal stream with its consumers' positions, event
subscriptions, diagnostic settings, the log store, the metrics history, the
alert state and archive files. Everything the hub acknowledged before the
backup started is in it (docs/operations.md says what a restore loses: only
what happened while the backup ran may be missing, and some event deliveries
may be repeated). Each file is checksummed in DIR/backup.json.

Remote (default): through the hub's API with a connection string of a policy
with all rights; the hub streams the backup, this command writes DIR.
--local: on the hub's machine from --data-dir: through the running hub's
admin socket, or straight from a stopped hub's data dir.

Restore with 'tether restore --from DIR --data-dir NEW'; check a backup with
'tether backup verify DIR'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("--to is required: the directory to write the backup into (new or empty)")
			}
			start := time.Now()
			m, err := takeBackup(cmd.Context(), to, local, natsURL, archiveDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backup written to %s in %s: %s\n", to, time.Since(start).Round(time.Millisecond), m.Summary())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "directory to write the backup into (created; must be new or empty)")
	f.BoolVar(&local, "local", false, "work from --data-dir on the hub's machine (admin socket, or the data dir of a stopped hub) instead of the API")
	f.StringVar(&natsURL, "nats-url", "", "with --local and a stopped hub: its external NATS (the hub's --nats-url)")
	f.StringVar(&archiveDir, "archive-dir", "", "with --local and a stopped hub: its --archive-dir (default <data-dir>/archive)")
	cmd.AddCommand(newBackupVerifyCmd())
	return cmd
}

// takeBackup writes a backup into dir from the API, the admin socket or
// a stopped hub's data dir.
func takeBackup(ctx context.Context, dir string, local bool, natsURL, archiveDir string) (backup.Manifest, error) {
	// Before the hub starts a backup nobody would read.
	if err := backup.CheckTarget(dir); err != nil {
		return backup.Manifest{}, err
	}
	var c *apiClient
	switch {
	case !local:
		var err error
		if c, err = newAPIClient(); err != nil {
			return backup.Manifest{}, fmt.Errorf("%w (or, on the hub's machine as its user: --local)", err)
		}
	case natsURL == "":
		c, _ = socketClient(clientFlags.dataDir)
	}
	if c != nil {
		return backupFromHub(ctx, c, dir)
	}
	return backupOffline(ctx, dir, natsURL, archiveDir)
}

func backupFromHub(ctx context.Context, c *apiClient, dir string) (backup.Manifest, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/backup", nil, nil)
	if err != nil {
		return backup.Manifest{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return backup.Manifest{}, &APIError{Status: resp.StatusCode, Message: errorMessage(data)}
	}
	return backup.Extract(resp.Body, dir)
}

// backupOffline backs up a stopped hub from its data dir (locked
// meanwhile), with the pieces the hub would use.
func backupOffline(ctx context.Context, dir, natsURL, archiveDir string) (backup.Manifest, error) {
	dataDir := clientFlags.dataDir
	off, err := openOffline(ctx, dataDir, natsURL, "tether backup --local")
	if err != nil {
		return backup.Manifest{}, err
	}
	defer off.Close()
	var logs, hist backup.Snapshotter
	if fileExists(filepath.Join(dataDir, app.LogFile)) || fileExists(filepath.Join(dataDir, app.SQLiteLogFile)) {
		s, err := app.OpenLogStore(ctx, dataDir, app.LogStoreOptions{})
		if err != nil {
			return backup.Manifest{}, err
		}
		defer s.Close()
		logs = s
	}
	if p := filepath.Join(dataDir, app.MetricsFile); fileExists(p) {
		s, err := metrics.OpenStore(ctx, metrics.StoreOptions{Path: p})
		if err != nil {
			return backup.Manifest{}, err
		}
		defer s.Close(context.Background())
		hist = s
	}
	if archiveDir == "" {
		archiveDir = filepath.Join(dataDir, "archive")
	}
	before, after, err := app.BackupParts(dataDir, archiveDir, logs, hist)
	if err != nil {
		return backup.Manifest{}, err
	}
	w, err := backup.NewDirWriter(dir)
	if err != nil {
		return backup.Manifest{}, err
	}
	m, err := backup.Take(ctx, backup.Source{
		NC: off.j.NC, JS: off.j.JS, Hub: localHubName(dataDir), StageDir: dataDir,
		BeforeJournal: before, AfterJournal: after,
	}, w)
	if err != nil {
		return m, fmt.Errorf("%w (%s holds a partial backup: remove it)", err, dir)
	}
	return m, nil
}

func newBackupVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check a backup: its manifest, and every file's size and checksum",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := backup.Verify(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK: %s\n", args[0], m.Summary())
			return nil
		},
	}
}

func newRestoreCmd() *cobra.Command {
	var from, natsURL string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "restore --from DIR --data-dir NEW",
		Short: "Rebuild a data dir from a backup (into a new or empty directory)",
		Long: `Rebuild a hub's data dir from a backup taken with 'tether backup'. The backup
is checked whole first (manifest, sizes, checksums); NEW must not exist or be
empty, and is only put in place once complete, so a failed restore leaves
nothing behind. Start the hub on NEW afterwards ('tether serve --data-dir NEW',
with the backup's --hub-name); it resumes every journal consumer where the
backup left it.

--nats-url: the hub runs on an external NATS: the streams are restored there
(none of them may exist; a restore never replaces a stream) and NEW gets the
files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return errors.New("--from is required: the backup directory")
			}
			if !cmd.Flags().Changed("data-dir") {
				return errors.New("--data-dir is required: the new data dir to build (new or empty)")
			}
			progress := func(format string, a ...any) {
				if !quiet {
					fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", a...)
				}
			}
			m, err := backup.Restore(cmd.Context(), from, backup.RestoreOptions{DataDir: clientFlags.dataDir, NATSURL: natsURL, Progress: progress})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Restored %s into %s.\n", m.Summary(), clientFlags.dataDir)
			fmt.Fprintf(out, "Start the hub on it: tether serve --data-dir %s --hub-name %s …\n", clientFlags.dataDir, m.Hub)
			if _, err := os.Stat(filepath.Join(clientFlags.dataDir, "archive")); err == nil {
				fmt.Fprintf(out, "Archive files are in %s/archive: pass --archive-dir if the hub used another directory.\n", clientFlags.dataDir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "backup directory (written by tether backup)")
	f.StringVar(&natsURL, "nats-url", "", "restore the streams into this external NATS instead of the data dir's embedded server")
	f.BoolVar(&quiet, "quiet", false, "no progress lines")
	return cmd
}

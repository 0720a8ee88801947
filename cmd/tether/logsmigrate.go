package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/app"
)

func newLogsMigrateCmd() *cobra.Command {
	var memory int64
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Convert a stopped hub's SQLite log (logs.db) into the DuckDB log (logs.duckdb)",
		Long: `Copy every record of the SQLite log store of --data-dir (logs.db, written by
hubs before the DuckDB store and by SQLite builds) into the DuckDB store
(logs.duckdb), printing progress, then rename logs.db to logs.db.migrated
(delete it once you are content). tether serve does the same at start, before
it serves; this command does it ahead of time, with the hub stopped. Interrupted, it resumes
where it stopped when run again: records already copied are skipped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app.LogStoreKind != "duckdb" {
				return fmt.Errorf("this tether was built with -tags sqlitelog, whose log is the SQLite one: a default build (cgo) migrates it to DuckDB")
			}
			dir := clientFlags.dataDir
			if !fileExists(filepath.Join(dir, app.SQLiteLogFile)) {
				fmt.Fprintf(cmd.OutOrStdout(), "no SQLite log in %s: nothing to migrate\n", dir)
				return nil
			}
			out := cmd.ErrOrStderr()
			var copied int64
			mig := app.MigrationMeter{Every: time.Second, Line: func(done, total int64, perSec float64, left time.Duration) {
				copied = done
				if done == 0 {
					fmt.Fprintf(out, "%d records to copy\n", total)
					return
				}
				fmt.Fprintf(out, "%d of %d records (%.1f%%), %.0f records/s, %s left\n", done, total, 100*float64(done)/float64(total), perSec, left)
			}}
			if err := app.MigrateSQLiteLog(cmd.Context(), dir, app.LogStoreOptions{Memory: memory, Progress: mig.Progress}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "migrated %d records into %s in %s; the SQLite log is now %s.migrated (delete it once content)\n",
				copied, filepath.Join(dir, app.LogFile), mig.Took(), app.SQLiteLogFile)
			return nil
		},
	}
	cmd.Flags().Var(byteSize{&memory}, "log-memory", "memory of the DuckDB store while migrating (0: 512MiB)")
	return cmd
}

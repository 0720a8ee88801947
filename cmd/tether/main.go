// Command tether is the Tether IoT device hub and its command-line client.
//
// Subcommands live one per file: serve.go, device.go, logs.go …. Client
// commands reach a running hub over its HTTPS API (see client.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tether:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tether",
		Short:         "Tether: a self-hosted IoT device hub with connectivity monitoring built in",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addClientFlags(root)
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// subcommands is filled by each subcommand file's init, so files stay
// independent of one another.
var subcommands []func() *cobra.Command

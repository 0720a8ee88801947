package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/probe"
)

func init() { subcommands = append(subcommands, newProbeCmd) }

func newProbeCmd() *cobra.Command {
	var (
		cfg     probe.Config
		caFile  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Device-side troubleshooting: walk the path a device takes to the hub, step by step",
		Long: `Run where the device is (or on a machine in its network) with the device's
connection string. It checks, in order: 1 DNS, 2 TCP to the MQTT port (8883)
and the HTTPS port (443), 3 TLS on each (chain, dates, host name, interception),
4 the clock against the hub's, 5 MQTT over TLS (CONNECT with a short-lived SAS
token, the CONNACK explained, SUBSCRIBE, optional PUBLISH, DISCONNECT), 6 MQTT
over WebSockets on the HTTPS port (through --proxy when given), 7 with --idle,
a keep-alive test that finds NATs and firewalls that drop idle connections.
A step runs when the steps it needs passed; the others are shown skipped.

The probe connects as the device: while it runs it replaces the device's own
connection (one connection per device), and the hub's Connections log records
it with sdkVersion tether-probe/<version>.

Exit status: 0 when every step passed (warnings allowed), 10 + the number of
the first failed step (11 dns, 12 tcp, 13 tls, 14 clock, 15 mqtt,
16 websocket, 17 keepalive), 1 when the probe could not run. -o json prints
the report described in docs/probe.md.`,
		Example: `  tether probe --connection-string "$IOTHUB_DEVICE_CONNECTION_STRING"
  tether probe --connection-string 'HostName=…;DeviceId=dev1;SharedAccessKey=…' --ca tether-data/ca.pem --https-port 8443
  tether probe --connection-string '…' --proxy http://proxy.example:3128 --publish --idle 5m -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			// The probe's own flags shadow the root's; a value given before
			// "probe" lands in the root's and counts too.
			cfg.ConnectionString = firstNonEmpty(cfg.ConnectionString, clientFlags.connString, os.Getenv("IOTHUB_DEVICE_CONNECTION_STRING"))
			if path := firstNonEmpty(caFile, clientFlags.caFile, os.Getenv("TETHER_CA")); path != "" {
				pem, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("reading CA: %w", err)
				}
				cfg.CAPEM, cfg.CAName = pem, "--ca "+path
			}
			cfg.Timeout = timeout
			cfg.ClientType = probeClientType()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			cfg.Progress = func(line string) { fmt.Fprintln(errOut, line) }
			if clientFlags.output == "table" {
				tw := probe.NewTableWriter(out)
				cfg.OnStart, cfg.OnStep = tw.Start, tw.Step
				rep, err := probe.Run(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				tw.Finish(rep)
				return probeExit(rep)
			}
			rep, err := probe.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := printJSON(out, rep); err != nil {
				return err
			}
			return probeExit(rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ConnectionString, "connection-string", "", "the device's connection string, HostName=…;DeviceId=…;SharedAccessKey=… (env IOTHUB_DEVICE_CONNECTION_STRING)")
	f.StringVar(&caFile, "ca", "", "PEM file of the CA(s) to trust instead of the system store, as the device does (env TETHER_CA; Tether --dev: tether-data/ca.pem)")
	f.IntVar(&cfg.MQTTPort, "mqtt-port", 0, "port of MQTT over TLS (default: GatewayHostName's port, else 8883)")
	f.IntVar(&cfg.HTTPSPort, "https-port", 0, "port of HTTPS and MQTT over WebSockets (default 443; tether serve --dev: 8443)")
	f.StringVar(&cfg.Proxy, "proxy", "", "HTTP proxy for the HTTPS port, http://[user:password@]host:port (HTTP CONNECT; the SDKs proxy WebSockets only)")
	f.BoolVar(&cfg.Publish, "publish", false, "send one test telemetry message over each transport (property tether-probe=1)")
	f.DurationVar(&cfg.Idle, "idle", 0, "run the keep-alive test: hold a connection idle this long (e.g. 5m; at most 29m)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "how long each network operation may take before it counts as no answer")
	return cmd
}

// probeExit maps a report to the command's result: nil when every step
// passed, else an error naming the first failed step that carries the
// exit status.
func probeExit(rep *probe.Report) error {
	if len(rep.Failed) > 0 {
		return fmt.Errorf("probe failed at %s: %w", rep.Failed[0], exitError(rep.ExitStatus))
	}
	if rep.Interrupted {
		return errors.New("probe interrupted")
	}
	return nil
}

// probeClientType is the DeviceClientType the probe sends:
// tether-probe/<module version or VCS revision> (go; os/arch).
func probeClientType() string {
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		} else {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v = s.Value[:12]
				}
			}
		}
	}
	return fmt.Sprintf("%s%s (%s; %s/%s)", probe.ClientTypePrefix, v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

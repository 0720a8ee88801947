package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tether-hub/tether/internal/app"
)

func init() { subcommands = append(subcommands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var cfg app.Config
	var logLevel string
	var allowLoopback bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub: MQTT (TLS :8883, WebSockets), registry REST API, connection monitoring",
		Long: `Run the hub.

Every flag can also be set as an environment variable TETHER_<FLAG>, with
dashes as underscores (e.g. TETHER_MQTT_ADDR=:8883); flags win.

--dev runs on a fresh machine with nothing else: data in ./tether-data, a
generated CA and server certificate for localhost/127.0.0.1, MQTT/TLS on
:8883 and HTTPS on :8443, and the owner connection string written to the
data dir so that 'tether device …' works without flags.

Event subscriptions deliver to webhooks and NATS streams on any hub; to
e-mail with --smtp-addr and --smtp-from (the password, when
--smtp-username is set, only from the environment variable
TETHER_SMTP_PASSWORD, never a flag or the API); to local programs with
--event-command-dir, the directory of the programs subscriptions may run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd.Flags()); err != nil {
				return err
			}
			cfg.DataDir = clientFlags.dataDir
			if cmd.Flags().Changed("allow-loopback-endpoints") {
				cfg.AllowLoopbackEndpoints = &allowLoopback
			}
			cfg.SMTP.Password = os.Getenv(smtpPasswordEnv)
			if cfg.Dev && !cmd.Flags().Changed("https-addr") && os.Getenv("TETHER_HTTPS_ADDR") == "" {
				cfg.HTTPSAddr = ":8443"
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			return runServe(cmd.Context(), cfg, log)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.Dev, "dev", false, "development mode: generated certificates, HTTPS on :8443, credentials in the data dir")
	f.StringVar(&cfg.HubName, "hub-name", "localhost", "host name devices use in usernames and SAS tokens (HostName=)")
	f.StringVar(&cfg.MQTTAddr, "mqtt-addr", ":8883", "MQTT over TLS listen address")
	f.StringVar(&cfg.HTTPSAddr, "https-addr", ":443", "HTTPS listen address: REST API, /api/v1, MQTT over WebSockets (--dev: :8443)")
	f.StringVar(&cfg.TCPAddr, "tcp-addr", "", "plain MQTT listen address (off unless set; devices' SAS tokens travel in clear)")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS (JetStream) URL; default runs an embedded server in the data dir")
	f.BoolVar(&cfg.JournalSyncAlways, "journal-sync-always", false, "fsync every write of the embedded journal before acknowledging it (survives power loss; slower, see bench/README.md)")
	f.StringVar(&cfg.TLSCertFile, "tls-cert", "", "server certificate (PEM)")
	f.StringVar(&cfg.TLSKeyFile, "tls-key", "", "server private key (PEM)")
	f.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "time a client has for the TLS handshake and CONNECT")
	f.DurationVar(&cfg.LogRetention, "log-retention", 30*24*time.Hour, "how long Connections log records are kept")
	f.DurationVar(&cfg.MetricsRecent, "metrics-recent", time.Hour, "how long the metrics history keeps 1-second samples")
	f.DurationVar(&cfg.MetricsRetention, "metrics-retention", 30*24*time.Hour, "how long the metrics history keeps 1-minute samples")
	f.StringVar(&cfg.ArchiveDir, "archive-dir", "", "directory of the diagnostic settings' archive files (default <data-dir>/archive)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "upper bound for a clean shutdown")
	f.StringVar(&cfg.DebugAddr, "debug-addr", "", "serve Go profiles (/debug/pprof) on this plain-HTTP address, e.g. 127.0.0.1:6060; off by default")
	f.StringVar(&cfg.RulesFile, "rules", "", "alert rules and action groups (YAML; see 'tether alert check'); reloaded on SIGHUP")
	f.StringVar(&cfg.SMTP.Addr, "smtp-addr", "", "mail server (host:port) of e-mail event subscriptions; STARTTLS when offered")
	f.StringVar(&cfg.SMTP.From, "smtp-from", "", "sender address of event mails, e.g. 'Tether <tether@example.com>'")
	f.StringVar(&cfg.SMTP.Username, "smtp-username", "", "account on the mail server (AUTH PLAIN, over TLS or to localhost only); the password is read from "+smtpPasswordEnv)
	f.BoolVar(&cfg.SMTP.Insecure, "smtp-insecure-skip-verify", false, "do not verify the mail server's STARTTLS certificate (test relays only)")
	f.BoolVar(&allowLoopback, "allow-loopback-endpoints", false, "let webhook subscriptions reach receivers on this machine's loopback addresses (default: true with --dev); the hub's own ports are refused either way")
	f.StringVar(&cfg.EventCommandDir, "event-command-dir", "", "directory of the programs command event subscriptions may run (none unless set)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// smtpPasswordEnv holds the SMTP password: environment only, so it is in
// no command line, config file or API answer.
const smtpPasswordEnv = "TETHER_SMTP_PASSWORD"

// envDefaults applies TETHER_* variables to flags not set on the command
// line.
func envDefaults(fs *pflag.FlagSet) error {
	var errs []string
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed {
			return
		}
		name := "TETHER_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := fs.Set(fl.Name, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", name, v, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// serveGCPercent trades heap headroom for GC CPU during connect storms;
// the hub returns the memory after each burst (internal/app/compact.go).
// An explicit GOGC wins.
const serveGCPercent = 200

func runServe(ctx context.Context, cfg app.Config, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return err
	}
	if cfg.Dev {
		printDevBanner(a)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-hup:
			if cfg.RulesFile == "" {
				log.Warn("SIGHUP: no rules file to reload (--rules)")
				continue
			}
			// Reload logs the outcome, problems included.
			_, _ = a.ReloadRules(ctx)
		}
	}
	fmt.Fprintln(os.Stderr, "tether: shutting down (devices are recorded as disconnected: server-shutdown)")
	stopCtx, cancel2 := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel2()
	return a.Stop(stopCtx)
}

func printDevBanner(a *app.App) {
	w := os.Stdout
	fmt.Fprintf(w, "\nTether dev hub %q is running.\n", a.HubName())
	fmt.Fprintf(w, "  MQTT/TLS        %s\n", a.MQTTAddr())
	if a.TCPAddr() != "" {
		fmt.Fprintf(w, "  MQTT/TCP        %s\n", a.TCPAddr())
	}
	fmt.Fprintf(w, "  HTTPS + MQTT-WS %s (/$iothub/websocket)\n", a.HTTPSAddr())
	fmt.Fprintf(w, "  CA certificate  %s\n", a.CAFile())
	fmt.Fprintf(w, "  Owner connection string:\n    %s\n", a.OwnerConnectionString())
	fmt.Fprintf(w, "\nNext, in another terminal here:\n")
	fmt.Fprintf(w, "  go run ./cmd/tether device create my-device\n")
	fmt.Fprintf(w, "  go run ./cmd/tether device connection-string my-device\n")
	fmt.Fprintf(w, "  go run ./cmd/tether logs --since 1h\n")
	fmt.Fprintf(w, "Azure IoT device SDKs: trust the CA above (e.g. NODE_EXTRA_CA_CERTS) and, if MQTT is not on 8883,\n")
	fmt.Fprintf(w, "append ;GatewayHostName=localhost:<port> to the device connection string.\n\n")
}

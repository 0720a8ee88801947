package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
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

func newServeCmd() *cobra.Command { return newServeCmdFor(&serveSettings{}) }

// serveSettings are what serve's flags fill: `tether config check` builds
// the same command to check a file against exactly these flags.
type serveSettings struct {
	cfg                             app.Config
	logLevel, logFormat, configFile string
	clusterSecretFile               string
	allowLoopback                   bool
}

func newServeCmdFor(set *serveSettings) *cobra.Command {
	cfg := &set.cfg
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub: MQTT (TLS :8883, WebSockets), registry REST API, connection monitoring",
		Long: `Run the hub.

Every flag can also be set as an environment variable TETHER_<FLAG>, with
dashes as underscores (e.g. TETHER_MQTT_ADDR=:8883), and as a key of the
--config file (mqtt-addr: ":8883"; deploy/tether.yaml is an annotated
example, 'tether config check FILE' checks one). Flags win over the
environment, the environment over the file.

SIGHUP reloads the alert rules (--rules) and the server certificate
(--tls-cert/--tls-key, also re-read by itself when the files change);
connected devices stay connected.

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
			file, err := applyConfigFile(cmd, set.configFile)
			if err != nil {
				return err
			}
			cfg.DataDir = clientFlags.dataDir
			if cmd.Flags().Changed("allow-loopback-endpoints") {
				cfg.AllowLoopbackEndpoints = &set.allowLoopback
			}
			cfg.SMTP.Password = os.Getenv(smtpPasswordEnv)
			if cfg.Cluster.Secret, err = clusterSecret(set.clusterSecretFile); err != nil {
				return err
			}
			if cfg.Dev && !cmd.Flags().Changed("https-addr") && os.Getenv("TETHER_HTTPS_ADDR") == "" {
				cfg.HTTPSAddr = ":8443"
			}
			log, err := newLogger(cmd.ErrOrStderr(), set.logLevel, set.logFormat)
			if err != nil {
				return file.Annotate(err)
			}
			return file.Annotate(runServe(cmd.Context(), *cfg, log))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.Dev, "dev", false, "development mode: generated certificates, HTTPS on :8443, credentials in the data dir")
	f.StringVar(&cfg.HubName, "hub-name", "localhost", "host name devices use in usernames and SAS tokens (HostName=)")
	f.StringVar(&cfg.MQTTAddr, "mqtt-addr", ":8883", "MQTT over TLS listen address")
	f.StringVar(&cfg.HTTPSAddr, "https-addr", ":443", "HTTPS listen address: REST API, /api/v1, MQTT over WebSockets (--dev: :8443)")
	f.StringVar(&cfg.TCPAddr, "tcp-addr", "", "plain MQTT listen address (off unless set; devices' SAS tokens travel in clear)")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS (JetStream) URL; default runs an embedded server in the data dir")
	f.StringVar(&cfg.Cluster.NodeName, "node-name", "", "this node's name in a cluster of Tether nodes (unique, the same at every start); with --nats-url the nodes share that NATS cluster")
	f.StringVar(&cfg.Cluster.Name, "cluster-name", "", "cluster of embedded NATS servers this node joins (every node the same)")
	f.StringVar(&cfg.Cluster.Listen, "cluster-listen", "", "host:port of this node's cluster (NATS route) listener")
	f.StringSliceVar(&cfg.Cluster.Peers, "cluster-peers", nil, "host:port of the other nodes' cluster listeners, comma-separated")
	f.StringVar(&set.clusterSecretFile, "cluster-secret-file", "", "file holding the secret (≥ 16 bytes, the same on every node) the cluster's route listeners ask of each other; or set "+clusterSecretEnv)
	f.DurationVar(&cfg.Cluster.Lease, "cluster-lease", 0, "how long a silent node keeps its devices before another records them disconnected (node-lost; default 12s)")
	f.IntVar(&cfg.Cluster.Replicas, "replicas", 0, "copies of every stream and bucket (default: 3 in a cluster of 3 or more, else 1)")
	f.BoolVar(&cfg.JournalSyncAlways, "journal-sync-always", false, "fsync every write of the embedded journal before acknowledging it (survives power loss; slower, see bench/README.md)")
	f.StringVar(&cfg.TLSCertFile, "tls-cert", "", "server certificate (PEM)")
	f.StringVar(&cfg.TLSKeyFile, "tls-key", "", "server private key (PEM)")
	f.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "time a client has for the TLS handshake and CONNECT")
	f.DurationVar(&cfg.LogRetention, "log-retention", 30*24*time.Hour, "how long Connections log records are kept")
	f.Var(byteSize{&cfg.LogMemory}, "log-memory", "memory budget of the DuckDB log store (1/2 of it DuckDB's memory_limit, queries past it spill to disk; 1/16 staged appends; e.g. 512MiB, 2GiB; 0: 512MiB; -tags sqlitelog builds ignore it)")
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
	f.BoolVar(&set.allowLoopback, "allow-loopback-endpoints", false, "let webhook subscriptions reach receivers on this machine's loopback addresses (default: true with --dev); the hub's own ports are refused either way")
	f.StringVar(&cfg.EventCommandDir, "event-command-dir", "", "directory of the programs command event subscriptions may run (none unless set)")
	f.DurationVar(&cfg.CertCheckEvery, "tls-reload-interval", app.DefaultCertCheckEvery, "how often --tls-cert and --tls-key are checked for a renewed certificate (SIGHUP reloads at once)")
	f.StringVar(&set.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&set.logFormat, "log-format", "text", "text, or json (one object a line, for log shippers)")
	f.StringVar(&set.configFile, "config", "", "YAML file of settings: keys are these flags' names (see deploy/tether.yaml); flags and TETHER_* variables win")
	addLimitFlags(f, cfg)
	return cmd
}

// clusterSecretEnv holds the route secret when no --cluster-secret-file
// is given: environment or file only, so it is in no command line.
const clusterSecretEnv = "TETHER_CLUSTER_SECRET"

// clusterSecret reads the route secret from file (surrounding white
// space dropped), else from clusterSecretEnv.
func clusterSecret(file string) (string, error) {
	if file == "" {
		return os.Getenv(clusterSecretEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--cluster-secret-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
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

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format %q: use text or json", format)
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
			reload(ctx, a, cfg, log)
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
	if _, port, err := net.SplitHostPort(a.HTTPSAddr()); err == nil {
		fmt.Fprintf(w, "  Dashboard       https://localhost:%s/ (sign in with the owner connection string)\n", port)
	}
	fmt.Fprintf(w, "  CA certificate  %s\n", a.CAFile())
	fmt.Fprintf(w, "  Owner connection string:\n    %s\n", a.OwnerConnectionString())
	fmt.Fprintf(w, "\nNext, in another terminal here:\n")
	fmt.Fprintf(w, "  go run ./cmd/tether device create my-device\n")
	fmt.Fprintf(w, "  go run ./cmd/tether device connection-string my-device\n")
	fmt.Fprintf(w, "  go run ./cmd/tether logs --since 1h\n")
	fmt.Fprintf(w, "Azure IoT device SDKs: trust the CA above (e.g. NODE_EXTRA_CA_CERTS) and, if MQTT is not on 8883,\n")
	fmt.Fprintf(w, "append ;GatewayHostName=localhost:<port> to the device connection string.\n\n")
}

// reload is SIGHUP: the alert rules and the server certificate are read
// again; each logs its outcome, problems included, and keeps what was in
// force when the new version is bad.
func reload(ctx context.Context, a *app.App, cfg app.Config, log *slog.Logger) {
	if cfg.RulesFile != "" {
		_, _ = a.ReloadRules(ctx)
	}
	if cfg.TLSCertFile != "" {
		if changed, err := a.ReloadCertificate(); err == nil && !changed {
			log.Info("SIGHUP: the TLS certificate files are unchanged")
		}
	}
	if cfg.RulesFile == "" && cfg.TLSCertFile == "" {
		log.Warn("SIGHUP: nothing to reload (no --rules, --dev certificate)")
	}
}

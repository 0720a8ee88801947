package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/sas"
	"github.com/tether-hub/tether/internal/sim"
)

func init() { subcommands = append(subcommands, newSimCmd, newSimWorkerCmd) }

func newSimCmd() *cobra.Command {
	var cfg sim.Config
	var flags struct {
		faults, mqttAddr, webhookAddr, webhookURL, out string
		hubCrashCmd, nodeRestartCmd                    string
		scenarios                                      string
		methodRate, desiredRate                        string
		json                                           bool
	}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate a fleet of devices against a hub and check what the hub reports",
		Long: `Simulate N devices against a running hub: register them (or reuse them) in bulk,
connect them at --ramp connects per second over MQTT/TLS (and MQTT over
WebSockets for a --ws fraction), send telemetry, renew SAS tokens and retry the
way an Azure IoT device SDK does (--profile c, csharp, java, node, python), and
inject faults. At the end (--duration, or Ctrl-C) every device disconnects and
the simulator compares what it did with what the hub reported to its own
webhook subscription and in the Connections log: missing, duplicated, out of
order, wrong codes, and delivery latency per event type and ResultType.

Faults (--faults, comma-separated; a count, a fraction "5%", or a rate "2%/min"):
  drop      close the socket without DISCONNECT            → DeviceDisconnected 404104
  silence   stop sending, keep-alive --silence-keep-alive   → DeviceDisconnected 404104 (keep-alive)
  dup       a second client with the same device id         → DeviceDisconnected 400027 (takeover)
  expired   a connect with an expired token (second copy)   → refused, log 401003
  wrongkey  a connect signed with a wrong key (second copy) → refused, log 401003
  disabled  disable in the registry for --disable-for       → DeviceDisconnected 401003, refusals 401003
  storm=T   every connected device drops at T               → DeviceDisconnected 404104, backoff reconnects
  slow      TLS handshake stretched by --slow-tls-delay      → connected, or 500008 past the hub's connect timeout
  hub-crash=T  --hub-crash-cmd kills the hub (SIGKILL) at T
               and starts it again                         → DeviceDisconnected 500001 (hub-restart) for every
                                                              open session, recorded when the hub is back;
               with several --mqtt-addr: the last node     → DeviceDisconnected 404104 (node-lost) by a survivor
  rolling-restart=T  --node-restart-cmd stops and starts
               each node of --mqtt-addr a,b,c in turn       → DeviceDisconnected (server-shutdown) for the
                                                              sessions open on the stopping node

Twins and direct methods (on by default; --twin=false, --methods=false): each
device uses them as an app on its profile's SDK does. At start-up it subscribes
to the method topic, GETs its twin (subscribing to the twin topics lazily, the
desired one before or after the GET as the SDK does) and reports its state;
then it reports every --reported-every, applies desired pushes and answers the
"echo" method after --method-delay. After a reconnect the Node and Python
profiles send no SUBSCRIBE (the hub keeps the session's subscriptions), C, C#
and Java subscribe again; C and Python GET the twin again. The simulator's
service side calls direct methods (--method-rate) and updates desired
properties (--desired-rate) through the hub's REST API: a --method-no-answer
fraction calls a method no device handles (504101), a --method-offline
fraction goes to registered devices that never connect (404103). The report
gives twin GET, reported-patch, method and desired-push latencies, method
outcomes against what the simulator knew to expect, and fails the run for any
request left unanswered, any answer or push that reached the wrong device or
request, a desired push missing for a device that was connected and
subscribed, or an unexpected status.

Scenarios (--scenario NAME[=COUNT|=PERCENT%],…; default 300 devices each):
each reproduces a cause tether diagnose names on the devices it picks; after
the run every device is diagnosed over the run's window and the report gives,
per cause, the recall (injected devices named with it first) and precision,
the share of healthy devices named faulty, and for mass-drop the incident.
  duplicate-identity  a second client with the device's credentials from 127.0.7.x
  token-renewal       4-minute tokens: renewals as the SDK does them (benign)
  short-token         60 s tokens (expected cause: expired-token)
  expired-token       the clock jumps 2 h back and the device restarts: expired tokens
  wrong-key           the primary key is rotated in the registry; the device keeps the old one
  disabled-device     disabled for good; the SDK keeps retrying
  idle-timeout        a NAT resets connections idle for 20 s
  unstable-network    connections reset at random, about twice a minute
  hub-side            every device (the hub must be restarted during the run)
  flapping            the app closes and reopens its client every 15–45 s
  mass-drop           500 devices from 127.0.5.x lose their network at once for 20 s
                      (expected: one incident grouped by that source, closed on return)
Scenario runs need --duration of at least 2m (5m shows the patterns well).

Connections come from 127.0.0.2… (--sources) so one machine can open tens of
thousands; past --per-process devices the simulator starts worker processes
(this binary, "tether sim-worker") and merges their results. The exit status is
3 when the comparison found a mismatch.`,
		Example: `  tether sim --devices 200 --duration 30s
  tether sim --devices 10000 --duration 2m --profile node --token-ttl 60s --faults drop=2%/min,dup=10
  tether sim --devices 500 --duration 1m --ws 0.5 --faults silence=2%,disabled=1%,wrongkey=1%,storm=40s --json
  tether sim --devices 1000 --duration 2m --method-rate 100/s --desired-rate 20/s --token-ttl 60s
  tether sim --devices 6000 --duration 2m --mqtt-addr n1:8883,n2:8883,n3:8883 --faults dup=300 --insecure`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			faults, err := sim.ParseFaults(flags.faults)
			if err != nil {
				return err
			}
			cfg.Faults = faults
			if cfg.Scenarios, err = sim.ParseScenarios(flags.scenarios); err != nil {
				return err
			}
			if cfg.MethodRate, err = sim.ParseRate(flags.methodRate); err != nil {
				return fmt.Errorf("--method-rate: %w", err)
			}
			if cfg.DesiredRate, err = sim.ParseRate(flags.desiredRate); err != nil {
				return fmt.Errorf("--desired-rate: %w", err)
			}
			if !cfg.Methods && cfg.MethodRate > 0 && !cmd.Flags().Changed("method-rate") {
				cfg.MethodRate = 0 // the default rate needs devices that answer
			}
			if !cfg.Twin && cfg.DesiredRate > 0 && !cmd.Flags().Changed("desired-rate") {
				cfg.DesiredRate = 0
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			if err := resolveSimAddrs(&cfg, c, flags.mqttAddr); err != nil {
				return err
			}
			var crash func(context.Context) error
			if flags.hubCrashCmd != "" {
				addr := cfg.MQTTAddr
				if n := len(cfg.MQTTAddrs); n > 1 {
					addr = cfg.MQTTAddrs[n-1] // the node the fault kills
				}
				if crash, err = crashHubCmd(flags.hubCrashCmd, addr); err != nil {
					return err
				}
			}
			var restart func(context.Context, int) error
			if flags.nodeRestartCmd != "" {
				if restart, err = restartNodeCmd(flags.nodeRestartCmd, cfg.MQTTAddrs); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			env := sim.Env{CrashHub: crash, RestartNode: restart,
				API: c.Client, ConnString: c.cs.String(), Out: out, JSON: flags.json,
				Live:        !flags.json && isTerminal(os.Stdout) && out == io.Writer(os.Stdout),
				WebhookAddr: flags.webhookAddr, WebhookURL: flags.webhookURL,
				Spawn: spawnSimWorker,
				Logf:  func(f string, a ...any) { fmt.Fprintf(cmd.ErrOrStderr(), f+"\n", a...) },
			}
			rep, err := sim.Run(cmd.Context(), cfg, env)
			if err != nil {
				return err
			}
			if flags.json {
				b, _ := json.Marshal(map[string]any{"type": "report", "report": rep, "ok": rep.OK()})
				fmt.Fprintf(out, "%s\n", b)
			} else {
				rep.WriteText(out)
			}
			if flags.out != "" {
				f, err := os.Create(flags.out)
				if err != nil {
					return err
				}
				rep.WriteText(f)
				if err := f.Close(); err != nil {
					return err
				}
			}
			if !rep.OK() || !rep.Scenarios.OK() {
				return exitError(3)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Devices, "devices", 100, "devices to simulate (ids <prefix>-0 … <prefix>-<N-1>; created, or reused with new keys)")
	f.StringVar(&cfg.Prefix, "prefix", "sim", "device id prefix")
	f.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to run from the first connect (0: until Ctrl-C)")
	f.Float64Var(&cfg.Ramp, "ramp", 500, "connects per second while the fleet comes up")
	f.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "cap on the fleet's connect attempts per second, reconnects included (0: none)")
	f.StringVar(&cfg.Profile, "profile", "node", "device SDK to behave like: "+strings.Join(sim.ProfileNames(), ", "))
	f.DurationVar(&cfg.TokenTTL, "token-ttl", 0, "SAS token lifespan (default: the profile's, 1h); the renewal point keeps its fraction")
	f.DurationVar(&cfg.KeepAlive, "keep-alive", 0, "MQTT keep-alive (default: the profile's)")
	f.DurationVar(&cfg.Telemetry, "telemetry", 30*time.Second, "telemetry interval per device (0: none)")
	f.IntVar(&cfg.Payload, "payload", 64, "telemetry payload bytes")
	f.Float64Var(&cfg.WebSockets, "ws", 0, "fraction of devices on MQTT over WebSockets (0…1)")
	f.StringVar(&flags.faults, "faults", "", "faults to inject, e.g. drop=2%/min,dup=10,silence=1%,storm=60s,hub-crash=30s (see above)")
	f.StringVar(&flags.hubCrashCmd, "hub-crash-cmd", "", "program (with arguments) the hub-crash fault runs: it must kill the hub (in a cluster: the node at the last --mqtt-addr) with SIGKILL and start it again")
	f.StringVar(&flags.nodeRestartCmd, "node-restart-cmd", "", "program (with arguments; {node} is the node's number, {addr} its MQTT address) the rolling-restart fault runs for each node in turn: it must stop the node (SIGTERM) and start it again")
	f.StringVar(&flags.scenarios, "scenario", "", "reproduce causes tether diagnose names on chosen devices and check its verdicts, e.g. duplicate-identity=300 (see Scenarios above)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed (fault choice, jitter, telemetry phase)")
	f.StringVar(&flags.mqttAddr, "mqtt-addr", "", "MQTT/TLS address of the hub (default: the API host on port 8883); a cluster's nodes comma-separated: devices are spread over them, a dup copy connects to the next node (cross-node takeover)")
	f.IntVar(&cfg.Sources, "sources", 60, "loopback source addresses to spread connections over (127.0.0.2…)")
	f.IntVar(&cfg.PerProcess, "per-process", 15000, "devices per process; more start worker processes")
	f.DurationVar(&cfg.SilenceKeepAlive, "silence-keep-alive", 10*time.Second, "keep-alive of devices picked for the silence fault")
	f.DurationVar(&cfg.DisableFor, "disable-for", 20*time.Second, "how long the disabled fault keeps a device disabled")
	f.DurationVar(&cfg.SlowTLSDelay, "slow-tls-delay", 2*time.Second, "how long a slow client stretches its TLS handshake")
	f.DurationVar(&cfg.HubConnectTimeout, "hub-connect-timeout", 10*time.Second, "the hub's --connect-timeout (slow handshakes past it expect 500008)")
	f.DurationVar(&cfg.Settle, "settle", 90*time.Second, "after the stop, wait at most this long for the hub's events and log")
	f.BoolVar(&cfg.Twin, "twin", true, "devices GET their twin at start-up, report properties and take desired pushes")
	f.BoolVar(&cfg.Methods, "methods", true, "devices answer direct methods")
	f.DurationVar(&cfg.ReportedEvery, "reported-every", 5*time.Minute, "reported-properties patch interval per device after the start-up one (0: start-up only)")
	f.DurationVar(&cfg.MethodDelay, "method-delay", 10*time.Millisecond, "simulated processing time before a device answers a method")
	f.StringVar(&flags.methodRate, "method-rate", "1/s", "direct method calls over the fleet, e.g. 100/s or 30/min (0: none)")
	f.Float64Var(&cfg.MethodNoAnswer, "method-no-answer", 0.05, "fraction of calls to a method no device handles (they end in 504101)")
	f.Float64Var(&cfg.MethodOffline, "method-offline", 0.05, "fraction of calls to registered devices that never connect (404103)")
	f.DurationVar(&cfg.MethodTimeout, "method-timeout", 5*time.Second, "responseTimeoutInSeconds of the calls (5s…300s)")
	f.StringVar(&flags.desiredRate, "desired-rate", "1/s", "desired-property updates over the fleet, e.g. 20/s (0: none)")
	f.DurationVar(&cfg.TwinTimeout, "twin-timeout", 30*time.Second, "a twin GET or reported patch unanswered this long on a live connection fails the run")
	f.BoolVar(&cfg.Insecure, "insecure", false, "do not verify the hub's MQTT certificate")
	f.StringVar(&flags.webhookAddr, "webhook-addr", "127.0.0.1:0", "listen address of the simulator's webhook receiver")
	f.StringVar(&flags.webhookURL, "webhook-url", "", "URL the hub should call for the receiver (default: http://<webhook-addr>/hook)")
	f.BoolVar(&flags.json, "json", false, "JSON lines (progress every second, the report last) instead of text")
	f.StringVar(&flags.out, "out", "", "also write the text report to this file")
	return cmd
}

// resolveSimAddrs fills the hub name, addresses and CA from the API
// client: MQTT on the API host's port 8883 unless given, WebSockets on the
// API's host:port.
func resolveSimAddrs(cfg *sim.Config, c *apiClient, mqttAddr string) error {
	u, err := url.Parse(c.Base)
	if err != nil {
		return err
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	cfg.HubName = c.cs.HostName
	cfg.HTTPSAddr = net.JoinHostPort(host, port)
	cfg.MQTTAddr = mqttAddr
	if addrs := strings.Split(mqttAddr, ","); len(addrs) > 1 {
		for _, a := range addrs {
			if a = strings.TrimSpace(a); a != "" {
				cfg.MQTTAddrs = append(cfg.MQTTAddrs, a)
			}
		}
		cfg.MQTTAddr = cfg.MQTTAddrs[0]
	}
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = net.JoinHostPort(host, "8883")
	}
	cfg.CAPEM = c.caPEM
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// spawnSimWorker re-executes this binary as "tether sim-worker" with the
// spec on stdin. The worker gets SIGINT when ctx ends (it then stops its
// devices and reports) and SIGKILL if this process dies.
func spawnSimWorker(ctx context.Context, spec sim.WorkerSpec) (sim.Worker, error) {
	self, err := os.Executable()
	if err != nil {
		return sim.Worker{}, err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return sim.Worker{}, err
	}
	cmd := exec.Command(self, "sim-worker")
	cmd.Stdin = strings.NewReader(string(b))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return sim.Worker{}, err
	}
	if err := cmd.Start(); err != nil {
		return sim.Worker{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(syscall.SIGINT) })
	return sim.Worker{Out: out, Wait: func() error { defer stop(); return cmd.Wait() }}, nil
}

func newSimWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "sim-worker",
		Short:  "Run a share of a 'tether sim' fleet (started by tether sim; reads its spec on stdin)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var spec sim.WorkerSpec
			if err := json.NewDecoder(cmd.InOrStdin()).Decode(&spec); err != nil {
				return fmt.Errorf("reading the worker spec: %w", err)
			}
			var api *hubclient.Client
			if spec.ConnString != "" {
				cs, err := sas.ParseConnectionString(spec.ConnString)
				if err != nil {
					return err
				}
				if api, err = hubclient.New(spec.APIBase, cs, spec.Config.CAPEM); err != nil {
					return err
				}
			}
			return sim.RunWorker(cmd.Context(), spec, api, cmd.OutOrStdout())
		},
	}
}

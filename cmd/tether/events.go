package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/events"
)

func init() { subcommands = append(subcommands, newEventsCmd) }

func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Watch the hub's events (connections, device lifecycle, telemetry) as they happen",
	}
	cmd.AddCommand(newEventsTailCmd())
	return cmd
}

func newEventsTailCmd() *cobra.Command {
	var device string
	var types []string
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print events as the hub journals them, until Ctrl-C",
		Long: `Print the hub's events as they happen, from GET /api/v1/events (Server-Sent
Events). By default the connection events, DeviceConnected and
DeviceDisconnected; --type asks for others (DeviceCreated, DeviceDeleted,
DeviceTelemetry) or All.

Table output is one line per event: event time, type, device, sequence
number (connection events: 64 hex digits, increasing per device) and what
Tether knows about the cause (data.tether: reason, IoT Hub result code and
name, token renewal, session length). -o json prints each event as one line
of Event Grid schema JSON, as a webhook subscription receives it.

The tail shows what happens while it runs; nothing is replayed. Durable
delivery is what subscriptions ('tether sub') are for. Any NATS client can
also read the journal directly: tether.conn.<device>.{connected,disconnected,
refused} (stream TETHER_CONN), tether.registry.<device>.<op> (TETHER_REGISTRY)
and tether.telemetry.<device> (TETHER_TELEMETRY), device ids with '.', '*',
'>', '%' and whitespace percent-encoded.`,
		Example: `  tether events tail
  tether events tail --device dev1 --type DeviceConnected,DeviceDisconnected,DeviceDeleted
  tether events tail --type All -o json | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			ts, err := api.ParseTailTypes(types)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			q := url.Values{}
			if device != "" {
				q.Set("device", device)
			}
			names := make([]string, len(ts))
			for i, t := range ts {
				names[i] = api.ShortTypeName(string(t))
			}
			q.Set("type", strings.Join(names, ","))
			if clientFlags.output == "table" {
				who := "all devices"
				if device != "" {
					who = device
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Tailing %s events of %s (Ctrl-C to stop)\n", strings.Join(names, ", "), who)
			}
			return tailEvents(cmd.Context(), c, "/api/v1/events?"+q.Encode(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&device, "device", "", "only this device's events")
	cmd.Flags().StringSliceVar(&types, "type", nil, "event types, comma-separated: DeviceConnected, DeviceDisconnected, DeviceCreated, DeviceDeleted, DeviceTelemetry or All (default DeviceConnected,DeviceDisconnected)")
	return cmd
}

// tailEvents reads the event stream until ctx ends (a clean exit) or the
// stream fails.
func tailEvents(ctx context.Context, c *apiClient, path string, out, errOut io.Writer) error {
	return followStream(ctx, c, path, errOut, "event", "events", "tail", func(data string) error {
		return printEvent(out, data)
	})
}

// printEvent prints one event: its JSON as received, or a table line.
func printEvent(w io.Writer, data string) error {
	if clientFlags.output == "json" {
		_, err := fmt.Fprintln(w, data)
		return err
	}
	var e events.EventGridEvent
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		return fmt.Errorf("the hub sent an event the client cannot read: %w", err)
	}
	_, err := fmt.Fprintln(w, formatEvent(e))
	return err
}

// tailData is what the table line takes from an event's data, in any of
// the five types.
type tailData struct {
	DeviceID                       string `json:"deviceId"`
	DeviceConnectionStateEventInfo struct {
		SequenceNumber string `json:"sequenceNumber"`
	} `json:"deviceConnectionStateEventInfo"`
	Tether           *events.Extension `json:"tether"`
	SystemProperties map[string]string `json:"systemProperties"`
}

// formatEvent renders "time  type  device  sequence  detail".
func formatEvent(e events.EventGridEvent) string {
	var d tailData
	_ = json.Unmarshal(e.Data, &d) // an unknown shape leaves the columns empty
	device := d.DeviceID
	if device == "" {
		device = d.SystemProperties[events.SysDeviceID]
	}
	if device == "" {
		device = strings.TrimPrefix(e.Subject, "devices/")
	}
	var detail []string
	if x := d.Tether; x != nil {
		if x.Reason != "" {
			detail = append(detail, x.Reason)
		}
		if x.ResultType != "" || x.ResultDescription != "" {
			detail = append(detail, strings.TrimSpace(x.ResultType+" "+x.ResultDescription))
		}
		if x.ConnectDurationMs > 0 {
			detail = append(detail, "after "+(time.Duration(x.ConnectDurationMs)*time.Millisecond).String())
		}
		if x.TokenRenewal {
			detail = append(detail, "token-renewal")
		}
	}
	return fmt.Sprintf("%s  %s  %s  %s  %s", e.EventTime, api.ShortTypeName(e.EventType), dash(device),
		dash(d.DeviceConnectionStateEventInfo.SequenceNumber), dash(strings.Join(detail, " ")))
}

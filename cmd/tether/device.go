package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

func init() { subcommands = append(subcommands, newDeviceCmd) }

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Manage device identities, send cloud-to-device messages, watch telemetry",
		Long: `Manage the device identities of a running hub through its registry REST API
(the one the Azure IoT service SDKs use), send cloud-to-device messages and
watch device telemetry as it arrives.

Credentials: see the global flags (--connection-string, --url, --ca); next to
a 'tether serve --dev' data dir none are needed.`,
	}
	cmd.AddCommand(
		newDeviceCreateCmd(),
		newDeviceListCmd(),
		newDeviceShowCmd(),
		newDeviceUpdateCmd(),
		newDeviceDeleteCmd(),
		newDeviceConnStringCmd(),
		newDeviceTokenCmd(),
		newDeviceSendCmd(),
		newDeviceMonitorCmd(),
		newDeviceTwinCmd(),
		newDeviceInvokeCmd(),
		newDeviceQueryCmd(),
		newDeviceImportCmd(),
	)
	return cmd
}

// devicePath is the registry REST path of a device; the id is one
// percent-encoded path segment, so ids with '#', '?' or '%' survive.
func devicePath(id string) string {
	return "/devices/" + url.PathEscape(id) + "?api-version=" + api.APIVersion
}

func getDevice(ctx context.Context, c *apiClient, id string) (registry.Device, error) {
	var d registry.Device
	err := c.do(ctx, http.MethodGet, devicePath(id), nil, &d, nil)
	return d, err
}

// parseStatus accepts enabled/disabled in any case.
func parseStatus(s string) (registry.Status, error) {
	switch st := registry.Status(strings.ToLower(s)); st {
	case registry.Enabled, registry.Disabled:
		return st, nil
	}
	return "", fmt.Errorf("--status %q: use enabled or disabled", s)
}

func newDeviceCreateCmd() *cobra.Command {
	var status, reason, primary, secondary string
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Register a device (keys are generated unless given)",
		Args:  deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			d := registry.Device{DeviceID: args[0]}
			if d.Status, err = parseStatus(status); err != nil {
				return err
			}
			if cmd.Flags().Changed("status-reason") {
				d.StatusReason = &reason
			}
			d.Authentication = registry.Authentication{Type: "sas",
				SymmetricKey: registry.SymmetricKey{PrimaryKey: primary, SecondaryKey: secondary}}
			var out registry.Device
			if err := c.do(cmd.Context(), http.MethodPut, devicePath(d.DeviceID), d, &out, nil); err != nil {
				return err
			}
			return printDevice(cmd.OutOrStdout(), out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&status, "status", "enabled", "enabled or disabled")
	f.StringVar(&reason, "status-reason", "", "why the device has its status (up to 128 characters)")
	f.StringVar(&primary, "primary-key", "", "primary symmetric key, base64 of 16-64 bytes (default: generated)")
	f.StringVar(&secondary, "secondary-key", "", "secondary symmetric key, base64 of 16-64 bytes (default: generated)")
	return cmd
}

func newDeviceListCmd() *cobra.Command {
	var top int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List devices (at most 1000, like IoT Hub)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if top < 1 || top > 1000 {
				return fmt.Errorf("--top %d: use 1 to 1000", top)
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			var devs []registry.Device
			path := fmt.Sprintf("/devices/?api-version=%s&top=%d", api.APIVersion, top)
			if err := c.do(cmd.Context(), http.MethodGet, path, nil, &devs, nil); err != nil {
				return err
			}
			if devs == nil {
				devs = []registry.Device{}
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), devs)
			}
			return printDeviceTable(cmd.OutOrStdout(), devs)
		},
	}
	cmd.Flags().IntVar(&top, "top", 1000, "at most this many devices (1-1000)")
	return cmd
}

func newDeviceShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a device, keys included",
		Args:  deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			d, err := getDevice(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return printDevice(cmd.OutOrStdout(), d)
		},
	}
}

func newDeviceUpdateCmd() *cobra.Command {
	var status, reason, primary, secondary string
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a device's status, status reason or keys (disabling disconnects it)",
		Args:  deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if !f.Changed("status") && !f.Changed("status-reason") && !f.Changed("primary-key") && !f.Changed("secondary-key") {
				return errors.New("nothing to update: give --status, --status-reason, --primary-key or --secondary-key")
			}
			var st registry.Status
			if f.Changed("status") {
				var err error
				if st, err = parseStatus(status); err != nil {
					return err
				}
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			d, err := getDevice(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if st != "" {
				d.Status = st
			}
			if f.Changed("status-reason") {
				d.StatusReason = &reason
				if reason == "" {
					d.StatusReason = nil
				}
			}
			if primary != "" {
				d.Authentication.SymmetricKey.PrimaryKey = primary
			}
			if secondary != "" {
				d.Authentication.SymmetricKey.SecondaryKey = secondary
			}
			// Conditional on the etag just read, so a concurrent change is
			// reported instead of overwritten.
			var out registry.Device
			err = c.do(cmd.Context(), http.MethodPut, devicePath(d.DeviceID), d, &out, map[string]string{"If-Match": `"` + d.ETag + `"`})
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed {
				return fmt.Errorf("device %s changed while it was being updated; run the command again (%w)", d.DeviceID, err)
			}
			if err != nil {
				return err
			}
			return printDevice(cmd.OutOrStdout(), out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "enabled or disabled")
	f.StringVar(&reason, "status-reason", "", "why the device has its status (\"\" clears it)")
	f.StringVar(&primary, "primary-key", "", "new primary key, base64 of 16-64 bytes")
	f.StringVar(&secondary, "secondary-key", "", "new secondary key, base64 of 16-64 bytes")
	return cmd
}

func newDeviceDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a device (disconnects it)",
		Args:  deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, devicePath(args[0]), nil, nil, nil); err != nil {
				return err
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"deviceId": args[0], "deleted": true})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Deleted device %s\n", args[0])
			return err
		},
	}
}

// addKeyFlag adds --key primary|secondary.
func addKeyFlag(cmd *cobra.Command, which *string) {
	cmd.Flags().StringVar(which, "key", "primary", "which device key to use: primary or secondary")
}

// deviceKey checks --key, then reads the device and returns the hub host
// name, the device and the chosen key.
func deviceKey(ctx context.Context, id, which string) (host string, d registry.Device, key string, err error) {
	if which != "primary" && which != "secondary" {
		return "", d, "", fmt.Errorf("--key %q: use primary or secondary", which)
	}
	c, err := outputClient()
	if err != nil {
		return "", d, "", err
	}
	if d, err = getDevice(ctx, c, id); err != nil {
		return "", d, "", err
	}
	key = d.Authentication.SymmetricKey.PrimaryKey
	if which == "secondary" {
		key = d.Authentication.SymmetricKey.SecondaryKey
	}
	return c.cs.HostName, d, key, nil
}

func newDeviceConnStringCmd() *cobra.Command {
	var which string
	cmd := &cobra.Command{
		Use:   "connection-string ID",
		Short: "Print the device connection string (HostName=…;DeviceId=…;SharedAccessKey=…)",
		Args:  deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, d, key, err := deviceKey(cmd.Context(), args[0], which)
			if err != nil {
				return err
			}
			cs := sas.ConnectionString{HostName: host, DeviceID: d.DeviceID, SharedAccessKey: key}.String()
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]string{"connectionString": cs})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), cs)
			return err
		},
	}
	addKeyFlag(cmd, &which)
	return cmd
}

func newDeviceTokenCmd() *cobra.Command {
	var which string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token ID",
		Short: "Print a SAS token signed with the device key (the MQTT password)",
		Args:  deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl <= 0 {
				return fmt.Errorf("--ttl %s: must be positive", ttl)
			}
			host, d, key, err := deviceKey(cmd.Context(), args[0], which)
			if err != nil {
				return err
			}
			exp := time.Now().Add(ttl).Truncate(time.Second)
			tok, err := sas.Sign(sas.DeviceResource(host, d.DeviceID), key, "", exp)
			if err != nil {
				return err
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"deviceId": d.DeviceID, "token": tok, "expiry": exp.UTC()})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	addKeyFlag(cmd, &which)
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	return cmd
}

// c2dRequest is the request of POST /api/v1/devices/{id}/messages.
type c2dRequest struct {
	Payload    string            `json:"payload"`
	Properties map[string]string `json:"properties,omitempty"`
	MessageID  string            `json:"messageId,omitempty"`
}

// parseMessageProps reads repeated --prop key=value flags.
func parseMessageProps(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	props := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--prop %q: want key=value", kv)
		}
		if _, dup := props[k]; dup {
			return nil, fmt.Errorf("--prop %s given twice", k)
		}
		props[k] = v
	}
	return props, nil
}

func newDeviceSendCmd() *cobra.Command {
	var props []string
	var messageID string
	cmd := &cobra.Command{
		Use:   "send ID PAYLOAD",
		Short: "Send a cloud-to-device message",
		Example: `  tether device send dev1 '{"led":"on"}' --prop priority=high
  tether device send dev1 reboot --message-id reboot-42`,
		Args: deviceArgs(2, "the device id and the payload"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parseMessageProps(props)
			if err != nil {
				return err
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			var out struct {
				MessageID string `json:"messageId"`
			}
			path := "/api/v1/devices/" + url.PathEscape(args[0]) + "/messages"
			if err := c.do(cmd.Context(), http.MethodPost, path, c2dRequest{Payload: args[1], Properties: p, MessageID: messageID}, &out, nil); err != nil {
				return err
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]string{"deviceId": args[0], "messageId": out.MessageID})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Sent message %s to %s\n", out.MessageID, args[0])
			return err
		},
	}
	cmd.Flags().StringArrayVar(&props, "prop", nil, "application property key=value (repeatable)")
	cmd.Flags().StringVar(&messageID, "message-id", "", "message id (default: generated by the hub)")
	return cmd
}

func newDeviceMonitorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "monitor [ID]",
		Short: "Print device telemetry as it arrives, from one device or all, until Ctrl-C",
		Long: `Print device-to-cloud messages as the hub receives them, like
'az iot hub monitor-events'. Table output is one line per message: enqueued
time, device, properties, payload (base64: prefixed when not UTF-8). JSON
output is one object per line.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			path := "/api/v1/telemetry"
			who := "all devices"
			if len(args) == 1 {
				path += "?device=" + url.QueryEscape(args[0])
				who = args[0]
			}
			if clientFlags.output == "table" {
				fmt.Fprintf(cmd.ErrOrStderr(), "Monitoring telemetry from %s (Ctrl-C to stop)\n", who)
			}
			return monitorTelemetry(cmd.Context(), c, path, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}

// monitorTelemetry reads the telemetry event stream until ctx ends (a
// clean exit) or the stream fails.
func monitorTelemetry(ctx context.Context, c *apiClient, path string, out, errOut io.Writer) error {
	return followStream(ctx, c, path, errOut, "telemetry", "messages", "monitor", func(data string) error {
		return printTelemetry(out, data)
	})
}

// followStream reads a Server-Sent Events stream of the hub (telemetry
// or events) until ctx ends (a clean exit) or the stream fails, handing
// each data event to print. what, items and reader name the stream in
// messages ("telemetry", "messages", "monitor").
func followStream(ctx context.Context, c *apiClient, path string, errOut io.Writer, what, items, reader string, print func(data string) error) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil, map[string]string{"Accept": "text/event-stream"})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &APIError{Status: resp.StatusCode, Message: errorMessage(data)}
	}
	err = scanSSE(resp.Body, func(event, data string) error {
		switch event {
		case "":
			return print(data)
		case "dropped":
			var d struct{ Dropped int64 }
			_ = json.Unmarshal([]byte(data), &d)
			fmt.Fprintf(errOut, "tether: the hub dropped %d %s for this %s (it reads too slowly)\n", d.Dropped, items, reader)
		case "error":
			return fmt.Errorf("the hub ended the %s stream: %s", what, errorMessage([]byte(data)))
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil // Ctrl-C
	}
	if err == nil {
		err = fmt.Errorf("the hub closed the %s stream", what)
	}
	return err
}

// scanSSE calls fn for each Server-Sent Event (name, data) read from r;
// comment lines are skipped. It returns fn's error or the read error (nil
// at EOF).
func scanSSE(r io.Reader, fn func(event, data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20) // a 256 KiB D2C payload is ~350 KiB as base64
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				if err := fn(event, strings.Join(data, "\n")); err != nil {
					return err
				}
			}
			event, data = "", nil
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				data = append(data, value)
			}
		}
	}
	return sc.Err()
}

// printTelemetry prints one message: the JSON as received, or a table
// line.
func printTelemetry(w io.Writer, data string) error {
	if clientFlags.output == "json" {
		_, err := fmt.Fprintln(w, data)
		return err
	}
	var m api.TelemetryEvent
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return fmt.Errorf("the hub sent a message the client cannot read: %w", err)
	}
	_, err := fmt.Fprintln(w, formatTelemetry(m))
	return err
}

// formatTelemetry renders a message as "time  device  k=v,…  payload".
func formatTelemetry(m api.TelemetryEvent) string {
	props := "-"
	if len(m.Properties) > 0 {
		keys := make([]string, 0, len(m.Properties))
		for k := range m.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + m.Properties[k]
		}
		props = strings.Join(keys, ",")
	}
	payload := m.Payload
	if m.PayloadEncoding == "base64" {
		payload = "base64:" + payload
	}
	return fmt.Sprintf("%s  %s  %s  %s", m.EnqueuedTime.UTC().Format(time.RFC3339Nano), m.DeviceID, props, payload)
}

// printDevice prints one device: JSON as the REST API returns it, or a
// key/value table.
func printDevice(w io.Writer, d registry.Device) error {
	if clientFlags.output == "json" {
		return printJSON(w, d)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	reason := "-"
	if d.StatusReason != nil && *d.StatusReason != "" {
		reason = *d.StatusReason
	}
	rows := [][2]string{
		{"Device ID", d.DeviceID},
		{"Status", string(d.Status)},
		{"Status reason", reason},
		{"Status updated", fmtDeviceTime(d.StatusUpdatedTime)},
		{"Connection state", d.ConnectionState},
		{"Connection state updated", fmtDeviceTime(d.ConnectionStateUpdatedTime)},
		{"Last activity", fmtDeviceTime(d.LastActivityTime)},
		{"Authentication", d.Authentication.Type},
		{"Primary key", d.Authentication.SymmetricKey.PrimaryKey},
		{"Secondary key", d.Authentication.SymmetricKey.SecondaryKey},
		{"Generation ID", d.GenerationID},
		{"ETag", d.ETag},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// printDeviceTable prints one line per device.
func printDeviceTable(w io.Writer, devs []registry.Device) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE ID\tSTATUS\tCONNECTION\tLAST ACTIVITY")
	for _, d := range devs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.DeviceID, d.Status, d.ConnectionState, fmtDeviceTime(d.LastActivityTime))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(devs) == 0 {
		_, err := fmt.Fprintln(w, "(no devices)")
		return err
	}
	return nil
}

// fmtDeviceTime renders IoT Hub's "never" (0001-01-01) as "-".
func fmtDeviceTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// deviceArgs is cobra.ExactArgs with a message that says what is missing.
func deviceArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s (got %d arguments); see '%s --help'", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

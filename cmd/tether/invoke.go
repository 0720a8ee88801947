package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/api"
)

// tether device invoke: a direct method call, POST /twins/{id}/methods as
// the azure-iothub Client.invokeDeviceMethod sends it.

// Exit statuses of invoke besides 0 (the device answered below 400) and 1
// (the call could not be made: bad flags, unknown device, hub
// unreachable, throttled).
const (
	exitMethodError   = 2 // the device answered with a status of 400 or more
	exitDeviceOffline = 3 // 404103 DeviceNotOnline
	exitMethodTimeout = 4 // 504101 GatewayTimeout: no answer in time
)

// IoT Hub's bounds on the timeouts of a call.
const (
	minMethodTimeout  = 5 * time.Second
	maxMethodTimeout  = 300 * time.Second
	maxConnectTimeout = 300 * time.Second
)

// methodCall is the request body.
type methodCall struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds float64         `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  float64         `json:"connectTimeoutInSeconds"`
}

func newDeviceInvokeCmd() *cobra.Command {
	var payload string
	var timeout, connectTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "invoke ID METHOD",
		Short: "Call a direct method on a connected device and print its answer",
		Long: `Call a direct method on a device (IoT Hub's invokeDeviceMethod) and
print the device's answer: "status N" and its JSON payload, or with -o json
the hub's answer {"status":N,"payload":…}.

The device must be connected and subscribed to $iothub/methods/POST/#
(the device SDKs do this when a method handler is set). --timeout is how
long the device has to answer (5s to 300s); --connect-timeout is how long
the hub waits for an offline device to connect first (0 to 300s; 0: fail at
once if it is offline).

Exit status:
  0  the device answered with a status below 400
  1  the call could not be made (bad flags, unknown device, hub unreachable,
     too many calls in flight)
  2  the device answered with a status of 400 or more (the answer is printed)
  3  the device is not online (IoT Hub 404103 DeviceNotOnline)
  4  the device did not answer in time (IoT Hub 504101 GatewayTimeout)`,
		Example: `  tether device invoke thermo-1 reboot
  tether device invoke thermo-1 setInterval --payload '{"seconds":30}' --timeout 10s
  tether device invoke thermo-1 getLogs --payload @request.json --connect-timeout 1m -o json`,
		Args: deviceArgs(2, "the device id and the method name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, method := args[0], args[1]
			if timeout < minMethodTimeout || timeout > maxMethodTimeout {
				return fmt.Errorf("--timeout %s: IoT Hub allows %s to %s", timeout, minMethodTimeout, maxMethodTimeout)
			}
			if connectTimeout < 0 || connectTimeout > maxConnectTimeout {
				return fmt.Errorf("--connect-timeout %s: IoT Hub allows 0s to %s", connectTimeout, maxConnectTimeout)
			}
			body := methodCall{MethodName: method, Payload: json.RawMessage("null"),
				ResponseTimeoutInSeconds: timeout.Seconds(), ConnectTimeoutInSeconds: connectTimeout.Seconds()}
			if cmd.Flags().Changed("payload") {
				var err error
				if body.Payload, err = readJSONArg("--payload", payload, cmd.InOrStdin()); err != nil {
					return err
				}
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			path := "/twins/" + url.PathEscape(id) + "/methods?api-version=" + api.APIVersion
			var data json.RawMessage
			if err := c.do(cmd.Context(), http.MethodPost, path, body, &data, nil); err != nil {
				var ae *APIError
				if errors.As(err, &ae) {
					return methodError(id, method, timeout, connectTimeout, ae)
				}
				return err
			}
			var res struct {
				Status  *int            `json:"status"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal(data, &res); err != nil || res.Status == nil {
				return fmt.Errorf("the hub's answer is not {\"status\",\"payload\"}: %s", strings.TrimSpace(string(data)))
			}
			out := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				if err := printIndented(out, data); err != nil {
					return err
				}
			} else if err := printMethodResult(out, *res.Status, res.Payload); err != nil {
				return err
			}
			if *res.Status >= 400 {
				return withExit{fmt.Errorf("device %s answered method %s with status %d", id, method, *res.Status), exitMethodError}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&payload, "payload", "", "the method's payload: JSON, or @file (default null)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long the device has to answer (5s-300s)")
	f.DurationVar(&connectTimeout, "connect-timeout", 0, "how long to wait for an offline device to connect (0-300s)")
	return cmd
}

// printMethodResult prints "status N" and the payload, indented.
func printMethodResult(w io.Writer, status int, payload json.RawMessage) error {
	var buf bytes.Buffer
	if len(payload) == 0 {
		buf.WriteString("null")
	} else if err := json.Indent(&buf, payload, "", "  "); err != nil {
		buf.Reset()
		buf.Write(payload)
	}
	_, err := fmt.Fprintf(w, "status %d\n%s\n", status, buf.String())
	return err
}

// methodError explains a call the hub refused in IoT Hub's words, with
// what to do, and gives the offline and timeout cases their exit status.
func methodError(id, method string, timeout, connectTimeout time.Duration, ae *APIError) error {
	switch {
	case ae.Status == http.StatusNotFound && strings.Contains(ae.Message, "DeviceNotOnline"):
		todo := "start the device and make sure it subscribes to $iothub/methods/POST/# (the device SDKs do when a method handler is set)"
		if connectTimeout == 0 {
			todo += ", or give --connect-timeout 30s to wait for it to connect"
		} else {
			todo = fmt.Sprintf("it did not connect within --connect-timeout %s: %s", connectTimeout, todo)
		}
		return withExit{fmt.Errorf("device %s is not online (%w)\nwhat to do: %s", id, ae, todo), exitDeviceOffline}
	case ae.Status == http.StatusGatewayTimeout:
		return withExit{fmt.Errorf("device %s did not answer method %s within %s (%w)\nwhat to do: check that the device handles %q and answers it, or raise --timeout (up to %s)",
			id, method, timeout, ae, method, maxMethodTimeout), exitMethodTimeout}
	case ae.Status == http.StatusTooManyRequests:
		return fmt.Errorf("the hub has too many method calls in flight (%w)\nwhat to do: retry in a moment", ae)
	}
	return ae
}

// withExit is an error that asks main for a given exit status without
// saying so in its message.
type withExit struct {
	error
	code exitError
}

func (e withExit) Unwrap() []error { return []error{e.error, e.code} }

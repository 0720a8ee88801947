package main

import (
	"bytes"
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
)

// tether device twin show|update: the service side of device twins,
// GET/PATCH/PUT /twins/{id} as the azure-iothub Registry calls them.

func newDeviceTwinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "twin",
		Short: "Show or update a device twin (tags, desired and reported properties)",
		Long: `Read and write device twins through the hub's IoT Hub twin API
(GET/PATCH/PUT /twins/{id}). The service writes tags and desired
properties; reported properties are the device's.`,
	}
	cmd.AddCommand(newTwinShowCmd(), newTwinUpdateCmd())
	return cmd
}

func twinPath(id string) string {
	return "/twins/" + url.PathEscape(id) + "?api-version=" + api.APIVersion
}

// twinAnswer is a twin as the hub sent it, kept whole for -o json.
type twinAnswer struct {
	raw  json.RawMessage
	etag string // the ETag header, unquoted
}

// twinCall sends a twin request and returns the twin in the answer.
func twinCall(ctx context.Context, c *apiClient, method, id string, body any, headers map[string]string) (twinAnswer, error) {
	resp, err := c.send(ctx, method, twinPath(id), body, headers)
	if err != nil {
		return twinAnswer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return twinAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return twinAnswer{}, &APIError{Status: resp.StatusCode, Message: errorMessage(data)}
	}
	if !json.Valid(data) {
		return twinAnswer{}, errors.New("the hub's twin answer is not JSON")
	}
	return twinAnswer{raw: data, etag: strings.Trim(resp.Header.Get("ETag"), `"`)}, nil
}

func newTwinShowCmd() *cobra.Command {
	var metadata bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a device twin",
		Long: `Show a device twin. The table has the device's identity, status and
connection state, then tags, desired and reported properties as one
'path.to.member = value' line each (strings quoted, as JSON), with the
section's $version; --metadata adds the $metadata lines ($lastUpdated,
$lastUpdatedVersion per member). -o json prints the twin as the hub
answers it.`,
		Example: `  tether device twin show thermo-1
  tether device twin show thermo-1 --metadata
  tether device twin show thermo-1 -o json | jq .properties.reported`,
		Args: deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			t, err := twinCall(cmd.Context(), c, http.MethodGet, args[0], nil, nil)
			if err != nil {
				return err
			}
			return printTwin(cmd.OutOrStdout(), t.raw, metadata)
		},
	}
	cmd.Flags().BoolVar(&metadata, "metadata", false, "table: also show the $metadata of each section")
	return cmd
}

func newTwinUpdateCmd() *cobra.Command {
	var tags, desired, etag string
	var replace, metadata bool
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a twin's tags and desired properties (merge, or replace with --replace)",
		Long: `Change the tags and desired properties of a device twin and print the
new twin. --tags and --desired take a JSON object, inline or @file (@- for
standard input).

Without --replace the objects are merged into the twin (PATCH): members
given are set, members set to null are removed, others stay. A connected
device that subscribed to desired properties receives the change at once.

With --replace the sections given replace the twin's whole tags or desired
properties (PUT); a section not given is kept as it is (the command reads
the twin and writes it back, on condition that it did not change meanwhile;
written back, desired properties get a new $version and are sent to the
device again).

--etag writes only if the twin's etag is still ETAG (from 'twin show'), so
a change made by someone else since you read it is not overwritten: the
hub then answers 412 and nothing is written.`,
		Example: `  tether device twin update thermo-1 --desired '{"interval":30,"alarm":{"high":80}}'
  tether device twin update thermo-1 --tags '{"site":"berlin","floor":null}' --etag AAAAAAAAAAI=
  tether device twin update thermo-1 --desired @desired.json --replace`,
		Args: deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if !f.Changed("tags") && !f.Changed("desired") {
				return errors.New("nothing to update: give --tags, --desired or both (a JSON object, or @file)")
			}
			var tagsJSON, desiredJSON json.RawMessage
			var err error
			if f.Changed("tags") {
				if tagsJSON, err = jsonObjectArg("--tags", tags, cmd.InOrStdin()); err != nil {
					return err
				}
			}
			if f.Changed("desired") {
				if desiredJSON, err = jsonObjectArg("--desired", desired, cmd.InOrStdin()); err != nil {
					return err
				}
			}
			if f.Changed("etag") && strings.Trim(etag, `" `) == "" {
				return errors.New(`--etag "": give the etag 'twin show' printed, or leave --etag out`)
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			t, err := updateTwin(cmd.Context(), c, args[0], tagsJSON, desiredJSON, replace, etag)
			if err != nil {
				return err
			}
			return printTwin(cmd.OutOrStdout(), t.raw, metadata)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tags, "tags", "", "tags to merge (or replace), a JSON object or @file")
	fl.StringVar(&desired, "desired", "", "desired properties to merge (or replace), a JSON object or @file")
	fl.BoolVar(&replace, "replace", false, "replace the given sections instead of merging into them (PUT)")
	fl.StringVar(&etag, "etag", "", "write only if the twin's etag is still this one (If-Match)")
	fl.BoolVar(&metadata, "metadata", false, "table: also show the $metadata of each section")
	return cmd
}

// twinWrite is the body of PATCH/PUT /twins/{id}.
type twinWrite struct {
	Tags       json.RawMessage `json:"tags,omitempty"`
	Properties *struct {
		Desired json.RawMessage `json:"desired"`
	} `json:"properties,omitempty"`
}

// updateTwin merges (PATCH) or replaces (PUT) the given sections. A
// replacement of one section reads the twin first and sends the other
// back unchanged, conditional on the etag it read (or etag, if given).
func updateTwin(ctx context.Context, c *apiClient, id string, tags, desired json.RawMessage, replace bool, etag string) (twinAnswer, error) {
	method, ifMatch := http.MethodPatch, etag
	if replace {
		method = http.MethodPut
		if tags == nil || desired == nil {
			cur, err := twinCall(ctx, c, http.MethodGet, id, nil, nil)
			if err != nil {
				return twinAnswer{}, err
			}
			var parts struct {
				Tags       map[string]json.RawMessage `json:"tags"`
				Properties struct {
					Desired map[string]json.RawMessage `json:"desired"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(cur.raw, &parts); err != nil {
				return twinAnswer{}, fmt.Errorf("decoding the twin: %w", err)
			}
			if tags == nil {
				tags = keptSection(parts.Tags)
			}
			if desired == nil {
				desired = keptSection(parts.Properties.Desired)
			}
			if ifMatch == "" {
				ifMatch = cur.etag
			}
		}
	}
	body := twinWrite{Tags: tags}
	if desired != nil {
		body.Properties = &struct {
			Desired json.RawMessage `json:"desired"`
		}{desired}
	}
	var headers map[string]string
	if ifMatch != "" {
		headers = map[string]string{"If-Match": quoteETag(ifMatch)}
	}
	t, err := twinCall(ctx, c, method, id, body, headers)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed {
		return t, fmt.Errorf("the twin of %s changed since you read it (etag %s): show it again ('tether device twin show %s') and retry; nothing was written (%w)", id, strings.Trim(ifMatch, `"`), id, err)
	}
	return t, err
}

// keptSection is a twin section to send back as it is: its members,
// without "$metadata" and "$version", which are the hub's.
func keptSection(m map[string]json.RawMessage) json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "$") {
			out[k] = v
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// quoteETag puts an etag in the quotes If-Match wants, unless it has them.
func quoteETag(etag string) string {
	if strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/"`) {
		return etag
	}
	return `"` + etag + `"`
}

// twinView is what the table shows of a twin.
type twinView struct {
	DeviceID         string                     `json:"deviceId"`
	ETag             string                     `json:"etag"`
	Version          json.Number                `json:"version"`
	Status           string                     `json:"status"`
	StatusReason     string                     `json:"statusReason"`
	ConnectionState  string                     `json:"connectionState"`
	LastActivityTime time.Time                  `json:"lastActivityTime"`
	ModelID          string                     `json:"modelId"`
	Tags             map[string]json.RawMessage `json:"tags"`
	Properties       struct {
		Desired  map[string]json.RawMessage `json:"desired"`
		Reported map[string]json.RawMessage `json:"reported"`
	} `json:"properties"`
}

// printTwin prints a twin: the hub's JSON (indented, member order kept),
// or the table.
func printTwin(w io.Writer, raw json.RawMessage, metadata bool) error {
	if clientFlags.output == "json" {
		return printIndented(w, raw)
	}
	var t twinView
	if err := json.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("decoding the twin: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"Device ID", t.DeviceID},
		{"ETag", t.ETag},
		{"Version", t.Version.String()},
		{"Status", t.Status},
	}
	if t.StatusReason != "" {
		rows = append(rows, [2]string{"Status reason", t.StatusReason})
	}
	rows = append(rows,
		[2]string{"Connection state", t.ConnectionState},
		[2]string{"Last activity", fmtDeviceTime(t.LastActivityTime)})
	if t.ModelID != "" {
		rows = append(rows, [2]string{"Model ID", t.ModelID})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range []struct {
		title   string
		members map[string]json.RawMessage
	}{{"Tags", t.Tags}, {"Desired properties", t.Properties.Desired}, {"Reported properties", t.Properties.Reported}} {
		leaves := flattenTwin(s.members, metadata)
		if len(leaves) == 0 {
			fmt.Fprintf(w, "%s: (none)\n", s.title)
			continue
		}
		fmt.Fprintf(w, "%s:\n", s.title)
		for _, l := range leaves {
			if _, err := fmt.Fprintf(w, "  %s = %s\n", l.path, l.value); err != nil {
				return err
			}
		}
	}
	return nil
}

// twinMember is one leaf of a flattened twin section.
type twinMember struct {
	path  string // a.b.c
	value string // compact JSON; an empty object is {}
}

// flattenTwin lists a twin section's leaves: $version first, then the
// members in key order, then $metadata (only when metadata).
func flattenTwin(members map[string]json.RawMessage, metadata bool) []twinMember {
	var out []twinMember
	var walk func(prefix string, m map[string]json.RawMessage, top bool)
	walk = func(prefix string, m map[string]json.RawMessage, top bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			if top && k == "$metadata" && !metadata {
				continue
			}
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			ri, rj := twinKeyRank(keys[i]), twinKeyRank(keys[j])
			if ri != rj {
				return ri < rj
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			v := m[k]
			var sub map[string]json.RawMessage
			if len(v) > 0 && v[0] == '{' && json.Unmarshal(v, &sub) == nil && len(sub) > 0 {
				walk(prefix+k+".", sub, false)
				continue
			}
			var buf bytes.Buffer
			if json.Compact(&buf, v) != nil {
				buf.Reset()
				buf.Write(v)
			}
			out = append(out, twinMember{prefix + k, buf.String()})
		}
	}
	walk("", members, true)
	return out
}

// twinKeyRank orders a section's keys: $version, members, $metadata.
func twinKeyRank(k string) int {
	switch k {
	case "$version":
		return 0
	case "$metadata":
		return 2
	}
	return 1
}

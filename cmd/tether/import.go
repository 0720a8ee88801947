package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
)

// tether device import: bulk registry operations (POST /devices, IoT
// Hub's ExportImportDevice entries, 100 per call as Registry.addDevices,
// updateDevices and removeDevices send them) from a JSON file.

// maxImportFile bounds the file read: a million devices is ~300 MB.
const maxImportFile = 1 << 30

// exitImportFailures is the exit status when some entries failed (the
// others were applied).
const exitImportFailures = 2

// maxListedProblems is how many problems of a file are listed.
const maxListedProblems = 20

// importModes are IoT Hub's import modes, spelled as IoT Hub spells them.
var importModes = []string{
	registry.ModeCreate, registry.ModeCreateOrUpdate, registry.ModeCreateOrUpdateIfMatchETag,
	registry.ModeUpdate, registry.ModeUpdateIfMatchETag, registry.ModeDelete, registry.ModeDeleteIfMatchETag,
}

// canonicalMode returns IoT Hub's spelling of an import mode given in any
// case, or "".
func canonicalMode(m string) string {
	for _, c := range importModes {
		if strings.EqualFold(m, c) {
			return c
		}
	}
	return ""
}

// importEntry is one entry of the file, checked.
type importEntry struct {
	n    int // 1-based position in the file
	id   string
	mode string // canonical
	raw  json.RawMessage
}

func newDeviceImportCmd() *cobra.Command {
	var mode string
	var dryRun bool
	cmd := &cobra.Command{
		Use:     "import FILE",
		Aliases: []string{"bulk"},
		Short:   "Create, update or delete many devices from a JSON file (bulk registry operations)",
		Long: `Apply a JSON array of IoT Hub ExportImportDevice entries to the
registry, as the service SDKs' Registry.addDevices / updateDevices /
removeDevices do: {"id":"dev-1","importMode":"create","status":"enabled",
"authentication":{"type":"sas","symmetricKey":{"primaryKey":…}}} (keys are
generated when left out; "deviceId" may stand for "id"). FILE "-" reads
standard input.

importMode is one of create, createOrUpdate, createOrUpdateIfMatchETag,
update, updateIfMatchETag, delete, deleteIfMatchETag (the IfMatchETag modes
need the entry's "eTag"); --mode gives it to entries that have none.

The whole file is checked first (JSON, ids, modes, field types; every
problem listed, entries numbered from 1) and nothing is sent if any entry is
wrong. Then entries go 100 per call, in file order; each succeeds or fails
on its own, as on IoT Hub (a create of an existing device fails, the others
still apply). Progress goes to stderr for files over 100 entries; the
summary lists every failed entry with IoT Hub's error code. Twin sections
of an entry (tags, properties) are not applied by bulk calls: set them with
'tether device twin update'.

Exit status: 0 all entries applied; 1 nothing was applied (bad file or
flags) or a call failed midway (the summary says what was applied); 2 some
entries failed and the others were applied.`,
		Example: `  tether device import devices.json
  tether device list -o json | tether device import - --mode createOrUpdate   # re-apply a listing
  tether device import retire.json --mode delete --dry-run`,
		Args: deviceArgs(1, "the file (- for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if mode != "" && canonicalMode(mode) == "" {
				return fmt.Errorf("--mode %q: use one of %s", mode, strings.Join(importModes, ", "))
			}
			if err := checkOutput(); err != nil {
				return err
			}
			data, err := readArgFile(args[0], cmd.InOrStdin(), maxImportFile)
			if err != nil {
				return err
			}
			entries, warn, err := parseImportFile(args[0], data, canonicalMode(mode))
			if err != nil {
				return err
			}
			if warn != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "tether:", warn)
			}
			if dryRun {
				return printImportCheck(cmd.OutOrStdout(), args[0], entries)
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			sum, sendErr := importDevices(cmd.Context(), c, entries, cmd.ErrOrStderr())
			if err := printImportSummary(cmd.OutOrStdout(), sum); err != nil {
				return err
			}
			switch {
			case sendErr != nil:
				return sendErr
			case len(sum.Errors) == sum.Entries:
				return withExit{fmt.Errorf("all %d entries failed (listed above)", sum.Entries), exitImportFailures}
			case len(sum.Errors) > 0:
				return withExit{fmt.Errorf("%d of %d entries failed (listed above); the others were applied", len(sum.Errors), sum.Entries), exitImportFailures}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "", "importMode for entries that have none (create, createOrUpdate, update, delete, …)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and say what it would do; send nothing")
	return cmd
}

// parseImportFile checks the whole file: a JSON array of entries, each an
// object with an id, a known importMode (or defaultMode) and device fields
// of the right types. It returns every problem at once, or the entries
// (with defaultMode written into those without a mode) and a warning for
// twin sections bulk calls do not apply.
func parseImportFile(name string, data []byte, defaultMode string) ([]importEntry, string, error) {
	if err := checkJSON(data); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		var whole json.RawMessage
		_ = json.Unmarshal(data, &whole)
		return nil, "", fmt.Errorf(`%s: want a JSON array of devices ([{"id":…,"importMode":…}, …]), got %s`, name, jsonKindOf(whole))
	}
	if len(raws) == 0 {
		return nil, "", fmt.Errorf("%s: the array is empty: nothing to import", name)
	}
	var problems []string
	var twinParts int
	entries := make([]importEntry, 0, len(raws))
	for i, raw := range raws {
		e, twin, err := checkImportEntry(i+1, raw, defaultMode)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if twin {
			twinParts++
		}
		entries = append(entries, e)
	}
	if len(problems) > 0 {
		s := "s"
		if len(problems) == 1 {
			s = ""
		}
		msg := fmt.Sprintf("%s: %d problem%s, nothing was sent:", name, len(problems), s)
		for i, p := range problems {
			if i == maxListedProblems {
				msg += fmt.Sprintf("\n  … and %d more", len(problems)-i)
				break
			}
			msg += "\n  " + p
		}
		return nil, "", errors.New(msg)
	}
	warn := ""
	if twinParts > 0 {
		warn = fmt.Sprintf("%d entries carry twin sections (tags, properties, twinETag); bulk registry calls do not apply them: set them with 'tether device twin update'", twinParts)
	}
	return entries, warn, nil
}

// checkImportEntry checks entry n. twin says it carries twin sections.
func checkImportEntry(n int, raw json.RawMessage, defaultMode string) (e importEntry, twin bool, err error) {
	var fields map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &fields) != nil {
		return e, false, fmt.Errorf("entry %d: want a device object, got %s", n, jsonKindOf(raw))
	}
	// encoding/json matches names in any case, as the hub's decoder does:
	// "etag" from a device listing is the eTag.
	var head struct {
		ID         *string `json:"id"`
		DeviceID   *string `json:"deviceId"`
		ImportMode *string `json:"importMode"`
		ETag       *string `json:"eTag"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return e, false, fmt.Errorf("entry %d: id, deviceId, importMode and eTag must be strings", n)
	}
	e.n, e.raw = n, raw
	switch {
	case head.ID != nil && head.DeviceID != nil && *head.ID != *head.DeviceID:
		return e, false, fmt.Errorf("entry %d: id %q and deviceId %q differ", n, *head.ID, *head.DeviceID)
	case head.ID != nil:
		e.id = *head.ID
	case head.DeviceID != nil:
		e.id = *head.DeviceID
	}
	who := fmt.Sprintf("entry %d (%s)", n, e.id)
	if e.id == "" {
		return e, false, fmt.Errorf(`entry %d: no "id"`, n)
	}
	if err := registry.ValidateDeviceID(e.id); err != nil {
		return e, false, fmt.Errorf("%s: %s", who, registryMessage(err))
	}
	switch {
	case head.ImportMode != nil:
		if e.mode = canonicalMode(*head.ImportMode); e.mode == "" {
			return e, false, fmt.Errorf("%s: importMode %q is not one of %s", who, *head.ImportMode, strings.Join(importModes, ", "))
		}
	case defaultMode != "":
		e.mode = defaultMode
		fields["importMode"], _ = json.Marshal(defaultMode)
		e.raw, _ = json.Marshal(fields)
	default:
		return e, false, fmt.Errorf("%s: no importMode: give one of %s, or --mode", who, strings.Join(importModes, ", "))
	}
	if strings.HasSuffix(e.mode, "IfMatchETag") && (head.ETag == nil || *head.ETag == "") {
		return e, false, fmt.Errorf("%s: importMode %s needs the device's \"eTag\"", who, e.mode)
	}
	if _, err := registry.DecodeDevice(raw); err != nil {
		return e, false, fmt.Errorf("%s: %s", who, registryMessage(err))
	}
	_, tags := fields["tags"]
	_, props := fields["properties"]
	_, twinETag := fields["twinETag"]
	return e, tags || props || twinETag, nil
}

// registryMessage is a registry error without its code prefix.
func registryMessage(err error) string {
	var re *registry.Error
	if errors.As(err, &re) {
		return re.Message
	}
	return err.Error()
}

// importSummary is what an import did (also its -o json form).
type importSummary struct {
	Entries   int             `json:"entries"`
	Sent      int             `json:"sent"`
	Succeeded int             `json:"succeeded"`
	Modes     map[string]int  `json:"modes"`
	Errors    []importFailure `json:"errors"`
	Warnings  []importFailure `json:"warnings"`
	started   time.Time
}

// importFailure is one entry's error (or warning) from the hub.
type importFailure struct {
	Entry       int    `json:"entry"`
	DeviceID    string `json:"deviceId"`
	ImportMode  string `json:"importMode"`
	ErrorCode   int    `json:"errorCode"`
	ErrorStatus string `json:"errorStatus"`
}

// importDevices sends the entries 100 per call and collects the hub's
// per-entry results. A call that fails as a whole stops the import; the
// error says which entries were applied.
func importDevices(ctx context.Context, c *apiClient, entries []importEntry, progress io.Writer) (importSummary, error) {
	sum := importSummary{Entries: len(entries), Modes: map[string]int{}, Errors: []importFailure{}, Warnings: []importFailure{}, started: time.Now()}
	for _, e := range entries {
		sum.Modes[e.mode]++
	}
	lastReport := time.Now()
	path := "/devices?api-version=" + api.APIVersion
	for start := 0; start < len(entries); start += registry.MaxBulkDevices {
		batch := entries[start:min(start+registry.MaxBulkDevices, len(entries))]
		body := make([]json.RawMessage, len(batch))
		for i, e := range batch {
			body[i] = e.raw
		}
		var res registry.BulkResult
		if err := c.do(ctx, http.MethodPost, path, body, &res, nil); err != nil {
			return sum, fmt.Errorf("entries %d-%d could not be applied: %w\nentries before them were sent (see the summary above); none from entry %d on were applied: fix the cause and import those again",
				batch[0].n, batch[len(batch)-1].n, err, batch[0].n)
		}
		sum.Sent += len(batch)
		failed := matchBulkErrors(batch, res.Errors)
		sum.Errors = append(sum.Errors, failed...)
		sum.Warnings = append(sum.Warnings, matchBulkErrors(batch, res.Warnings)...)
		sum.Succeeded += len(batch) - len(failed)
		last := sum.Sent == len(entries)
		if len(entries) > registry.MaxBulkDevices && (last || time.Since(lastReport) >= time.Second) {
			fmt.Fprintf(progress, "tether: %d/%d entries sent, %d failed\n", sum.Sent, len(entries), len(sum.Errors))
			lastReport = time.Now()
		}
	}
	return sum, nil
}

// matchBulkErrors gives each error of a call the entry it is about: the
// hub reports them in entry order by device id, so each is matched to the
// next entry with that id.
func matchBulkErrors(batch []importEntry, errs []registry.BulkError) []importFailure {
	out := make([]importFailure, 0, len(errs))
	next := 0
	for _, be := range errs {
		f := importFailure{DeviceID: be.DeviceID, ErrorCode: be.ErrorCode, ErrorStatus: be.ErrorStatus}
		for i := next; i < len(batch); i++ {
			if batch[i].id == be.DeviceID {
				f.Entry, f.ImportMode = batch[i].n, batch[i].mode
				next = i + 1
				break
			}
		}
		out = append(out, f)
	}
	return out
}

// modeCounts renders "create 10, delete 2" in IoT Hub's mode order.
func modeCounts(m map[string]int) string {
	var parts []string
	for _, mode := range importModes {
		if n := m[mode]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", mode, n))
		}
	}
	return strings.Join(parts, ", ")
}

func printImportCheck(w io.Writer, name string, entries []importEntry) error {
	modes := map[string]int{}
	for _, e := range entries {
		modes[e.mode]++
	}
	if clientFlags.output == "json" {
		return printJSON(w, map[string]any{"entries": len(entries), "modes": modes, "sent": 0, "dryRun": true})
	}
	_, err := fmt.Fprintf(w, "%s: %d entries, all valid (%s); nothing sent (--dry-run)\n", name, len(entries), modeCounts(modes))
	return err
}

func printImportSummary(w io.Writer, s importSummary) error {
	if clientFlags.output == "json" {
		return printJSON(w, s)
	}
	switch {
	case s.Sent == 0:
		fmt.Fprintf(w, "Applied none of %d entries.\n", s.Entries)
	case len(s.Errors) == 0 && s.Sent == s.Entries:
		fmt.Fprintf(w, "Applied %d entries (%s) in %s.\n", s.Entries, modeCounts(s.Modes), time.Since(s.started).Round(time.Millisecond))
	default:
		fmt.Fprintf(w, "Applied %d of %d entries; %d failed", s.Succeeded, s.Entries, len(s.Errors))
		if s.Sent < s.Entries {
			fmt.Fprintf(w, "; %d not sent", s.Entries-s.Sent)
		}
		fmt.Fprintln(w, ":")
	}
	for _, list := range []struct {
		title string
		items []importFailure
	}{{"", s.Errors}, {"Warnings:", s.Warnings}} {
		if len(list.items) == 0 {
			continue
		}
		if list.title != "" {
			fmt.Fprintln(w, list.title)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ENTRY\tDEVICE ID\tMODE\tCODE\tERROR")
		for _, f := range list.items {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", f.Entry, f.DeviceID, orDash(f.ImportMode), f.ErrorCode, oneLine(f.ErrorStatus))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

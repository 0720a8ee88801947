package alert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Record is one transition of an alert instance, as kept in the history
// and listed by the API.
type Record struct {
	Time       time.Time         `json:"time"`
	AlertID    string            `json:"alertId"`
	Rule       string            `json:"alertRule"`
	SignalType string            `json:"signalType"`
	Severity   string            `json:"severity"`
	Condition  State             `json:"monitorCondition"` // Fired or Resolved
	Key        string            `json:"series,omitempty"`
	Dimensions map[string]string `json:"dimensions,omitempty"`
	Value      *float64          `json:"metricValue,omitempty"`
	Operator   Operator          `json:"operator"`
	Threshold  float64           `json:"threshold"`
	FiredAt    time.Time         `json:"firedDateTime"`
	ResolvedAt *time.Time        `json:"resolvedDateTime,omitempty"`
	Reason     string            `json:"reason,omitempty"`
}

// HistoryQuery selects records: all that match, the newest Limit (0: all)
// returned oldest first.
type HistoryQuery struct {
	Rule    string
	AlertID string
	Since   time.Time
	Limit   int
}

func (q HistoryQuery) match(r Record) bool {
	return (q.Rule == "" || r.Rule == q.Rule) && (q.AlertID == "" || r.AlertID == q.AlertID) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since))
}

// History keeps the transitions. Append must be durable when it returns.
type History interface {
	Append(Record) error
	List(HistoryQuery) []Record
	// Active returns the Fired records not followed by their Resolved.
	Active() []Record
}

// FileHistory is a History in a JSON-lines file, one record a line,
// fsynced per append (transitions are rare). Records older than the
// retention are dropped when the file is opened.
type FileHistory struct {
	mu        sync.Mutex
	path      string
	f         *os.File
	records   []Record
	retention time.Duration
}

var _ History = (*FileHistory)(nil)

// DefaultRetention is Azure Monitor's for alert instances.
const DefaultRetention = 30 * 24 * time.Hour

// OpenFileHistory reads path (creating it and its directory if needed),
// drops records older than now−retention (but not those of alerts still
// fired) and lines it cannot read (a
// crash can leave a partial last line; it says how many in skipped), and
// opens the file for appending.
func OpenFileHistory(path string, retention time.Duration, now time.Time) (h *FileHistory, skipped int, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, err
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, err
	}
	cutoff := now.Add(-retention)
	var all, keep []Record
	dropped := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil || r.AlertID == "" {
			skipped++
			continue
		}
		all = append(all, r)
	}
	// Expired records go, except those of alerts still fired.
	active := map[string]bool{}
	for _, a := range activeRecords(all) {
		active[a.AlertID] = true
	}
	for _, r := range all {
		if retention > 0 && r.Time.Before(cutoff) && !active[r.AlertID] {
			dropped++
			continue
		}
		keep = append(keep, r)
	}
	if skipped > 0 || dropped > 0 {
		if err := rewrite(path, keep); err != nil {
			return nil, skipped, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, skipped, err
	}
	return &FileHistory{path: path, f: f, records: keep, retention: retention}, skipped, nil
}

// rewrite replaces path atomically with recs.
func rewrite(path string, recs []Record) error {
	tmp := path + ".tmp"
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Append writes r and syncs the file.
func (h *FileHistory) Append(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return errors.New("alert history is closed")
	}
	if _, err := h.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("alert history: %w", err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("alert history: %w", err)
	}
	h.records = append(h.records, r)
	// Memory keeps the retention too (the file is trimmed at the next
	// start); an alert still fired is kept whatever its age.
	if h.retention > 0 && len(h.records) > 1 && r.Time.Sub(h.records[0].Time) > h.retention+h.retention/8 {
		cutoff := r.Time.Add(-h.retention)
		active := map[string]bool{}
		for _, a := range activeRecords(h.records) {
			active[a.AlertID] = true
		}
		kept := h.records[:0:0]
		for _, x := range h.records {
			if !x.Time.Before(cutoff) || active[x.AlertID] {
				kept = append(kept, x)
			}
		}
		h.records = kept
	}
	return nil
}

// List returns the matching records (see HistoryQuery).
func (h *FileHistory) List(q HistoryQuery) []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return ListRecords(h.records, q)
}

// ListRecords returns the records of recs (oldest first) that q matches,
// the newest q.Limit of them when it is set.
func ListRecords(recs []Record, q HistoryQuery) []Record {
	var out []Record
	for i := len(recs) - 1; i >= 0; i-- {
		if q.match(recs[i]) {
			out = append(out, recs[i])
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Active returns the fired, unresolved records in firing order.
func (h *FileHistory) Active() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return activeRecords(h.records)
}

func activeRecords(recs []Record) []Record {
	resolved := map[string]bool{}
	for _, r := range recs {
		if r.Condition == Resolved {
			resolved[r.AlertID] = true
		}
	}
	var out []Record
	for _, r := range recs {
		if r.Condition == Fired && !resolved[r.AlertID] {
			out = append(out, r)
		}
	}
	return out
}

// Close closes the file.
func (h *FileHistory) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}

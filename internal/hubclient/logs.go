package hubclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// LogRecord is the part of a Connections log record (GET /api/v1/logs)
// that tools compare.
type LogRecord struct {
	ItemID         string    `json:"_ItemId"`
	TimeGenerated  time.Time `json:"TimeGenerated"`
	Category       string    `json:"Category"`
	OperationName  string    `json:"OperationName"`
	Level          string    `json:"Level"`
	ResultType     string    `json:"ResultType"`
	DeviceID       string    `json:"DeviceId"`
	SequenceNumber string    `json:"SequenceNumber"`
	Properties     string    `json:"properties_s"`
}

// logPage is the most GET /api/v1/logs returns at once.
const logPage = 10000

// Logs returns the newest records matching q (device, category, level,
// since, until, limit), oldest first.
func (c *Client) Logs(ctx context.Context, q url.Values) ([]LogRecord, error) {
	var resp struct {
		Records []LogRecord `json:"records"`
	}
	if err := c.DoJSON(ctx, http.MethodGet, "/api/v1/logs?"+q.Encode(), nil, &resp); err != nil {
		return nil, err
	}
	return resp.Records, nil
}

// ConnectionLogs returns one device's Connections records (at most
// 10,000), oldest first.
func (c *Client) ConnectionLogs(ctx context.Context, deviceID string) ([]LogRecord, error) {
	return c.Logs(ctx, url.Values{"device": {deviceID}, "category": {"Connections"}, "limit": {strconv.Itoa(logPage)}})
}

// AllLogs returns every record of category from since on, however many,
// by paging back from the newest (until is exclusive; records on a page
// boundary are fetched twice and kept once, by _ItemId). Order: oldest
// first.
func (c *Client) AllLogs(ctx context.Context, category string, since time.Time) ([]LogRecord, error) {
	seen := map[string]bool{}
	var pages [][]LogRecord
	var until time.Time
	for {
		q := url.Values{"category": {category}, "limit": {strconv.Itoa(logPage)},
			"since": {since.UTC().Format(time.RFC3339Nano)}}
		if !until.IsZero() {
			q.Set("until", until.UTC().Format(time.RFC3339Nano))
		}
		recs, err := c.Logs(ctx, q)
		if err != nil {
			return nil, err
		}
		var page []LogRecord
		for _, r := range recs {
			if !seen[r.ItemID] {
				seen[r.ItemID] = true
				page = append(page, r)
			}
		}
		pages = append(pages, page)
		if len(recs) < logPage {
			break
		}
		next := recs[0].TimeGenerated.Add(time.Nanosecond)
		if len(page) == 0 || (!until.IsZero() && !next.Before(until)) {
			return nil, fmt.Errorf("hubclient: more than %d log records share the time %s; cannot page past them", logPage, recs[0].TimeGenerated)
		}
		until = next
	}
	var out []LogRecord
	for i := len(pages) - 1; i >= 0; i-- {
		out = append(out, pages[i]...)
	}
	return out, nil
}

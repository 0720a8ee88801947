package devquery

import (
	"fmt"
	"strconv"
	"strings"
)

// Page sizes (x-ms-max-item-count).
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Page is one page of results.
type Page struct {
	// Items are the results: for SELECT * the Doc values themselves
	// (they marshal through MarshalJSON), otherwise Rows. Never nil, so
	// an empty page encodes as [].
	Items []any
	// Continuation is the x-ms-continuation to send back for the next
	// page; "" when this is the last page (the response must then carry
	// no x-ms-continuation header at all).
	Continuation string
	// ItemType is the x-ms-item-type header: ItemTwin or ItemRaw.
	ItemType string
}

// ParsePageSize reads an x-ms-max-item-count header: absent or empty gives
// DefaultPageSize, values above MaxPageSize are capped, anything but a
// positive integer is an error (HTTP 400).
func ParsePageSize(header string) (int, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.ParseInt(header, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("x-ms-max-item-count must be a positive whole number, found %q", header)
	}
	return int(min(n, MaxPageSize)), nil
}

// Run returns one page of q's results over src. pageSize ≤ 0 means
// DefaultPageSize; above MaxPageSize it is capped. continuation is ""
// for the first page, else the Continuation of the previous page; a token
// that is malformed or belongs to another query is a *ContinuationError.
//
// A scan (SELECT *, projections) resumes after the last device id it
// returned, so documents added, changed or removed between pages never
// make a device appear twice or be skipped if it existed throughout. It
// looks one match ahead, so the last page carries no continuation (the
// Node SDK asks again whenever the header is present). An aggregate
// recomputes its rows on every page and resumes at the row index.
func (q *Query) Run(src Source, pageSize int, continuation string) (Page, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	var pos position
	if continuation != "" {
		p, err := q.decodeToken(continuation)
		if err != nil {
			return Page{}, err
		}
		pos = p
	}
	if q.agg != nil {
		return q.runAggregate(src, pageSize, pos), nil
	}
	return q.runScan(src, pageSize, pos), nil
}

func (q *Query) runScan(src Source, pageSize int, pos position) Page {
	page := Page{ItemType: q.ItemType()}
	limit, capped := pageSize, false
	if q.hasTop && q.top-pos.returned <= int64(pageSize) {
		// This page reaches TOP: no look-ahead, no continuation.
		limit, capped = int(max(q.top-pos.returned, 0)), true
	}
	page.Items = make([]any, 0, limit)
	if limit == 0 {
		return page
	}
	star := q.ast.Star
	var last string
	more := false
	src.Scan(pos.after, func(id string, d Doc) bool {
		if !q.Match(d) {
			return true
		}
		if len(page.Items) == limit {
			more = true
			return false
		}
		if star {
			if r, ok := d.(Retainer); ok {
				d = r.Retain()
			}
			page.Items = append(page.Items, d)
		} else {
			page.Items = append(page.Items, q.project(d))
		}
		last = id
		return !capped || len(page.Items) < limit
	})
	if more {
		page.Continuation = q.encodeToken(position{kind: tokenScan, returned: pos.returned + int64(len(page.Items)), after: last})
	}
	return page
}

func (q *Query) runAggregate(src Source, pageSize int, pos position) Page {
	page := Page{ItemType: ItemRaw}
	rows := q.aggregateRows(src)
	if q.hasTop && int64(len(rows)) > q.top {
		rows = rows[:q.top]
	}
	start := int(min(pos.returned, int64(len(rows))))
	end := min(start+pageSize, len(rows))
	page.Items = append(make([]any, 0, end-start), rows[start:end]...)
	if end < len(rows) {
		page.Continuation = q.encodeToken(position{kind: tokenAggregate, returned: int64(end)})
	}
	return page
}

package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tether-hub/tether/internal/devquery"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/twin"
)

// Device queries: POST /devices/query?api-version=2021-04-12 with
// {"query":"SELECT … FROM devices …"}, paged by x-ms-max-item-count and
// x-ms-continuation as the service SDKs page them (see package devquery
// for the wire details). Queries run over the registry's in-memory twins.

// maxQueryBody bounds the request: IoT Hub's 8 KB query in a JSON string.
const maxDeviceQueryBody = 64 << 10

// twinSource gives devquery the registry's twins. One document is reused
// for every device (Retain copies the few a page keeps) instead of one
// allocated per device, which at 100,000 devices is most of a scan's cost
// (in garbage).
type twinSource struct{ r *registry.Registry }

func (s twinSource) Scan(after string, fn func(id string, d devquery.Doc) bool) {
	doc := &scanDoc{}
	empty := &unwrittenDoc{r: s.r}
	s.r.ScanTwins(after, func(id string, t *twin.Twin, info twin.DeviceInfo) bool {
		if t == nil {
			empty.doc.Reset(emptyTwin, info)
			empty.id = id
			return fn(id, empty)
		}
		doc.Reset(t, info)
		return fn(id, doc)
	})
}

// scanDoc is a written twin's document during a scan.
type scanDoc struct{ twin.Doc }

func (d *scanDoc) Retain() devquery.Doc { c := *d; return &c }

// emptyTwin stands in for the twins of devices that were never written
// (most of a fleet, often): their values are all the same, so a query
// matches against this one instead of building a twin per device. Never
// modified.
var emptyTwin = twin.New(time.Time{})

// unwrittenDoc is such a device's document: the shared empty values, and
// its own twin (metadata dated at the device's creation) built only when
// the query reads metadata or returns the document.
type unwrittenDoc struct {
	doc twin.Doc
	r   *registry.Registry
	id  string
}

func (d *unwrittenDoc) own() *twin.Doc {
	t, _ := d.r.Twin(d.id)
	info, _ := d.r.TwinInfo(d.id)
	if t == nil {
		t = emptyTwin
	}
	return t.Doc(info)
}

func (d *unwrittenDoc) Lookup(path []string) (any, bool) {
	if slices.Contains(path, "$metadata") {
		return d.own().Lookup(path)
	}
	return d.doc.Lookup(path)
}

func (d *unwrittenDoc) MarshalJSON() ([]byte, error) { return d.own().MarshalJSON() }

func (d *unwrittenDoc) Retain() devquery.Doc { c := *d; return &c }
func (s *Server) deviceQuery(w http.ResponseWriter, r *http.Request) {
	policy, ok := s.authorize(w, r, registry.ServiceConnect, s.azureError)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r, maxDeviceQueryBody, s.azureError)
	if !ok {
		return
	}
	op := s.newOp(r, policy, journal.CategoryTwinQueries, journal.OpQuery, "")
	op.op.RequestSize = int64(len(body))
	op.op.Continuation = r.Header.Get("x-ms-continuation") != ""
	bad := func(msg string) {
		op.done(http.StatusBadRequest, "400004", msg)
		s.azureError(w, r, http.StatusBadRequest, "BadRequest", msg)
	}
	var req struct {
		Query *string `json:"query"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Query == nil {
		bad(`the body must be {"query":"SELECT … FROM devices …"}`)
		return
	}
	op.op.Query = *req.Query
	if len(op.op.Query) > maxLoggedQuery {
		op.op.Query = op.op.Query[:maxLoggedQuery] + "…"
	}
	q, err := devquery.Parse(*req.Query)
	if err != nil {
		bad("query: " + err.Error())
		return
	}
	pageSize, err := devquery.ParsePageSize(r.Header.Get("x-ms-max-item-count"))
	if err != nil {
		bad(err.Error())
		return
	}
	op.op.PageSize = pageSize
	page, err := q.Run(twinSource{s.d.Registry}, pageSize, r.Header.Get("x-ms-continuation"))
	if err != nil {
		bad(err.Error())
		return
	}
	out, err := json.Marshal(page.Items)
	if err != nil {
		op.failed(err)
		s.fail(w, r, fmt.Errorf("device query: encoding the page: %w", err), s.azureError)
		return
	}
	op.op.ResultCount, op.op.ResponseSize = len(page.Items), int64(len(out))
	op.done(http.StatusOK, "", "")
	w.Header().Set("x-ms-item-type", page.ItemType)
	if page.Continuation != "" {
		w.Header().Set("x-ms-continuation", page.Continuation)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// maxLoggedQuery bounds the query text a log record keeps (IoT Hub's
// longest valid query).
const maxLoggedQuery = 8192

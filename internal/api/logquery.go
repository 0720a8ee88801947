package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/kql"
	"github.com/tether-hub/tether/internal/registry"
)

// maxQueryBody bounds the request body of POST /api/v1/query.
const maxQueryBody = 1 << 20

// queryRequest is the Log Analytics query API request.
type queryRequest struct {
	Query    string `json:"query"`
	Timespan string `json:"timespan,omitempty"`
	// Workspaces is accepted for Log Analytics clients and ignored: the
	// hub is one workspace.
	Workspaces []string `json:"workspaces,omitempty"`
}

// The answer is the Log Analytics query API response,
// {"tables":[{"name":"PrimaryResult","columns":[…],"rows":[[…],…]}]} with
// "error" (code PartialError) when the result was truncated; it is
// written row by row (writeQueryResult).

// queryErrorObj is the error object of the Log Analytics API: code and
// message, details naming the position and a hint, and the innermost
// cause in innererror.
type queryErrorObj struct {
	Code       string             `json:"code"`
	Message    string             `json:"message"`
	Details    []queryErrorDetail `json:"details,omitempty"`
	InnerError *queryInnerError   `json:"innererror,omitempty"`
}

type queryErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
	Line    int    `json:"line,omitempty"`
	Pos     int    `json:"pos,omitempty"`
	Hint    string `json:"hint,omitempty"`
}

type queryInnerError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Pos     int    `json:"pos,omitempty"`
}

// postQuery serves POST /api/v1/query: {"query","timespan"} → tables.
func (s *Server) postQuery(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.authorize(w, r, registry.RegistryRead, s.v1Error)
	if !ok {
		return
	}
	if s.d.Query == nil {
		s.unavailable(w, r, "the log query engine")
		return
	}
	body, ok := s.readBody(w, r, maxQueryBody, s.queryBodyError)
	if !ok {
		return
	}
	var req queryRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.queryError(w, http.StatusBadRequest, "BadArgumentError", "the body must be a JSON object {\"query\": \"…\", \"timespan\": \"PT1H\"}: "+err.Error(), queryErrorDetail{Code: "InvalidBody", Message: err.Error(), Target: "body"})
		return
	}
	if strings.TrimSpace(req.Query) == "" {
		s.queryError(w, http.StatusBadRequest, "BadArgumentError", "the request has no query", queryErrorDetail{Code: "MissingQuery", Message: "query is empty", Target: "query"})
		return
	}
	tr, err := kql.ParseTimespanParam(req.Timespan, s.d.Now())
	if err != nil {
		s.queryError(w, http.StatusBadRequest, "BadArgumentError", err.Error(), queryErrorDetail{Code: "InvalidTimespan", Message: err.Error(), Target: "timespan"})
		return
	}
	release, err := s.queries.acquire(r.Context(), caller)
	if err != nil {
		if errors.Is(err, errQueryBusy) {
			w.Header().Set("Retry-After", queryRetryAfter)
			s.queryError(w, http.StatusTooManyRequests, "ThrottledError",
				fmt.Sprintf("too many log queries are running or waiting (at most %d running and %d waiting in all, %d and %d per key); retry in %s s",
					s.queries.lim.Running, s.queries.lim.Queued, s.queries.lim.RunningPerCaller, s.queries.lim.QueuedPerCaller, queryRetryAfter),
				queryErrorDetail{Code: "TooManyRequests", Message: "query concurrency limit", Target: "query"})
			return
		}
		s.queryError(w, http.StatusServiceUnavailable, "QueryCanceled", "the request ended while the query waited: "+err.Error(), queryErrorDetail{Code: kql.CodeCanceled, Message: err.Error()})
		return
	}
	// The slot is held until the answer is written: a result held for a
	// slow reader costs memory as much as a running query does. A reader
	// that takes longer than queryWriteTimeout loses the answer.
	defer release()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(queryWriteTimeout))
	res, err := s.d.Query.Run(r.Context(), kql.Request{Query: req.Query, Timespan: tr})
	if err != nil {
		var qe *kql.Error
		if !errors.As(err, &qe) {
			s.fail(w, r, err, s.v1Error)
			return
		}
		status := http.StatusBadRequest
		code := "BadArgumentError"
		switch qe.Code {
		case kql.CodeTimeout:
			status, code = http.StatusGatewayTimeout, "GatewayTimeout"
		case kql.CodeCanceled:
			status, code = http.StatusServiceUnavailable, "QueryCanceled"
		}
		d := queryErrorDetail{Code: qe.Code, Message: qe.Msg, Target: "query", Hint: qe.Hint}
		if qe.Pos.IsValid() {
			d.Line, d.Pos = qe.Pos.Line, qe.Pos.Col
		}
		b := queryErrorObj{Code: code, Message: qe.Error(), Details: []queryErrorDetail{d},
			InnerError: &queryInnerError{Code: qe.Code, Message: qe.Error(), Line: d.Line, Pos: d.Pos}}
		writeJSON(w, status, struct {
			Error queryErrorObj `json:"error"`
		}{b})
		return
	}
	var partial *queryErrorObj
	if res.Truncated {
		partial = &queryErrorObj{Code: "PartialError", Message: "the result was truncated: " + res.Reason,
			Details: []queryErrorDetail{{Code: "ResultTruncated", Message: res.Reason}}}
	}
	if err := writeQueryResult(w, res, partial); err != nil {
		s.log.Debug("query answer not delivered", "err", err)
	}
}

// queryWriteTimeout bounds writing one query's answer.
const queryWriteTimeout = 30 * time.Second

// writeQueryResult writes the answer for res row by row, so the
// answer is never held whole a second time as JSON.
func writeQueryResult(w http.ResponseWriter, res *kql.Result, partial *queryErrorObj) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	cols, err := json.Marshal(res.Columns)
	if err != nil {
		return err
	}
	bw.WriteString(`{"tables":[{"name":"PrimaryResult","columns":`)
	bw.Write(cols)
	bw.WriteString(`,"rows":[`)
	cells := make([]any, len(res.Columns))
	for i, row := range res.Rows {
		for j, v := range row {
			cells[j] = kql.JSONCell(v)
		}
		b, err := json.Marshal(cells)
		if err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	bw.WriteString("]}]")
	if partial != nil {
		b, err := json.Marshal(partial)
		if err != nil {
			return err
		}
		bw.WriteString(`,"error":`)
		bw.Write(b)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// queryBodyError writes readBody's refusals (413, 415, 400) in the Log
// Analytics error shape.
func (s *Server) queryBodyError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.queryError(w, status, code, msg, queryErrorDetail{Code: code, Message: msg, Target: "body"})
}

func (s *Server) queryError(w http.ResponseWriter, status int, code, msg string, d queryErrorDetail) {
	writeJSON(w, status, struct {
		Error queryErrorObj `json:"error"`
	}{queryErrorObj{Code: code, Message: msg, Details: []queryErrorDetail{d}}})
}

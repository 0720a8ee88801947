package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/registry"
)

// MetricsSource answers metric queries (metrics.Store).
type MetricsSource interface {
	Series(ctx context.Context, q metrics.WindowQuery, interval time.Duration, aggs []metrics.Aggregation) ([]metrics.Series, error)
}

// The Azure Monitor metrics REST response (Microsoft.Insights/metrics,
// api-version 2018-01-01), as Tether fills it.
type (
	metricsResponse struct {
		Cost           int           `json:"cost"`
		Timespan       string        `json:"timespan"`
		Interval       string        `json:"interval"`
		Namespace      string        `json:"namespace"`
		ResourceRegion string        `json:"resourceregion"`
		Value          []metricValue `json:"value"`
	}
	localizable struct {
		Value          string `json:"value"`
		LocalizedValue string `json:"localizedValue"`
	}
	metricValue struct {
		ID                 string       `json:"id"`
		Type               string       `json:"type"`
		Name               localizable  `json:"name"`
		DisplayDescription string       `json:"displayDescription"`
		Unit               string       `json:"unit"`
		Timeseries         []timeseries `json:"timeseries"`
		ErrorCode          string       `json:"errorCode"`
	}
	timeseries struct {
		Metadatavalues []metadataValue `json:"metadatavalues"`
		Data           []metricPoint   `json:"data"`
	}
	metadataValue struct {
		Name  localizable `json:"name"`
		Value string      `json:"value"`
	}
	metricPoint struct {
		TimeStamp string   `json:"timeStamp"`
		Average   *float64 `json:"average,omitempty"`
		Minimum   *float64 `json:"minimum,omitempty"`
		Maximum   *float64 `json:"maximum,omitempty"`
		Total     *float64 `json:"total,omitempty"`
		Count     *float64 `json:"count,omitempty"`
	}
)

// getMetrics serves GET /api/v1/metrics?metricnames=&aggregation=&interval=&timespan=&filter=
// with Azure Monitor's parameters and response shape.
func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, registry.RegistryRead, s.v1Error); !ok {
		return
	}
	if s.d.Metrics == nil {
		s.unavailable(w, r, "the metrics history")
		return
	}
	bad := func(msg string) {
		s.v1Error(w, r, http.StatusBadRequest, "BadRequest", msg)
	}
	q := r.URL.Query()
	if err := checkParams(q, "metricnames", "aggregation", "interval", "timespan", "filter", "$filter", "api-version", "metricnamespace"); err != nil {
		bad(err.Error())
		return
	}
	names := splitList(q.Get("metricnames"))
	if len(names) == 0 {
		bad("metricnames is required (comma-separated; known: " + strings.Join(metrics.MetricNames(), ", ") + ")")
		return
	}
	now := s.d.Now()
	timespan := q.Get("timespan")
	if timespan == "" {
		timespan = "PT1H"
	}
	from, to, err := metrics.ParseTimespan(timespan, now)
	if err != nil {
		bad(err.Error())
		return
	}
	interval := to.Sub(from)
	intervalText := q.Get("interval")
	switch strings.ToUpper(intervalText) {
	case "":
		interval, intervalText = time.Minute, "PT1M"
	case "FULL":
		intervalText = "FULL"
	default:
		if interval, err = metrics.ParseISODuration(intervalText); err != nil {
			bad(err.Error())
			return
		}
		intervalText = metrics.FormatISODuration(interval)
		if interval%time.Second != 0 {
			bad("interval must be whole seconds (PT1S, PT1M, PT5M, PT1H …)")
			return
		}
		if interval <= 24*time.Hour {
			from = from.Truncate(interval) // buckets on the grid, as Azure
		}
	}
	filterText := q.Get("$filter")
	if filterText == "" {
		filterText = q.Get("filter")
	}
	filter, split, err := metrics.ParseFilter(filterText)
	if err != nil {
		bad(err.Error())
		return
	}
	var aggs []metrics.Aggregation
	for _, a := range splitList(q.Get("aggregation")) {
		agg, err := metrics.ParseAggregation(a)
		if err != nil {
			bad(err.Error())
			return
		}
		aggs = append(aggs, agg)
	}
	resp := metricsResponse{
		Timespan:  from.UTC().Format(time.RFC3339) + "/" + to.UTC().Format(time.RFC3339),
		Interval:  intervalText,
		Namespace: "Microsoft.Devices/IotHubs", ResourceRegion: "local",
		Value: []metricValue{},
	}
	resource := events.Resource{}.ID(s.d.HubName)
	for _, name := range names {
		def, err := metrics.Lookup(name)
		if err != nil {
			bad(err.Error())
			return
		}
		// Each metric gets the asked aggregations it supports (Azure's
		// snapshot metrics have no Total, counts no Average); none: 400.
		var want []metrics.Aggregation
		for _, a := range aggs {
			if def.Allows(a) == nil {
				want = append(want, a)
			}
		}
		if len(aggs) == 0 {
			want = def.Aggregations[:1]
		} else if len(want) == 0 {
			bad(def.Allows(aggs[0]).Error())
			return
		}
		series, err := s.d.Metrics.Series(r.Context(), metrics.WindowQuery{
			Metric: def.Name, Filter: filter, SplitBy: split, From: from, To: to,
		}, interval, want)
		if err != nil {
			if isQueryError(err) {
				bad(err.Error())
			} else {
				s.fail(w, r, err, s.v1Error)
			}
			return
		}
		mv := metricValue{
			ID:   resource + "/providers/Microsoft.Insights/metrics/" + def.Name,
			Type: "Microsoft.Insights/metrics", Name: localizable{def.Name, def.DisplayName},
			DisplayDescription: def.Help, Unit: def.Unit, ErrorCode: "Success",
			Timeseries: make([]timeseries, 0, len(series)),
		}
		for _, sr := range series {
			ts := timeseries{Metadatavalues: []metadataValue{}, Data: make([]metricPoint, len(sr.Points))}
			for _, dim := range split {
				if v, ok := sr.Dimensions[canonicalDim(def, dim)]; ok {
					d := canonicalDim(def, dim)
					ts.Metadatavalues = append(ts.Metadatavalues, metadataValue{Name: localizable{d, d}, Value: v})
				}
			}
			for i, p := range sr.Points {
				ts.Data[i] = pointJSON(p)
			}
			mv.Timeseries = append(mv.Timeseries, ts)
		}
		resp.Value = append(resp.Value, mv)
	}
	writeJSON(w, http.StatusOK, resp)
}

func pointJSON(p metrics.Point) metricPoint {
	out := metricPoint{TimeStamp: p.Time.UTC().Format(time.RFC3339)}
	for agg, v := range p.Values {
		switch agg {
		case metrics.AggAverage:
			out.Average = &v
		case metrics.AggMinimum:
			out.Minimum = &v
		case metrics.AggMaximum:
			out.Maximum = &v
		case metrics.AggTotal:
			out.Total = &v
		case metrics.AggCount:
			out.Count = &v
		}
	}
	return out
}

func canonicalDim(def *metrics.Def, name string) string {
	if d, err := def.Dimension(name); err == nil {
		return d
	}
	return name
}

func isQueryError(err error) bool {
	for _, e := range []error{metrics.ErrUnknownMetric, metrics.ErrUnknownDimension, metrics.ErrUnknownAggregation,
		metrics.ErrUnsupportedAggregation, metrics.ErrInvalidQuery} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

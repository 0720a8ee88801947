package alert

import (
	"strconv"
	"strings"
	"time"
)

// SchemaID is the common alert schema's identifier.
const SchemaID = "azureMonitorCommonAlertSchema"

// Payload is a notification in Azure Monitor's common alert schema.
type Payload struct {
	SchemaID string      `json:"schemaId"`
	Data     PayloadData `json:"data"`
}

// PayloadData holds the essentials and the signal-specific context.
type PayloadData struct {
	Essentials   Essentials        `json:"essentials"`
	AlertContext AlertContext      `json:"alertContext"`
	Custom       map[string]string `json:"customProperties"`
}

// Essentials are the fields common to every alert.
type Essentials struct {
	AlertID             string   `json:"alertId"`
	AlertRule           string   `json:"alertRule"`
	AlertRuleID         string   `json:"alertRuleID"`
	Severity            string   `json:"severity"`
	SignalType          string   `json:"signalType"`
	MonitorCondition    string   `json:"monitorCondition"`
	MonitoringService   string   `json:"monitoringService"`
	AlertTargetIDs      []string `json:"alertTargetIDs"`
	ConfigurationItems  []string `json:"configurationItems"`
	OriginAlertID       string   `json:"originAlertId"`
	FiredDateTime       string   `json:"firedDateTime"`
	ResolvedDateTime    string   `json:"resolvedDateTime,omitempty"`
	Description         string   `json:"description"`
	EssentialsVersion   string   `json:"essentialsVersion"`
	AlertContextVersion string   `json:"alertContextVersion"`
	TargetResourceType  string   `json:"targetResourceType"`
	TargetResourceGroup string   `json:"targetResourceGroup"`
}

// AlertContext is the metric (SingleResourceMultipleMetricCriteria) or
// log (LogQueryCriteria) context.
type AlertContext struct {
	Properties    map[string]string `json:"properties"`
	ConditionType string            `json:"conditionType"`
	Condition     ContextCondition  `json:"condition"`
}

// ContextCondition describes the evaluated window and criterion.
type ContextCondition struct {
	WindowSize      string      `json:"windowSize"`
	AllOf           []Criterion `json:"allOf"`
	WindowStartTime string      `json:"windowStartTime"`
	WindowEndTime   string      `json:"windowEndTime"`
}

// Criterion is one condition with the value that was seen.
type Criterion struct {
	MetricName          string         `json:"metricName,omitempty"`
	MetricNamespace     string         `json:"metricNamespace,omitempty"`
	SearchQuery         string         `json:"searchQuery,omitempty"`
	MetricMeasureColumn *string        `json:"metricMeasureColumn,omitempty"`
	Operator            string         `json:"operator"`
	Threshold           string         `json:"threshold"`
	TimeAggregation     string         `json:"timeAggregation"`
	Dimensions          []Dimension    `json:"dimensions"`
	MetricValue         *float64       `json:"metricValue"`
	FailingPeriods      FailingPeriods `json:"failingPeriods"`
}

// FailingPeriods is the rule's N of M.
type FailingPeriods struct {
	NumberOfEvaluationPeriods int `json:"numberOfEvaluationPeriods"`
	MinFailingPeriodsToAlert  int `json:"minFailingPeriodsToAlert"`
}

// MetricNamespace is IoT Hub's.
const MetricNamespace = "Microsoft.Devices/IotHubs"

// Target names the monitored hub in Azure's terms.
type Target struct {
	// ResourceID is the hub's resource id (alertTargetIDs).
	ResourceID string
}

func (t Target) segment(name, def string) string {
	parts := strings.Split(strings.Trim(t.ResourceID, "/"), "/")
	for i := 0; i+1 < len(parts); i += 2 {
		if strings.EqualFold(parts[i], name) {
			return parts[i+1]
		}
	}
	return def
}

// BuildPayload renders a in the common alert schema.
func BuildPayload(a Alert, t Target) Payload {
	sub := strings.ToLower(t.segment("subscriptions", "00000000-0000-0000-0000-000000000000"))
	rg := t.segment("resourceGroups", "tether")
	ruleType, service, condType := "metricAlerts", "Platform", "SingleResourceMultipleMetricCriteria"
	if a.Rule.Kind == KindLog {
		ruleType, service, condType = "scheduledQueryRules", "Log Alerts V2", "LogQueryCriteria"
	}
	e := Essentials{
		AlertID:             "/subscriptions/" + sub + "/providers/Microsoft.AlertsManagement/alerts/" + a.ID,
		AlertRule:           a.Rule.Name,
		AlertRuleID:         "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/microsoft.insights/" + ruleType + "/" + a.Rule.Name,
		Severity:            a.Rule.Severity.String(),
		SignalType:          a.Rule.Kind.SignalType(),
		MonitorCondition:    string(a.Condition),
		MonitoringService:   service,
		AlertTargetIDs:      []string{strings.ToLower(t.ResourceID)},
		ConfigurationItems:  []string{t.segment("IotHubs", "tether")},
		OriginAlertID:       a.ID,
		FiredDateTime:       formatTime(a.FiredAt),
		Description:         a.Rule.Description,
		EssentialsVersion:   "1.0",
		AlertContextVersion: "1.0",
		TargetResourceType:  MetricNamespace,
		TargetResourceGroup: rg,
	}
	if a.Condition == Resolved {
		e.ResolvedDateTime = formatTime(a.ResolvedAt)
	}
	c := Criterion{
		Operator:        string(a.Rule.Operator),
		Threshold:       strconv.FormatFloat(a.Rule.Threshold, 'f', -1, 64),
		TimeAggregation: string(a.Rule.Aggregation),
		Dimensions:      sortedDims(a.Dimensions),
		FailingPeriods:  FailingPeriods{NumberOfEvaluationPeriods: a.Rule.Evaluations, MinFailingPeriodsToAlert: a.Rule.MinFailing},
	}
	if a.HasValue {
		v := a.Value
		c.MetricValue = &v
	}
	if a.Rule.Kind == KindLog {
		c.SearchQuery = a.Rule.Query
		if a.Rule.Measure != "" {
			m := a.Rule.Measure
			c.MetricMeasureColumn = &m
		}
	} else {
		c.MetricName, c.MetricNamespace = a.Rule.Metric, MetricNamespace
	}
	custom := map[string]string{}
	if a.Reason != "" {
		custom["reason"] = a.Reason
	}
	return Payload{
		SchemaID: SchemaID,
		Data: PayloadData{
			Essentials: e,
			AlertContext: AlertContext{
				Properties:    map[string]string{},
				ConditionType: condType,
				Condition: ContextCondition{
					WindowSize:      ISODuration(a.Rule.Window),
					AllOf:           []Criterion{c},
					WindowStartTime: formatTime(a.WindowStart),
					WindowEndTime:   formatTime(a.WindowEnd),
				},
			},
			Custom: custom,
		},
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

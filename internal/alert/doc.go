// Package alert evaluates metric and log alert rules and notifies action
// groups, in the manner of Azure Monitor alerts but in seconds.
//
// # Rules
//
// A metric rule aggregates one metric over a window (Average, Minimum,
// Maximum, Total, Count), optionally filtered by dimension values and split
// into one series per dimension combination, and compares the value of
// each series with a static threshold. A log rule runs a KQL query over
// the window and compares either the number of rows or an aggregate of a
// measure column (per dimension combination when split) with a threshold.
// Rules are evaluated every Frequency (down to 1 s); each evaluation looks
// at [t−Window, t).
//
// The engine does not import the metric store or the query engine: the
// consumer owns the interfaces (MetricQueryFunc, LogQueryFunc), and the app
// adapts the real ones.
//
// # State machine
//
// Each series of a rule is an alert instance: Inactive → Fired → Resolved
// (→ Fired again with a new alert id). An evaluation is a violation when
// the series has data and its value meets the condition. The instance
// fires when at least N of the last M evaluations were violations
// (FailingPeriods: "N of the last M periods"; default 1 of 1). A fired
// instance resolves when that criterion has been false for ResolveAfter
// consecutive evaluations (Azure Monitor: 3). So flapping input fires
// once and stays fired while the flapping lasts.
//
// # Missing data
//
// An evaluation whose window holds no data for a series is no violation:
// a series that is not fired does not fire on it. For a fired series of a
// metric rule it is no evidence either way until the series has gone
// without data for Options.NoDataGrace (default 5 s), counted
// from the end of its last window with data or from the manager's start,
// whichever is later: the sampler records each second a little after it
// ends, later still on a loaded hub, and has recorded nothing in the
// first second after a start, so an empty window then means "not yet",
// not "recovered". Such evaluations neither advance nor reset the resolve
// count. After the grace, evaluations without data count as "condition
// not met", so the alert of a dimension value that has really gone (a
// device that no longer reports) still resolves. Log rules are not held:
// LogDelay already waits for late records, and a group missing from a
// query's result is a count of 0.
//
// Every transition is appended to the History (a JSON-lines file in the
// data dir) before it is notified. At start the manager restores fired
// instances from the history, so an alert that was fired before a restart
// resolves (and is notified as resolved) after it; nothing fires twice.
//
// Reloading rules (SetRules) keeps the state of rules whose definition did
// not change; a changed rule keeps its fired instances but starts its N-of-M
// window afresh; the fired instances of a removed or disabled rule are
// resolved.
//
// # Notifications
//
// Transitions go to the Dispatcher, which builds the Azure Monitor common
// alert schema payload once and queues it on one send loop per
// destination (webhook, email, command, NATS subject). A send loop is
// FIFO, bounded (a full queue drops the new notification and logs it),
// retries network errors, 5xx and 429 with capped exponential backoff, and
// gives up at once on other 4xx (SMTP 5xx, …). Notifications are rate
// limited per rule (a token bucket); a Resolved is sent exactly when its
// Fired was.
package alert

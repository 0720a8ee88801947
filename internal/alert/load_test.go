package alert

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadGoodFile(t *testing.T) {
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_SMTP_PASSWORD": "pw"}
	cfg, err := Load(data, LoadOptions{File: "good.yaml", Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP != (SMTPConfig{Addr: "127.0.0.1:2525", From: "tether@example.com", Username: "tether", Password: "pw"}) {
		t.Fatalf("smtp %+v", cfg.SMTP)
	}
	if len(cfg.ActionGroups) != 2 || len(cfg.ActionGroups[0].Actions) != 4 {
		t.Fatalf("groups %+v", cfg.ActionGroups)
	}
	acts := cfg.ActionGroups[0].Actions
	if acts[0].Webhook.URL != "https://hooks.example.com/alerts?token=x" || acts[0].Webhook.Headers["X-Token"] != "abc" || acts[0].Webhook.Timeout != 5*time.Second ||
		!reflect.DeepEqual(acts[1].Email.To, []string{"ops@example.com", "oncall@example.com"}) ||
		!reflect.DeepEqual(acts[2].Command.Argv, []string{"/usr/local/bin/page", "--team", "ops"}) || acts[2].Command.Timeout != 20*time.Second ||
		acts[3].NATS.Subject != "alerts.ops" {
		t.Fatalf("actions %+v", acts)
	}
	if got := cfg.ActionGroups[1].Actions[0].Email.To; !reflect.DeepEqual(got, []string{"boss@example.com"}) {
		t.Fatalf("single address %v", got)
	}
	r := cfg.Rules
	if len(r) != 3 {
		t.Fatalf("%d rules", len(r))
	}
	want0 := Rule{
		Name: "connected-devices-low", Description: "A significant number of devices dropped", Kind: KindMetric, Severity: 2,
		Frequency: time.Second, Window: time.Second, Operator: LessThan, Threshold: 90, Aggregation: Average,
		Metric: "connectedDeviceCount", MinFailing: 1, Evaluations: 1, ResolveAfter: 5, ActionGroups: []string{"ops"},
		RateLimit: RateLimit{Count: DefaultRateCount, Per: DefaultRatePer}, Pos: "good.yaml:19:5",
	}
	if !reflect.DeepEqual(r[0], want0) {
		t.Fatalf("rule 0:\n%+v\nwant\n%+v", r[0], want0)
	}
	if r[1].MinFailing != 2 || r[1].Evaluations != 3 || r[1].Aggregation != Total || r[1].Window != 5*time.Minute ||
		!reflect.DeepEqual(r[1].Filter, map[string][]string{"Protocol": {"Mqtt", "MqttWs"}, "ResultType": {"404104"}}) ||
		!reflect.DeepEqual(r[1].SplitBy, []string{"ResultType"}) || r[1].RateLimit != (RateLimit{5, time.Hour}) ||
		!reflect.DeepEqual(r[1].ActionGroups, []string{"quiet"}) || r[1].ResolveAfter != 3 {
		t.Fatalf("rule 1 %+v", r[1])
	}
	if r[2].Kind != KindLog || !r[2].Disabled || r[2].Aggregation != Count || !strings.Contains(r[2].Query, `ResultType == "404104"`) {
		t.Fatalf("rule 2 %+v", r[2])
	}
	// Offline: no environment lookup, no password.
	cfg, err = Load(data, LoadOptions{})
	if err != nil || cfg.SMTP.Password != "" {
		t.Fatalf("offline: %v %+v", err, cfg.SMTP)
	}
	// Missing variable at serve time.
	_, err = Load(data, LoadOptions{File: "good.yaml", Getenv: func(string) (string, bool) { return "", false }})
	if err == nil || !strings.Contains(err.Error(), "good.yaml:4:16: smtp.passwordEnv: environment variable TEST_SMTP_PASSWORD is not set") {
		t.Fatalf("missing env: %v", err)
	}
}

const badFile = `smtp:
  addr: nohost
actionGroups:
  - name: ops
    actions:
      - webhook: {url: "ftp://x"}
      - email: {to: [not-an-address]}
        nats: {subject: a.b}
      - command: {}
      - nats: {subject: "a.*"}
  - name: ops
    actions: []
rules:
  - name: low
    metric: {name: connectedDeviceCount, aggregation: Median}
    operator: lessthan
    threshold: "ninety"
    frequency: 500ms
    window: 1x
    actionGroups: [ops, pager]
    colour: red
  - name: low
    metric: {name: m}
  - name: "bad/name"
    log: {query: "T", aggregation: Average}
    severity: 7
    frequency: 1m
    window: 30s
    failingPeriods: {violations: 4, evaluations: 3}
    autoResolve: {after: 0}
  - name: both
    metric: {name: m}
    log: {query: q}
  - name: unknown-metric
    metric: {name: nope}
    operator: ">"
    threshold: 1
  - name: bad-query
    log: {query: "T | wher x"}
    operator: ">"
    threshold: 1
`

func TestLoadReportsEveryProblemWithPosition(t *testing.T) {
	_, err := Load([]byte(badFile), LoadOptions{
		File: "rules.yaml",
		CheckMetric: func(n string, _ Aggregation, _ []string) error {
			if n == "nope" {
				return errors.New(`unknown metric "nope"`)
			}
			return nil
		},
		CheckQuery: func(q string) error {
			if strings.Contains(q, "wher ") {
				return errors.New("1:5: unknown operator wher")
			}
			return nil
		},
	})
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrInvalidRules) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		"rules.yaml:2:9: smtp.addr: want host:port",
		"rules.yaml:6:24: actionGroups[0].actions[0].webhook.url: want an http or https URL",
		`rules.yaml:7:21: actionGroups[0].actions[1].email.to[0]: "not-an-address" is not a mail address`,
		"rules.yaml:7:9: actionGroups[0].actions[1]: an action is exactly one of webhook, email, command or nats",
		"rules.yaml:7:16: an email action needs smtp.addr and smtp.from",
		"rules.yaml:9:18: actionGroups[0].actions[2].command: a command action needs run",
		`rules.yaml:10:25: actionGroups[0].actions[3].nats.subject: "a.*" is not a NATS subject`,
		`rules.yaml:11:5: actionGroups[1].name: action group "ops" is already defined at line 4`,
		`rules.yaml:15:55: rules[0].metric.aggregation: unknown aggregation "Median"`,
		`rules.yaml:17:16: rules[0].threshold: "ninety" is not a number`,
		"rules.yaml:18:16: rules[0].frequency: 500ms is too short: at least 1s",
		`rules.yaml:19:13: rules[0].window: "1x" is not a duration`,
		`rules.yaml:20:25: rules[0].actionGroups[1]: no action group "pager" in this file`,
		`rules.yaml:21:5: rules[0].colour: unknown key "colour"`,
		`rules.yaml:22:5: rules[1].name: rule "low" is already defined at line 14`,
		`rules.yaml:24:11: rules[2].name: "bad/name": a name cannot contain`,
		"rules.yaml:25:36: rules[2].log.aggregation: Average needs a measure column",
		"rules.yaml:26:15: rules[2].severity: 7 is not a severity",
		"rules.yaml:28:13: rules[2].window: 30s is shorter than the frequency 1m0s",
		"rules.yaml:29:34: rules[2].failingPeriods.violations: 4: between 1 and evaluations (3)",
		"rules.yaml:30:26: rules[2].autoResolve.after: 0: at least 1",
		"rules.yaml:22:5: rules[1].threshold: a threshold is required",
		"rules.yaml:22:5: rules[1].operator: an operator is required",
		"rules.yaml:33:10: rules[3].log: a rule has either a metric or a log block, not both",
		`rules.yaml:35:20: rules[4].metric: unknown metric "nope"`,
		"rules.yaml:39:18: rules[5].log.query: 1:5: unknown operator wher",
	}
	got := le.Problems
	for _, w := range want {
		found := false
		for _, p := range got {
			found = found || strings.HasPrefix(p.Error(), w) || strings.Contains(p.Error(), w)
		}
		if !found {
			t.Errorf("missing problem %q", w)
		}
	}
	if t.Failed() {
		for _, p := range got {
			t.Log(p.Error())
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Line < got[i-1].Line {
			t.Fatalf("not in file order: %v then %v", got[i-1], got[i])
		}
	}
}

func TestLoadYAMLSyntaxError(t *testing.T) {
	_, err := Load([]byte("rules:\n  - name: a\n   bad: [\n"), LoadOptions{File: "r.yaml"})
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].Line < 1 || !strings.HasPrefix(le.Problems[0].Error(), "r.yaml:") {
		t.Fatalf("%v", err)
	}
}

func TestLoadEmpty(t *testing.T) {
	for _, s := range []string{"", "# nothing\n", "rules:\n", "rules: []\nactionGroups: []\n"} {
		cfg, err := Load([]byte(s), LoadOptions{})
		if err != nil || len(cfg.Rules) != 0 {
			t.Errorf("%q: %v %+v", s, err, cfg)
		}
	}
	if _, err := Load([]byte("- a\n"), LoadOptions{}); err == nil {
		t.Error("a list at the top accepted")
	}
}

// Issue 17 item 9: a zero or negative duration in a rules file is a
// problem at its line:column, not a rule that silently runs as PT1M.
func TestLoadRefusesZeroDurations(t *testing.T) {
	file := "rules:\n  - name: r\n    metric: {name: m}\n    operator: \">\"\n    threshold: 1\n    frequency: \"0s\"\n    window: -5m\n" +
		"actionGroups:\n  - name: g\n    actions:\n      - webhook: {url: \"http://x\", timeout: 0s}\n"
	_, err := Load([]byte(file), LoadOptions{File: "r.yaml"})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("loaded: %v", err)
	}
	var got []string
	for _, p := range le.Problems {
		got = append(got, p.Error())
	}
	want := []string{
		`r.yaml:6:16: rules[0].frequency: "0s": a duration must be positive`,
		`r.yaml:7:13: rules[0].window: "-5m": a duration must be positive`,
		`r.yaml:11:45: actionGroups[0].actions[0].webhook.timeout: "0s": a duration must be positive`,
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing problem %s\ngot:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"1s": time.Second, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "PT1M": time.Minute, "PT5M": 5 * time.Minute,
		"PT1H": time.Hour, "P1D": 24 * time.Hour, "PT0.5S": 500 * time.Millisecond, "pt30s": 30 * time.Second, "P1DT2H": 26 * time.Hour,
	} {
		got, err := ParseDuration(s)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"", "P", "PT", "1x", "-1s", "P1H", "PT1D", "PTM", "P1M", "PT1M2", "PT1.2.3S", "PTT1S",
		"0", "0s", "0 ", "-0s", "0h0m", "PT0S", "P0D", "PT0.0S"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	for d, want := range map[time.Duration]string{time.Second: "PT1S", time.Minute: "PT1M", 90 * time.Minute: "PT1H30M", 24 * time.Hour: "P1D", 1500 * time.Millisecond: "PT1.5S", 0: "PT0S"} {
		if got := ISODuration(d); got != want {
			t.Errorf("%s: %s", d, got)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1s", "PT1M", "P1DT2H3M4.5S", "PT", "-5m", "P99999999D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q → %s", s, d)
		}
		if d%time.Millisecond == 0 && d < 1000*time.Hour {
			back, err := ParseDuration(ISODuration(d))
			if err != nil || back != d {
				t.Fatalf("%q → %s → %s → %s %v", s, d, ISODuration(d), back, err)
			}
		}
	})
}

func FuzzLoad(f *testing.F) {
	good, _ := os.ReadFile("testdata/good.yaml")
	f.Add(string(good))
	f.Add(badFile)
	f.Add("rules: [{name: a, metric: {name: m}, frequency: PT1S}]")
	f.Add("&a [*a]")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Load([]byte(s), LoadOptions{File: "f"})
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		// Whatever loads is accepted by the manager.
		for i := range cfg.Rules {
			if ps := cfg.Rules[i].Validate(); len(ps) > 0 {
				t.Fatalf("loaded an invalid rule: %+v", ps)
			}
		}
	})
}

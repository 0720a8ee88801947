package alert

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a rules file: the SMTP server, action groups and rules.
type Config struct {
	SMTP         SMTPConfig
	ActionGroups []ActionGroup
	Rules        []Rule
}

// LoadOptions add checks that need more than the file.
type LoadOptions struct {
	// File names the source in messages.
	File string
	// CheckMetric, when set, refuses a metric name it does not know, an
	// aggregation the metric does not allow (e.g. Total of a snapshot) or
	// a dimension (filter keys and splitBy) it does not have.
	CheckMetric func(name string, agg Aggregation, dims []string) error
	// CheckQuery, when set, parses a log rule's KQL query.
	CheckQuery func(query string) error
	// Getenv, when set, resolves smtp.passwordEnv (a missing variable is
	// an error); nil leaves the password empty (offline checks).
	Getenv func(string) (string, bool)
}

// Problem is one error in a rules file, with its position.
type Problem struct {
	File   string
	Line   int
	Column int
	Path   string // e.g. rules[2].window
	Msg    string
}

func (p Problem) Error() string {
	pos := fmt.Sprintf("%d:%d", p.Line, p.Column)
	if p.File != "" {
		pos = p.File + ":" + pos
	}
	if p.Path == "" {
		return pos + ": " + p.Msg
	}
	return pos + ": " + p.Path + ": " + p.Msg
}

// LoadError lists every problem of a rules file, in file order.
type LoadError struct{ Problems []Problem }

// ErrInvalidRules is matched (errors.Is) by every *LoadError.
var ErrInvalidRules = errors.New("invalid alert rules")

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return fmt.Sprintf("%d problem(s) in the alert rules:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

func (e *LoadError) Is(target error) bool { return target == ErrInvalidRules }

// Load parses and checks a rules file; on any problem it returns a
// *LoadError with all of them. Unknown keys are errors.
func Load(data []byte, opt LoadOptions) (Config, error) {
	d := &decoder{file: opt.File}
	var cfg Config
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 1
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		msg := strings.TrimPrefix(yamlLine.ReplaceAllString(err.Error(), ""), "yaml: ")
		d.probs = append(d.probs, Problem{File: opt.File, Line: line, Column: 1, Msg: "YAML: " + msg})
		return cfg, &LoadError{d.probs}
	}
	if len(doc.Content) == 0 {
		return cfg, nil // empty file: no rules
	}
	root := doc.Content[0]
	var groupsNode, rulesNode *yaml.Node
	var smtpPass struct {
		env  string
		node *yaml.Node
	}
	d.mapping(root, "", map[string]func(*yaml.Node, string){
		"smtp": func(n *yaml.Node, p string) {
			d.mapping(n, p, map[string]func(*yaml.Node, string){
				"addr": func(n *yaml.Node, p string) {
					cfg.SMTP.Addr = d.str(n, p)
					if _, _, err := net.SplitHostPort(cfg.SMTP.Addr); err != nil {
						d.errorf(n, p, "want host:port (e.g. smtp.example.com:587)")
					}
				},
				"from":     func(n *yaml.Node, p string) { cfg.SMTP.From = d.address(n, p) },
				"username": func(n *yaml.Node, p string) { cfg.SMTP.Username = d.str(n, p) },
				"password": func(n *yaml.Node, p string) { cfg.SMTP.Password = d.str(n, p) },
				"passwordEnv": func(n *yaml.Node, p string) {
					smtpPass.env, smtpPass.node = d.str(n, p), n
				},
				"insecureSkipVerify": func(n *yaml.Node, p string) { cfg.SMTP.Insecure = d.bool(n, p) },
			})
		},
		"actionGroups": func(n *yaml.Node, _ string) { groupsNode = n },
		"rules":        func(n *yaml.Node, _ string) { rulesNode = n },
	})
	if smtpPass.node != nil && opt.Getenv != nil {
		if v, ok := opt.Getenv(smtpPass.env); ok {
			cfg.SMTP.Password = v
		} else {
			d.errorf(smtpPass.node, "smtp.passwordEnv", "environment variable %s is not set", smtpPass.env)
		}
	}
	groupPos := map[string]*yaml.Node{}
	needSMTP := (*yaml.Node)(nil)
	if groupsNode != nil {
		d.seq(groupsNode, "actionGroups", func(n *yaml.Node, p string) {
			g := d.actionGroup(n, p, &needSMTP)
			if g.Name == "" {
				return
			}
			if prev, dup := groupPos[g.Name]; dup {
				d.errorf(n, p+".name", "action group %q is already defined at line %d", g.Name, prev.Line)
				return
			}
			groupPos[g.Name] = n
			cfg.ActionGroups = append(cfg.ActionGroups, g)
		})
	}
	if needSMTP != nil && (cfg.SMTP.Addr == "" || cfg.SMTP.From == "") {
		d.errorf(needSMTP, "", "an email action needs smtp.addr and smtp.from at the top of the file")
	}
	rulePos := map[string]*yaml.Node{}
	if rulesNode != nil {
		d.seq(rulesNode, "rules", func(n *yaml.Node, p string) {
			r, ok := d.rule(n, p, opt, groupPos)
			if prev, dup := rulePos[r.Name]; dup && r.Name != "" {
				d.errorf(n, p+".name", "rule %q is already defined at line %d", r.Name, prev.Line)
				return
			}
			rulePos[r.Name] = n
			if ok {
				cfg.Rules = append(cfg.Rules, r)
			}
		})
	}
	if len(d.probs) > 0 {
		sort.SliceStable(d.probs, func(i, j int) bool {
			a, b := d.probs[i], d.probs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return Config{}, &LoadError{d.probs}
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// decoder walks YAML nodes and collects problems with their positions.
type decoder struct {
	file  string
	probs []Problem
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mapping calls fields[key] for each key of n; unknown and repeated keys
// are problems.
func (d *decoder) mapping(n *yaml.Node, path string, fields map[string]func(*yaml.Node, string)) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return
		}
		d.errorf(n, path, "want a mapping (key: value lines)")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			known := make([]string, 0, len(fields))
			for name := range fields {
				known = append(known, name)
			}
			sort.Strings(known)
			d.errorf(k, p, "unknown key %q (known here: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, p, "key %q is repeated", k.Value)
			continue
		}
		seen[k.Value] = true
		f(resolve(v), p)
	}
}

func (d *decoder) seq(n *yaml.Node, path string, each func(*yaml.Node, string)) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		if n.Tag == "!!null" {
			return
		}
		d.errorf(n, path, "want a list (lines starting with '- ')")
		return
	}
	for i, item := range n.Content {
		each(resolve(item), fmt.Sprintf("%s[%d]", path, i))
	}
}

func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, path, "want a single value")
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, path string) string {
	s, _ := d.scalar(n, path)
	return s
}

// strList accepts one value or a list of values.
func (d *decoder) strList(n *yaml.Node, path string) []string {
	if n.Kind == yaml.ScalarNode {
		if s, ok := d.scalar(n, path); ok {
			return []string{s}
		}
		return nil
	}
	var out []string
	d.seq(n, path, func(item *yaml.Node, p string) {
		if s, ok := d.scalar(item, p); ok {
			out = append(out, s)
		}
	})
	return out
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, false
	}
	if n.Tag != "!!int" && n.Tag != "!!float" {
		d.errorf(n, path, "%q is not a number", s)
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.errorf(n, path, "%q is not a finite number", s)
		return 0, false
	}
	return f, true
}

func (d *decoder) int(n *yaml.Node, path string) (int, bool) {
	f, ok := d.number(n, path)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) || math.Abs(f) > 1e9 {
		d.errorf(n, path, "%v is not a whole number", f)
		return 0, false
	}
	return int(f), true
}

func (d *decoder) bool(n *yaml.Node, path string) bool {
	s, ok := d.scalar(n, path)
	if !ok {
		return false
	}
	if n.Tag != "!!bool" {
		d.errorf(n, path, "%q is not true or false", s)
		return false
	}
	return strings.EqualFold(s, "true")
}

func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, false
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return 0, false
	}
	return v, true
}

func (d *decoder) address(n *yaml.Node, path string) string {
	s := d.str(n, path)
	if s == "" {
		return ""
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		d.errorf(n, path, "%q is not a mail address", s)
		return s
	}
	return a.Address
}

func (d *decoder) actionGroup(n *yaml.Node, path string, needSMTP **yaml.Node) ActionGroup {
	g := ActionGroup{Pos: d.pos(n)}
	var nameNode *yaml.Node
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"name": func(n *yaml.Node, p string) {
			g.Name, nameNode = d.str(n, p), n
			if err := checkName(g.Name); err != nil {
				d.errorf(n, p, "%v", err)
			}
		},
		"actions": func(n *yaml.Node, p string) {
			d.seq(n, p, func(n *yaml.Node, p string) {
				var a Action
				count := 0
				d.mapping(n, p, map[string]func(*yaml.Node, string){
					"webhook": func(n *yaml.Node, p string) { count++; a.Webhook = d.webhook(n, p) },
					"email": func(n *yaml.Node, p string) {
						count++
						a.Email = d.email(n, p)
						if *needSMTP == nil {
							*needSMTP = n
						}
					},
					"command": func(n *yaml.Node, p string) { count++; a.Command = d.command(n, p) },
					"nats":    func(n *yaml.Node, p string) { count++; a.NATS = d.nats(n, p) },
				})
				if count != 1 {
					d.errorf(n, p, "an action is exactly one of webhook, email, command or nats")
					return
				}
				if a.Webhook != nil || a.Email != nil || a.Command != nil || a.NATS != nil {
					g.Actions = append(g.Actions, a)
				}
			})
		},
	})
	if nameNode == nil {
		d.errorf(n, path, "an action group needs a name")
	}
	return g
}

func (d *decoder) webhook(n *yaml.Node, path string) *WebhookAction {
	w := &WebhookAction{}
	ok := true
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"url": func(n *yaml.Node, p string) {
			w.URL = d.str(n, p)
			u, err := url.Parse(w.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errorf(n, p, "want an http or https URL")
				ok = false
			}
		},
		"headers": func(n *yaml.Node, p string) {
			w.Headers = map[string]string{}
			if n.Kind != yaml.MappingNode {
				d.errorf(n, p, "want a mapping of header names to values")
				return
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				w.Headers[n.Content[i].Value] = d.str(resolve(n.Content[i+1]), join(p, n.Content[i].Value))
			}
		},
		"timeout": func(n *yaml.Node, p string) { w.Timeout, _ = d.duration(n, p) },
	})
	if w.URL == "" && ok {
		d.errorf(n, path, "a webhook needs a url")
	}
	return w
}

func (d *decoder) email(n *yaml.Node, path string) *EmailAction {
	e := &EmailAction{}
	given := false
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"to": func(n *yaml.Node, p string) {
			given = true
			for i, s := range d.strList(n, p) {
				if a, err := mail.ParseAddress(s); err != nil {
					d.errorf(n, fmt.Sprintf("%s[%d]", p, i), "%q is not a mail address", s)
				} else {
					e.To = append(e.To, a.Address)
				}
			}
		},
	})
	if !given {
		d.errorf(n, path, "an email action needs at least one address in to")
	}
	return e
}

func (d *decoder) command(n *yaml.Node, path string) *CommandAction {
	c := &CommandAction{}
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"run":     func(n *yaml.Node, p string) { c.Argv = d.strList(n, p) },
		"timeout": func(n *yaml.Node, p string) { c.Timeout, _ = d.duration(n, p) },
	})
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		d.errorf(n, path, "a command action needs run: [program, args…]")
		c.Argv = []string{""}
	}
	return c
}

var natsSubject = regexp.MustCompile(`^[^.\s*>]+(\.[^.\s*>]+)*$`)

func (d *decoder) nats(n *yaml.Node, path string) *NATSAction {
	a := &NATSAction{}
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"subject": func(n *yaml.Node, p string) {
			a.Subject = d.str(n, p)
			if !natsSubject.MatchString(a.Subject) {
				d.errorf(n, p, "%q is not a NATS subject to publish on (dot-separated tokens, no spaces or wildcards)", a.Subject)
			}
		},
	})
	if a.Subject == "" {
		d.errorf(n, path, "a nats action needs a subject")
	}
	return a
}

func (d *decoder) pos(n *yaml.Node) string {
	if d.file == "" {
		return fmt.Sprintf("%d:%d", n.Line, n.Column)
	}
	return fmt.Sprintf("%s:%d:%d", d.file, n.Line, n.Column)
}

// rule decodes one rule; ok is false when it has problems.
func (d *decoder) rule(n *yaml.Node, path string, opt LoadOptions, groups map[string]*yaml.Node) (Rule, bool) {
	before := len(d.probs)
	r := Rule{Pos: d.pos(n)}
	at := map[string]*yaml.Node{} // Validate's field names → where they were written
	set := func(field string, n *yaml.Node) { at[field] = n }
	var groupNodes []*yaml.Node
	thresholdSet := false
	var metricNode *yaml.Node
	atLeast1 := func(n *yaml.Node, p string) int {
		v, ok := d.int(n, p)
		if ok && v < 1 {
			d.errorf(n, p, "%d: at least 1", v)
		}
		return v
	}
	splitBy := func(n *yaml.Node, p string) { r.SplitBy = d.strList(n, p); set("splitBy", n) }
	aggregation := func(n *yaml.Node, p string) {
		set("aggregation", n)
		set("log.aggregation", n)
		if s, ok := d.scalar(n, p); ok {
			a, err := ParseAggregation(s)
			if err != nil {
				d.errorf(n, p, "%v", err)
			}
			r.Aggregation = a
		}
	}
	d.mapping(n, path, map[string]func(*yaml.Node, string){
		"name":        func(n *yaml.Node, p string) { r.Name = d.str(n, p); set("name", n) },
		"description": func(n *yaml.Node, p string) { r.Description = d.str(n, p) },
		"severity": func(n *yaml.Node, p string) {
			v, _ := d.int(n, p)
			r.Severity = Severity(v)
			set("severity", n)
		},
		"enabled": func(n *yaml.Node, p string) { r.Disabled = !d.bool(n, p) },
		"metric": func(n *yaml.Node, p string) {
			if r.Kind != "" {
				d.errorf(n, p, "a rule has either a metric or a log block, not both")
			}
			r.Kind = KindMetric
			set("metric", n)
			set("metric.name", n)
			d.mapping(n, p, map[string]func(*yaml.Node, string){
				"name":        func(n *yaml.Node, p string) { r.Metric = d.str(n, p); metricNode = n },
				"aggregation": aggregation,
				"filter": func(n *yaml.Node, p string) {
					if n.Kind != yaml.MappingNode {
						d.errorf(n, p, "want a mapping of dimension names to accepted values")
						return
					}
					r.Filter = map[string][]string{}
					for i := 0; i+1 < len(n.Content); i += 2 {
						k := n.Content[i].Value
						r.Filter[k] = d.strList(resolve(n.Content[i+1]), join(p, k))
						set("metric.filter."+k, n.Content[i])
					}
				},
				"splitBy": splitBy,
			})
		},
		"log": func(n *yaml.Node, p string) {
			if r.Kind != "" {
				d.errorf(n, p, "a rule has either a metric or a log block, not both")
			}
			r.Kind = KindLog
			set("log", n)
			set("log.query", n)
			d.mapping(n, p, map[string]func(*yaml.Node, string){
				"query": func(n *yaml.Node, p string) {
					r.Query = d.str(n, p)
					set("log.query", n)
					if opt.CheckQuery != nil && strings.TrimSpace(r.Query) != "" {
						if err := opt.CheckQuery(r.Query); err != nil {
							d.errorf(n, p, "%v", err)
						}
					}
				},
				"measure":     func(n *yaml.Node, p string) { r.Measure = d.str(n, p) },
				"aggregation": aggregation,
				"splitBy":     splitBy,
			})
		},
		"operator": func(n *yaml.Node, p string) {
			set("operator", n)
			if s, ok := d.scalar(n, p); ok {
				op, err := ParseOperator(s)
				if err != nil {
					d.errorf(n, p, "%v", err)
				}
				r.Operator = op
			}
		},
		"threshold": func(n *yaml.Node, p string) {
			r.Threshold, _ = d.number(n, p)
			set("threshold", n)
			thresholdSet = true
		},
		"frequency": func(n *yaml.Node, p string) { r.Frequency, _ = d.duration(n, p); set("frequency", n) },
		"window":    func(n *yaml.Node, p string) { r.Window, _ = d.duration(n, p); set("window", n) },
		"failingPeriods": func(n *yaml.Node, p string) {
			d.mapping(n, p, map[string]func(*yaml.Node, string){
				"violations": func(n *yaml.Node, p string) {
					r.MinFailing = atLeast1(n, p)
					set("failingPeriods.violations", n)
				},
				"evaluations": func(n *yaml.Node, p string) {
					r.Evaluations = atLeast1(n, p)
					set("failingPeriods.evaluations", n)
				},
			})
		},
		"autoResolve": func(n *yaml.Node, p string) {
			d.mapping(n, p, map[string]func(*yaml.Node, string){
				"after": func(n *yaml.Node, p string) { r.ResolveAfter = atLeast1(n, p); set("autoResolve.after", n) },
			})
		},
		"actionGroups": func(n *yaml.Node, p string) {
			r.ActionGroups = d.strList(n, p)
			if n.Kind == yaml.SequenceNode {
				groupNodes = n.Content
			} else {
				groupNodes = []*yaml.Node{n}
			}
		},
		"rateLimit": func(n *yaml.Node, p string) {
			d.mapping(n, p, map[string]func(*yaml.Node, string){
				"count": func(n *yaml.Node, p string) { r.RateLimit.Count = atLeast1(n, p); set("rateLimit.count", n) },
				"per":   func(n *yaml.Node, p string) { r.RateLimit.Per, _ = d.duration(n, p); set("rateLimit.per", n) },
			})
		},
	})
	for i, g := range r.ActionGroups {
		if _, ok := groups[g]; !ok && i < len(groupNodes) {
			d.errorf(groupNodes[i], fmt.Sprintf("%s.actionGroups[%d]", path, i), "no action group %q in this file", g)
		}
	}
	// Validate too, but not about fields already reported: a value that
	// did not decode would be complained about twice.
	reported := map[string]bool{}
	for _, p := range d.probs[before:] {
		reported[strings.TrimPrefix(p.Path, path+".")] = true
	}
	if reported["frequency"] {
		reported["window"] = true // compared with the frequency
	}
	if reported["log"] {
		reported["metric"] = true // "not both" said it
	}
	if !thresholdSet && !reported["threshold"] {
		d.errorf(n, join(path, "threshold"), "a threshold is required")
	}
	r.Defaults()
	if opt.CheckMetric != nil && metricNode != nil && r.Metric != "" && !reported["aggregation"] {
		dims := append([]string(nil), r.SplitBy...)
		for k := range r.Filter {
			dims = append(dims, k)
		}
		sort.Strings(dims)
		err := opt.CheckMetric(r.Metric, r.Aggregation, dims)
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				d.errorf(metricNode, join(path, "metric"), "%v", e)
			}
		} else if err != nil {
			d.errorf(metricNode, join(path, "metric"), "%v", err)
		}
	}
	for _, fp := range r.Validate() {
		if reported[fp.Field] || reported["metric."+fp.Field] || reported["log."+fp.Field] {
			continue
		}
		where := n
		if a := at[fp.Field]; a != nil {
			where = a
		}
		d.errorf(where, join(path, fp.Field), "%s", fp.Msg)
	}
	return r, len(d.probs) == before
}

// Package config reads the configuration file of `tether serve`
// (--config tether.yaml). The file mirrors the command's flags: every key
// is a flag's name, every value what the flag would take, so the flags'
// help is the file's reference and a flag added to serve is a key at once.
//
//	mqtt-addr: ":8883"
//	tls-cert: /etc/tether/tls.crt
//	log-retention: 720h
//	journal-sync-always: true
//
// Precedence: defaults in code < the file < environment (TETHER_*) <
// flags; the caller applies the file only to flags the command line and
// the environment left alone (Apply's skip).
//
// Strict, as Prometheus' config: unknown keys (with a suggestion),
// repeated keys, values of the wrong kind and values the flag refuses are
// all errors, every one with its line:column, all reported at once.
// Values are set through the flags' own parsers, so the file accepts
// exactly what the command line does.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// Setting is one key of the file.
type Setting struct {
	Key    string
	Value  string // as the flag takes it (a list joined with commas)
	Line   int
	Column int // of the value
}

// File is a parsed configuration file.
type File struct {
	Path     string
	Settings []Setting

	applied map[string]bool // by Apply; nil: Apply not called
}

// Problem is one error in a file, with its position.
type Problem struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
}

// Error lists every problem of a file, in file order.
type Error struct{ Problems []Problem }

// ErrInvalid is matched (errors.Is) by every *Error.
var ErrInvalid = errors.New("invalid configuration file")

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s) in the configuration file:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

func (e *Error) Is(target error) bool { return target == ErrInvalid }

func (e *Error) add(file string, line, col int, format string, a ...any) {
	e.Problems = append(e.Problems, Problem{File: file, Line: line, Column: col, Msg: fmt.Sprintf(format, a...)})
}

func (e *Error) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	sort.SliceStable(e.Problems, func(i, j int) bool {
		a, b := e.Problems[i], e.Problems[j]
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	return e
}

// Load reads and parses path against fs (see Parse).
func Load(path string, fs *pflag.FlagSet, allowed func(*pflag.Flag) bool) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	return Parse(path, data, fs, allowed)
}

// yamlLine finds the line yaml.v3 names in a syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// Parse checks data's shape and keys: a mapping of flag names (those of fs
// that allowed accepts) to scalars, or lists for list flags. Values are
// checked by Apply. With problems in a mapping it returns both the File
// of the settings that parsed and the *Error.
func Parse(path string, data []byte, fs *pflag.FlagSet, allowed func(*pflag.Flag) bool) (*File, error) {
	f := &File{Path: path}
	errs := &Error{}
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil // empty: nothing set
		}
		line := 0
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		errs.add(path, line, 1, "YAML syntax: %s", msg)
		return nil, errs.orNil()
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		errs.add(path, next.Line, next.Column, "a second YAML document: the file holds one mapping of settings")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, errs.orNil() // only comments
	}
	if root.Kind != yaml.MappingNode {
		errs.add(path, root.Line, root.Column, "the file must be a mapping of settings (flag names of 'tether serve' as keys), not a %s", kind(root))
		return nil, errs.orNil()
	}
	var names []string
	fs.VisitAll(func(fl *pflag.Flag) {
		if allowed(fl) {
			names = append(names, fl.Name)
		}
	})
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs.add(path, k.Line, k.Column, "a key must be a flag name, not a %s", kind(k))
			continue
		}
		key := k.Value
		fl := fs.Lookup(key)
		if fl == nil || !allowed(fl) {
			hint := ""
			norm := strings.ToLower(strings.ReplaceAll(strings.TrimLeft(key, "-"), "_", "-"))
			if nf := fs.Lookup(norm); nf != nil && allowed(nf) {
				hint = fmt.Sprintf(" (did you mean %q?)", norm)
			} else if s := syntax.Suggest(norm, names); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			} else if key == "config" {
				hint = " (a configuration file cannot name another)"
			}
			errs.add(path, k.Line, k.Column, "unknown key %q%s; keys are the flags of 'tether serve' (tether serve --help)", key, hint)
			continue
		}
		if prev, dup := seen[key]; dup {
			errs.add(path, k.Line, k.Column, "%q is set twice (first at line %d)", key, prev.Line)
			continue
		}
		seen[key] = k
		val, ok := value(v, fl)
		if !ok {
			want := "a single value"
			if isList(fl) {
				want = "a value or a list of values"
			}
			errs.add(path, v.Line, v.Column, "%s: want %s (as --%s takes it), not a %s", key, want, key, kind(v))
			continue
		}
		f.Settings = append(f.Settings, Setting{Key: key, Value: val, Line: v.Line, Column: v.Column})
	}
	// The settings that are fine come back with the problems, so Apply
	// can check their values and Merge report everything at once.
	return f, errs.orNil()
}

// Merge joins the problems of several *Error (nil ones skipped) into one,
// in file order; an error of another kind is returned as it is.
func Merge(errs ...error) error {
	all := &Error{}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) {
			return err
		}
		all.Problems = append(all.Problems, ce.Problems...)
	}
	return all.orNil()
}

// value is the flag text of v: a scalar as written, a list of scalars
// joined with commas for list flags.
func value(v *yaml.Node, fl *pflag.Flag) (string, bool) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return "", false
		}
		return v.Value, true
	case yaml.SequenceNode:
		if !isList(fl) {
			return "", false
		}
		parts := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				return "", false
			}
			parts = append(parts, e.Value)
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

func isList(fl *pflag.Flag) bool {
	t := fl.Value.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null (no value)"
		}
		return "value"
	}
	return "document"
}

// Apply sets the file's values on fs, except for flags skip reports (set
// on the command line or in the environment: those win). Every value a
// flag refuses is a Problem; all are reported.
func (f *File) Apply(fs *pflag.FlagSet, skip func(name string) bool) error {
	errs := &Error{}
	f.applied = map[string]bool{}
	for _, s := range f.Settings {
		if skip != nil && skip(s.Key) {
			continue
		}
		f.applied[s.Key] = true
		if err := fs.Set(s.Key, s.Value); err != nil {
			errs.add(f.Path, s.Line, s.Column, "%s: %s", s.Key, flagError(err, s))
		}
	}
	return errs.orNil()
}

// flagError says what a flag's parser disliked, without pflag's prefix.
func flagError(err error, s Setting) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); strings.HasPrefix(msg, "invalid argument") && i >= 0 {
		msg = msg[i+2:]
	}
	return fmt.Sprintf("%q is not valid: %s", s.Value, msg)
}

// Annotate prefixes the lines of err (a validation error of the whole
// configuration, e.g. app.Config.Validate's) that start with a key this
// file set (and Apply applied: a flag or variable that overrode it is not
// the file's fault) with the key's position.
func (f *File) Annotate(err error) error {
	if err == nil || f == nil {
		return err
	}
	lines := strings.Split(err.Error(), "\n")
	changed := false
	for i, line := range lines {
		for _, s := range f.Settings {
			if f.applied != nil && !f.applied[s.Key] {
				continue
			}
			if strings.HasPrefix(line, s.Key+" ") || strings.HasPrefix(line, s.Key+":") {
				lines[i] = fmt.Sprintf("%s:%d:%d: %s", f.Path, s.Line, s.Column, line)
				changed = true
				break
			}
		}
	}
	if !changed {
		return err
	}
	return errors.New(strings.Join(lines, "\n"))
}

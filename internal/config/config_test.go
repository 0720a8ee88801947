package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tether-hub/tether/internal/config"
)

// flags is a small stand-in for serve's flag set.
func flags() (*pflag.FlagSet, *struct {
	addr    string
	dev     bool
	timeout time.Duration
	n       int
	tags    []string
}) {
	v := &struct {
		addr    string
		dev     bool
		timeout time.Duration
		n       int
		tags    []string
	}{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.StringVar(&v.addr, "mqtt-addr", ":8883", "")
	fs.BoolVar(&v.dev, "dev", false, "")
	fs.DurationVar(&v.timeout, "connect-timeout", 10*time.Second, "")
	fs.IntVar(&v.n, "compact-after", 0, "")
	fs.StringSliceVar(&v.tags, "tags", nil, "")
	fs.String("connection-string", "", "a client flag, not for serve")
	fs.String("config", "", "")
	return fs, v
}

func allowed(fl *pflag.Flag) bool { return fl.Name != "connection-string" && fl.Name != "config" }

func TestParseAndApply(t *testing.T) {
	fs, v := flags()
	src := `# comment
mqtt-addr: "127.0.0.1:9883"
dev: true
connect-timeout: 3s
compact-after: 5
tags: [a, b]
`
	f, err := config.Parse("tether.yaml", []byte(src), fs, allowed)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Settings) != 5 || f.Settings[0] != (config.Setting{Key: "mqtt-addr", Value: "127.0.0.1:9883", Line: 2, Column: 12}) {
		t.Fatalf("settings %+v", f.Settings)
	}
	// The command line set mqtt-addr: the file does not override it.
	if err := fs.Set("mqtt-addr", ":1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(fs, func(name string) bool { return fs.Changed(name) && name == "mqtt-addr" }); err != nil {
		t.Fatal(err)
	}
	if v.addr != ":1" || !v.dev || v.timeout != 3*time.Second || v.n != 5 || strings.Join(v.tags, "|") != "a|b" {
		t.Fatalf("applied: %+v", v)
	}
	// Validation errors about keys the file set get its positions; one
	// the command line overrode does not.
	err = f.Annotate(errors.New("connect-timeout 3s: too short\nmqtt-addr \":1\": bad\ndurations must not be negative"))
	want := "tether.yaml:4:18: connect-timeout 3s: too short\nmqtt-addr \":1\": bad\ndurations must not be negative"
	if err.Error() != want {
		t.Fatalf("annotate:\n%s\nwant\n%s", err, want)
	}
}

func TestProblemsWithPositions(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // every problem, in order
	}{
		{"unknown keys with suggestions", "mqtt_addr: x\ndevv: true\nconnection-string: x\nconfig: other.yaml\n", []string{
			`tether.yaml:1:1: unknown key "mqtt_addr" (did you mean "mqtt-addr"?)`,
			`tether.yaml:2:1: unknown key "devv" (did you mean "dev"?)`,
			`tether.yaml:3:1: unknown key "connection-string"`,
			`tether.yaml:4:1: unknown key "config" (a configuration file cannot name another)`,
		}},
		{"repeated key", "dev: true\ndev: false\n", []string{`tether.yaml:2:1: "dev" is set twice (first at line 1)`}},
		{"wrong kinds", "mqtt-addr: [a, b]\ndev:\nconnect-timeout: {a: 1}\ntags: [[x]]\n", []string{
			"tether.yaml:1:12: mqtt-addr: want a single value",
			"tether.yaml:2:5: dev: want a single value (as --dev takes it), not a null (no value)",
			"tether.yaml:3:18: connect-timeout: want a single value",
			"tether.yaml:4:7: tags: want a value or a list of values",
		}},
		{"not a mapping", "- dev\n", []string{"tether.yaml:1:1: the file must be a mapping of settings"}},
		{"syntax", "dev: true\n  mqtt-addr: : x\n", []string{"tether.yaml:2:1: YAML syntax:"}},
		{"two documents", "dev: true\n---\ndev: false\n", []string{"tether.yaml:2:1: a second YAML document"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, _ := flags()
			_, err := config.Parse("tether.yaml", []byte(tc.src), fs, allowed)
			var ce *config.Error
			if !errors.As(err, &ce) || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %v, want *config.Error", err)
			}
			if len(ce.Problems) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(ce.Problems), len(tc.want), err)
			}
			for i, p := range ce.Problems {
				if !strings.HasPrefix(p.String(), tc.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s…", i, p, tc.want[i])
				}
			}
		})
	}
}

// Values a flag refuses are reported with their positions, all at once.
func TestApplyRefusedValues(t *testing.T) {
	fs, _ := flags()
	f, err := config.Parse("t.yaml", []byte("dev: yes\nconnect-timeout: 30\ncompact-after: many\n"), fs, allowed)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Apply(fs, nil)
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 3 {
		t.Fatalf("%v", err)
	}
	for i, want := range []string{`t.yaml:1:6: dev: "yes" is not valid`, `t.yaml:2:18: connect-timeout: "30" is not valid: missing unit in duration`, `t.yaml:3:16: compact-after: "many" is not valid`} {
		if !strings.HasPrefix(ce.Problems[i].String(), want) {
			t.Errorf("got %s, want %s…", ce.Problems[i], want)
		}
	}
}

func TestEmptyFiles(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n"} {
		fs, _ := flags()
		f, err := config.Parse("e.yaml", []byte(src), fs, allowed)
		if err != nil || len(f.Settings) != 0 {
			t.Errorf("%q: %+v %v", src, f, err)
		}
	}
}

// FuzzParse: any input parses or fails with a *config.Error; what parses
// names only allowed flags, and applying it fails only with a
// *config.Error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"dev: true\n", "mqtt-addr: ':1'\ntags: [a]\n", "a: [\n", "- x", "dev: &a true\nconnect-timeout: *a\n", "? [a]\n: b\n", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, _ := flags()
		file, err := config.Parse("f.yaml", data, fs, allowed)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v is not a *config.Error with problems", err)
			}
			return
		}
		for _, s := range file.Settings {
			if fl := fs.Lookup(s.Key); fl == nil || !allowed(fl) {
				t.Fatalf("setting of a flag that is not allowed: %q", s.Key)
			}
		}
		if err := file.Apply(fs, nil); err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("apply error %v is not a *config.Error", err)
			}
		}
	})
}

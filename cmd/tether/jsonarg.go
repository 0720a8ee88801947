package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tether-hub/tether/internal/devquery/syntax"
)

// JSON given on the command line (twin tags and desired properties, method
// payloads, import files) is checked here, so that a typo is reported with
// its line and column before anything reaches the hub.

// maxJSONArg bounds what an @file flag reads. The hub's own limits are far
// smaller (64 KiB for a twin write, 128 KiB for a method payload) and it
// says so; this only keeps a wrong file name (a disk image) from being
// read whole.
const maxJSONArg = 4 << 20

// readJSONArg returns the JSON of a flag value: the text itself, or the
// contents of a file when it starts with @ (@- reads standard input).
// Errors name the flag (and file) and where the JSON goes wrong.
func readJSONArg(flag, v string, stdin io.Reader) (json.RawMessage, error) {
	data, src := []byte(v), flag
	if name, ok := strings.CutPrefix(v, "@"); ok {
		src = flag + " " + v
		var err error
		if data, err = readArgFile(name, stdin, maxJSONArg); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	if err := checkJSON(data); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return json.RawMessage(bytes.TrimSpace(data)), nil
}

// readArgFile reads a file named on the command line ("-": stdin), up to
// limit bytes.
func readArgFile(name string, stdin io.Reader, limit int64) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	} else if r == nil {
		return nil, errors.New("no standard input to read")
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, limit>>20)
	}
	return data, nil
}

// checkJSON returns nil for one valid JSON value, else where it stops
// being one: "not valid JSON at line L, column C: …" with the line and a
// caret when the line is short enough to show.
func checkJSON(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty: give a JSON value")
	}
	if json.Valid(data) {
		return nil
	}
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("not valid JSON: %v", err)
	}
	line, col := jsonErrorPos(data, se)
	msg := fmt.Sprintf("not valid JSON at line %d, column %d: %s", line, col, se.Error())
	if c, ok := caretAt(string(data), line, col); ok && len(c) < 300 {
		msg += c
	}
	return errors.New(msg)
}

// jsonErrorPos turns a SyntaxError's offset (the bytes read, the bad one
// included) into a line and column (1-based, in characters) of data, as
// the device query parser counts them. An unexpected end points just past
// the last character.
func jsonErrorPos(data []byte, se *json.SyntaxError) (line, col int) {
	pos := int(se.Offset) - 1
	if strings.Contains(se.Error(), "unexpected end") {
		pos = len(bytes.TrimRight(data, " \t\r\n"))
	}
	e := syntax.ErrorAt(string(data), pos, "")
	return e.Line, e.Col
}

// jsonObjectArg is readJSONArg for flags that take a JSON object (twin
// tags and desired properties).
func jsonObjectArg(flag, v string, stdin io.Reader) (json.RawMessage, error) {
	raw, err := readJSONArg(flag, v, stdin)
	if err != nil {
		return nil, err
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%s: want a JSON object such as '{\"interval\":5}', got %s", flag, jsonKindOf(raw))
	}
	return raw, nil
}

// jsonKindOf names the kind of a valid JSON value, for messages.
func jsonKindOf(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// printIndented prints JSON from the hub indented, as it came otherwise:
// member order and string escapes kept.
func printIndented(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

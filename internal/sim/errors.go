package sim

import (
	"io"
	"strings"
)

var errEOF = io.EOF

// shortErr is the last part of an error chain's text ("read tcp …:
// connection reset by peer" → "connection reset by peer").
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

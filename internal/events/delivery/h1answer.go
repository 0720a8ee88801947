package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"strconv"
)

// readAnswer reads one HTTP/1.x answer to a POST from br: its status,
// and whether the connection can carry the next request (HTTP/1.1, not
// "Connection: close", not 101, the body read whole within maxAnswer).
// Informational answers (1xx but 101) are skipped. The body is read and
// dropped.
//
// Why not http.ReadResponse: it builds a Response with a header map and a
// string per header line, a body reader and a textproto reader for every
// answer — ~8 µs and a dozen allocations per POST at one event per POST
// (issue 21), for the three fields a webhook sender reads. What it
// accepts is accepted here too, except a head line of a header this
// reader needs (status, Content-Length, Transfer-Encoding, Connection)
// longer than br's buffer; other long lines are skipped.
func readAnswer(br *bufio.Reader) (status int, reuse bool, err error) {
	for {
		a, err := readHead(br)
		if err != nil {
			return 0, false, err
		}
		complete, err := a.discardBody(br)
		if err != nil {
			return 0, false, err
		}
		if a.status >= 100 && a.status < 200 && a.status != 101 {
			continue // 100 Continue, 103 Early Hints: the answer follows
		}
		return a.status, complete && a.http11 && !a.close && a.status != 101, nil
	}
}

// answerHead is what readAnswer needs of an answer's head.
type answerHead struct {
	status  int
	http11  bool
	close   bool  // Connection: close
	chunked bool  // Transfer-Encoding: chunked
	length  int64 // Content-Length; -1 if none
}

// maxAnswerHead bounds an answer's head (net/http's client: 10 MB; an
// endpoint's answer to a webhook has a few lines).
const maxAnswerHead = 1 << 20

var errAnswer = errors.New("malformed HTTP answer")

func readHead(br *bufio.Reader) (answerHead, error) {
	a := answerHead{length: -1}
	line, long, err := headLine(br)
	if err != nil {
		return a, err
	}
	if long {
		return a, fmt.Errorf("%w: status line too long", errAnswer)
	}
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	rest = bytes.TrimLeft(rest, " ")
	switch string(proto) {
	case "HTTP/1.1":
		a.http11 = true
	case "HTTP/1.0":
	default:
		return a, fmt.Errorf("%w: %q", errAnswer, line)
	}
	code, _, _ := bytes.Cut(rest, []byte(" "))
	if len(code) != 3 {
		return a, fmt.Errorf("%w: status %q", errAnswer, line)
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return a, fmt.Errorf("%w: status %q", errAnswer, line)
		}
		a.status = a.status*10 + int(c-'0')
	}
	if a.status < 100 {
		return a, fmt.Errorf("%w: status %q", errAnswer, line)
	}
	size := len(line)
	for {
		line, long, err := headLine(br)
		if err != nil {
			return a, err
		}
		if size += len(line); size > maxAnswerHead {
			return a, fmt.Errorf("%w: head over %d bytes", errAnswer, maxAnswerHead)
		}
		if len(line) == 0 {
			return a, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // a folded line continues a header this reader skips (checked below)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			return a, fmt.Errorf("%w: header line %q", errAnswer, line)
		}
		value = bytes.TrimSpace(value)
		known := true
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.ParseUint(string(value), 10, 63)
			if err != nil || (a.length >= 0 && int64(n) != a.length) {
				return a, fmt.Errorf("%w: Content-Length %q", errAnswer, value)
			}
			a.length = int64(n)
		case asciiEqualFold(name, "Transfer-Encoding"):
			if !asciiEqualFold(value, "chunked") || a.chunked {
				return a, fmt.Errorf("%w: Transfer-Encoding %q", errAnswer, value)
			}
			a.chunked = true
		case asciiEqualFold(name, "Connection"):
			for t := range bytes.SplitSeq(value, []byte(",")) {
				if asciiEqualFold(bytes.TrimSpace(t), "close") {
					a.close = true
				}
			}
		default:
			known = false
		}
		if known && (long || folded(br)) {
			return a, fmt.Errorf("%w: %s header too long or folded", errAnswer, name)
		}
	}
}

// folded reports whether the next head line continues the one just read.
func folded(br *bufio.Reader) bool {
	b, err := br.Peek(1)
	return err == nil && (b[0] == ' ' || b[0] == '\t')
}

// headLine returns the next line of a head without its line end. A line
// longer than br's buffer is read to its end and long is set; line then
// holds its start.
func headLine(br *bufio.Reader) (line []byte, long bool, err error) {
	line, err = br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Keep the start (the header's name) out of the buffer that
		// the rest of the line is read through.
		line, long = bytes.Clone(line[:min(len(line), 64)]), true
		for n := 0; errors.Is(err, bufio.ErrBufferFull); {
			var more []byte
			more, err = br.ReadSlice('\n')
			if n += len(more); n > maxAnswerHead {
				return nil, false, fmt.Errorf("%w: a head line over %d bytes", errAnswer, maxAnswerHead)
			}
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, false, err
	}
	if !long {
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	}
	return line, long, nil
}

// discardBody reads the answer's body (to a POST) and drops it;
// complete is false when it was not read to its end (longer than
// maxAnswer, or delimited by the connection's close).
func (a answerHead) discardBody(br *bufio.Reader) (complete bool, err error) {
	switch {
	case a.status < 200 || a.status == 204 || a.status == 304:
		return true, nil // no body (RFC 9112, 6.3)
	case a.chunked:
		n, err := io.Copy(io.Discard, io.LimitReader(httputil.NewChunkedReader(br), maxAnswer+1))
		if err != nil || n > maxAnswer {
			return false, err
		}
		// The trailer section, up to its empty line.
		for size := 0; ; {
			line, _, err := headLine(br)
			if err != nil {
				return false, err
			}
			if len(line) == 0 {
				return true, nil
			}
			if size += len(line); size > maxAnswerHead {
				return false, fmt.Errorf("%w: trailer over %d bytes", errAnswer, maxAnswerHead)
			}
		}
	case a.length > maxAnswer:
		return false, nil // not read: the connection is closed
	case a.length >= 0:
		_, err := br.Discard(int(a.length))
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err == nil, err
	}
	// Delimited by the connection's end.
	_, err = io.Copy(io.Discard, io.LimitReader(br, maxAnswer+1))
	return false, err
}

// asciiEqualFold is strings.EqualFold for an ASCII name.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

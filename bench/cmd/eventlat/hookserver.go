package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// hookServer is the receiver's HTTP/1.1 server: POSTs to one path, bodies
// framed by Content-Length or chunked, connections kept alive, one answer
// per request written in one write.
//
// Why not net/http: at 5,000 events/s with one event per POST, net/http's
// per-request header map, response object, background reader and
// buffered-writer flushes were a third of eventlat's CPU, and eventlat
// shares the 2 cores with the hub it measures. This server reads a request
// into buffers the connection keeps and allocates nothing per request
// beyond what the handler does; what an Event Grid webhook client needs of
// the protocol is kept: keep-alive (HTTP/1.0 and "Connection: close"
// honoured), Content-Length and chunked bodies (extensions and trailers
// read and ignored), "Expect: 100-continue", and 400/404/405/413/417/501/505
// for requests it cannot take (framing errors also close the connection,
// since the next request's start is unknown).
type hookServer struct {
	ln      net.Listener
	path    string
	handle  func(r *hookRequest) hookAnswer
	badHTTP func(error) // requests refused before the handler (may be nil)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// hookRequest is one request; Body is valid until the handler returns.
type hookRequest struct {
	Body          []byte
	AegEventType  []byte // the aeg-event-type header
	contentLength int64  // -1: none given
	chunked       bool
	close         bool // answer, then close the connection
	expect        bool // Expect: 100-continue
}

// hookAnswer is the handler's answer: a status, and an optional body with
// its content type.
type hookAnswer struct {
	status      int
	body        []byte
	contentType string
}

const (
	maxHookBody   = 64 << 20 // a batch larger than this is refused (413)
	maxHookLine   = 16 << 10 // request line or one header line (the reader's buffer)
	maxHookFields = 200      // header lines per request, trailers included
)

// errHTTP is a request this server refuses; status is its answer.
type errHTTP struct {
	status int
	msg    string
}

func (e *errHTTP) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func badReq(status int, format string, a ...any) error {
	return &errHTTP{status: status, msg: fmt.Sprintf(format, a...)}
}

// serveHook serves ln until close.
func serveHook(ln net.Listener, path string, handle func(*hookRequest) hookAnswer, badHTTP func(error)) *hookServer {
	s := &hookServer{ln: ln, path: path, handle: handle, badHTTP: badHTTP, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s
}

func (s *hookServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// close stops accepting, closes every connection and waits for their
// goroutines.
func (s *hookServer) close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *hookServer) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(c, maxHookLine)
	var req hookRequest
	var body, aeg, out []byte
	for {
		req = hookRequest{Body: body[:0], AegEventType: aeg[:0]}
		err := s.readHead(br, &req)
		if err == io.EOF {
			return // the client closed between requests
		}
		if err == nil && req.expect && (req.chunked || req.contentLength > 0) {
			if _, err := c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
				return
			}
		}
		if err == nil {
			err = readHookBody(br, &req)
		}
		var ans hookAnswer
		if err != nil {
			var he *errHTTP
			if !errors.As(err, &he) {
				return // the connection failed or ended mid-request
			}
			if s.badHTTP != nil {
				s.badHTTP(err)
			}
			// The rest of the stream cannot be trusted to start a request.
			req.close = true
			ans = hookAnswer{status: he.status, body: []byte(he.msg + "\n"), contentType: "text/plain; charset=utf-8"}
		} else {
			ans = s.handle(&req)
		}
		body, aeg = req.Body, req.AegEventType
		out = appendAnswer(out[:0], ans, req.close)
		if _, err := c.Write(out); err != nil || req.close {
			if err == nil && ans.status >= 400 {
				lingerClose(c)
			}
			return
		}
	}
}

// lingerClose half-closes c and reads what the client still sends (up to
// 1 MB, 1 s) before the caller closes it: closing a socket with unread
// input makes the kernel send a reset, which can destroy the refusal just
// written before the client reads it.
func lingerClose(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.CloseWrite()
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, tc, 1<<20)
}

// readHead reads the request line and the header fields.
func (s *hookServer) readHead(br *bufio.Reader, req *hookRequest) error {
	line, err := readLine(br)
	if err == nil && len(line) == 0 {
		line, err = readLine(br) // RFC 9112 2.2: one empty line before a request is ignored
		err = unexpected(err)
	}
	if err != nil {
		return err
	}
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 {
		return badReq(http.StatusBadRequest, "malformed request line")
	}
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.close = true // unless it asks for keep-alive
	default:
		if !bytes.HasPrefix(proto, []byte("HTTP/")) {
			return badReq(http.StatusBadRequest, "malformed request line")
		}
		return badReq(http.StatusHTTPVersionNotSupported, "HTTP/1.0 and 1.1 only")
	}
	req.contentLength = -1
	var status int
	var msg string
	for n := 0; ; n++ {
		l, end, err := nextField(br, n)
		if err != nil {
			return err
		}
		if end {
			break
		}
		name, value, ok := bytes.Cut(l, []byte{':'})
		if !ok || len(name) == 0 || l[0] == ' ' || l[0] == '\t' || bytes.ContainsAny(name, " \t") {
			return badReq(http.StatusBadRequest, "malformed header field")
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEq(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || value[0] == '+' || req.contentLength >= 0 && req.contentLength != n {
				return badReq(http.StatusBadRequest, "bad Content-Length")
			}
			req.contentLength = n
		case asciiEq(name, "transfer-encoding"):
			if !asciiEq(value, "chunked") {
				status, msg = http.StatusNotImplemented, "only the chunked transfer coding"
			}
			req.chunked = true
		case asciiEq(name, "connection"):
			for _, tok := range bytes.Split(value, []byte{','}) {
				tok = bytes.Trim(tok, " \t")
				if asciiEq(tok, "close") {
					req.close = true
				} else if asciiEq(tok, "keep-alive") && string(proto) == "HTTP/1.0" {
					req.close = false
				}
			}
		case asciiEq(name, "expect"):
			if !asciiEq(value, "100-continue") {
				status, msg = http.StatusExpectationFailed, "unknown expectation"
			}
			req.expect = true
		case asciiEq(name, "aeg-event-type"):
			req.AegEventType = append(req.AegEventType[:0], value...)
		}
	}
	switch {
	case req.chunked && req.contentLength >= 0:
		// RFC 9112 6.3: a request with both is a smuggling risk; refused.
		return badReq(http.StatusBadRequest, "both Transfer-Encoding and Content-Length")
	case status != 0:
		return badReq(status, "%s", msg)
	case req.contentLength > maxHookBody:
		return badReq(http.StatusRequestEntityTooLarge, "body over %d bytes", maxHookBody)
	case string(method) != http.MethodPost:
		return badReq(http.StatusMethodNotAllowed, "POST only")
	}
	if p, _, _ := bytes.Cut(target, []byte{'?'}); string(p) != s.path {
		return badReq(http.StatusNotFound, "no such path")
	}
	return nil
}

// readHookBody reads the body as the head framed it into req.Body.
func readHookBody(br *bufio.Reader, req *hookRequest) error {
	if !req.chunked {
		n := int(max(req.contentLength, 0))
		req.Body = grow(req.Body[:0], n)
		_, err := io.ReadFull(br, req.Body)
		return unexpected(err)
	}
	body := req.Body[:0]
	for {
		l, err := readLine(br)
		if err != nil {
			return unexpected(err)
		}
		hex, _, _ := bytes.Cut(l, []byte{';'}) // chunk extensions are ignored
		hex = bytes.TrimRight(hex, " \t")
		n, err := strconv.ParseUint(string(hex), 16, 63)
		if err != nil || len(hex) == 0 {
			return badReq(http.StatusBadRequest, "bad chunk size")
		}
		if n == 0 {
			break
		}
		if uint64(len(body))+n > maxHookBody {
			return badReq(http.StatusRequestEntityTooLarge, "body over %d bytes", maxHookBody)
		}
		off := len(body)
		body = grow(body, off+int(n))
		if _, err := io.ReadFull(br, body[off:]); err != nil {
			return unexpected(err)
		}
		if l, err := readLine(br); err != nil || len(l) != 0 {
			if err != nil {
				return unexpected(err)
			}
			return badReq(http.StatusBadRequest, "chunk not followed by CRLF")
		}
	}
	req.Body = body
	for n := 0; ; n++ { // trailer fields, read and ignored
		if _, end, err := nextField(br, n); end || err != nil {
			return err
		}
	}
}

// nextField reads the n-th line (from 0) of a header or trailer block;
// end says it was the empty line that ends the block.
func nextField(br *bufio.Reader, n int) (line []byte, end bool, err error) {
	if n > maxHookFields {
		return nil, false, badReq(http.StatusRequestHeaderFieldsTooLarge, "over %d header or trailer fields", maxHookFields)
	}
	l, err := readLine(br)
	if err != nil {
		return nil, false, unexpected(err)
	}
	return l, len(l) == 0, nil
}

// grow returns b with length n, reusing its array when it is large enough.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// readLine reads one line without its CRLF (or bare LF). A line longer
// than the reader's buffer is refused (431).
func readLine(br *bufio.Reader) ([]byte, error) {
	l, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, badReq(http.StatusRequestHeaderFieldsTooLarge, "line over %d bytes", maxHookLine)
	}
	if err != nil {
		if err == io.EOF && len(l) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	l = l[:len(l)-1]
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	return l, nil
}

// unexpected turns an EOF inside a request into io.ErrUnexpectedEOF (an
// EOF is only clean between requests).
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func asciiEq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// appendAnswer appends the status line, headers and body of a response.
func appendAnswer(out []byte, a hookAnswer, closing bool) []byte {
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(a.status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(a.status)...)
	out = append(out, "\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(a.body)), 10)
	out = append(out, "\r\n"...)
	if a.contentType != "" {
		out = append(out, "Content-Type: "...)
		out = append(out, a.contentType...)
		out = append(out, "\r\n"...)
	}
	if a.status == http.StatusMethodNotAllowed {
		out = append(out, "Allow: POST\r\n"...)
	}
	if closing {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	return append(out, a.body...)
}

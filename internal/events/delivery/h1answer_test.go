package delivery

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// netHTTPAnswer is what the direct sender did before readAnswer: the
// answer as http.ReadResponse reads it.
func netHTTPAnswer(br *bufio.Reader) (int, bool, error) {
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, false, err
		}
		n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer+1))
		_ = resp.Body.Close()
		if err != nil {
			return 0, false, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue
		}
		return resp.StatusCode, n <= maxAnswer && !resp.Close && resp.ProtoAtLeast(1, 1) && resp.StatusCode != 101, nil
	}
}

// next follows every answer in the tests: a reused connection must be at
// its start, so each answer's body has to be read exactly.
const next = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

// readAnswer gives what net/http gave for the answers endpoints send,
// and reads each to its end so the next answer on the connection is read
// from its start.
func TestReadAnswerAsNetHTTP(t *testing.T) {
	long := strings.Repeat("v", 9000)
	big := strings.Repeat("x", maxAnswer+1)
	for _, c := range []struct {
		name   string
		answer string
		status int
		reuse  bool
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok", 200, true},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 200, true},
		{"spaces", "HTTP/1.1  201 Created\r\ncontent-length:  3 \r\n\r\nabc", 201, true},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", 200, true},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 200, false},
		{"close among tokens", "HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", 200, false},
		{"keep-alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, true},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, false},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", 204, true},
		{"304", "HTTP/1.1 304 Not Modified\r\n\r\n", 304, true},
		{"404 body", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", 404, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;ext=1\r\nabc\r\n0\r\n\r\n", 200, true},
		{"chunked trailer", "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n", 500, true},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, true},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 200, true},
		{"early hints", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, true},
		{"switching", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 101, false},
		{"long other header", "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\nContent-Length: 0\r\n\r\n", 200, true},
		{"folded other header", "HTTP/1.1 200 OK\r\nX-F: a\r\n b\r\nContent-Length: 0\r\n\r\n", 200, true},
		{"length over maxAnswer", "HTTP/1.1 200 OK\r\nContent-Length: " + "70000" + "\r\n\r\n" + strings.Repeat("x", 70000), 200, false},
		{"chunked over maxAnswer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n" + big + "\r\n0\r\n\r\n", 200, false},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nbody until the end", 200, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantStatus, wantReuse, err := netHTTPAnswer(bufio.NewReaderSize(strings.NewReader(c.answer+next), 4096))
			if err != nil || wantStatus != c.status || wantReuse != c.reuse {
				t.Fatalf("the case is wrong: net/http gives %d, reuse %v, %v", wantStatus, wantReuse, err)
			}
			br := bufio.NewReaderSize(strings.NewReader(c.answer+next), 4096)
			status, reuse, err := readAnswer(br)
			if err != nil || status != c.status || reuse != c.reuse {
				t.Fatalf("readAnswer: %d, reuse %v, %v; want %d, reuse %v", status, reuse, err, c.status, c.reuse)
			}
			if !reuse {
				return
			}
			if status, reuse, err := readAnswer(br); err != nil || status != 202 || !reuse {
				t.Errorf("the answer after: %d, reuse %v, %v; want 202 (the body was not read exactly)", status, reuse, err)
			}
		})
	}
}

// Answers net/http refuses are errors, and so are the few readAnswer
// refuses beyond them (a needed header longer than the read buffer);
// an answer cut short is an error, never a status.
func TestReadAnswerRefuses(t *testing.T) {
	for _, c := range []struct {
		name    string
		answer  string
		netHTTP bool // net/http refuses it too
	}{
		{"empty", "", true},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", true},
		{"status four digits", "HTTP/1.1 2000 OK\r\n\r\n", true},
		{"status letters", "HTTP/1.1 2x0 OK\r\n\r\n", true},
		{"no colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", true},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", true},
		{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", true},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", true},
		{"gzip encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", true},
		{"head cut", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", true},
		{"body cut", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true},
		{"chunk cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true},
		{"trailer cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n", true},
		{"long length line", "HTTP/1.1 200 OK\r\nContent-Length: " + strings.Repeat("0", 5000) + "1\r\n\r\nx", false},
		{"folded length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 2\r\n\r\nx", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := netHTTPAnswer(bufio.NewReaderSize(strings.NewReader(c.answer), 4096)); (err != nil) != c.netHTTP {
				t.Fatalf("the case is wrong: net/http's error %v", err)
			}
			status, reuse, err := readAnswer(bufio.NewReaderSize(strings.NewReader(c.answer), 4096))
			if err == nil {
				t.Errorf("readAnswer: %d, reuse %v, no error", status, reuse)
			}
		})
	}
}

// BenchmarkReadAnswer is the direct sender's read of a typical answer:
//
//	go test -run '^$' -bench ReadAnswer -benchmem ./internal/events/delivery/
func BenchmarkReadAnswer(b *testing.B) {
	answer := "HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026 15:00:00 GMT\r\nContent-Length: 0\r\n\r\n"
	r := strings.NewReader(answer)
	br := bufio.NewReaderSize(r, 4096)
	for _, c := range []struct {
		name string
		read func(*bufio.Reader) (int, bool, error)
	}{{"net-http", netHTTPAnswer}, {"direct", readAnswer}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(answer)
				br.Reset(r)
				if status, reuse, err := c.read(br); status != 200 || !reuse || err != nil {
					b.Fatal(status, reuse, err)
				}
			}
		})
	}
}

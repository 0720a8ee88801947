package devquery

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
)

// A continuation token is base64url (no padding) of:
//
//	version (1) | kind (1) | query hash (8) | uvarint returned | after id
//
// kind tells a scan (resume after the device id `after`) from an
// aggregate (resume at row `returned`); returned counts the items of the
// earlier pages, for TOP. The hash is the first 8 bytes of SHA-256 of the
// canonical query text, so a token handed to another query is refused.
// Tokens carry no state on the hub: they survive restarts and cost
// nothing when abandoned.
const (
	tokenVersion   = 1
	tokenScan      = 's'
	tokenAggregate = 'a'
	maxTokenLength = 1024
)

// ContinuationError is a continuation token the query cannot use: a client
// mistake (HTTP 400), never the hub's fault.
type ContinuationError struct {
	Msg string
}

func (e *ContinuationError) Error() string { return "x-ms-continuation: " + e.Msg }

type position struct {
	kind     byte
	returned int64
	after    string
}

func (q *Query) encodeToken(p position) string {
	b := make([]byte, 0, 10+binary.MaxVarintLen64+len(p.after))
	b = append(b, tokenVersion, p.kind)
	b = append(b, q.hash[:]...)
	b = binary.AppendUvarint(b, uint64(p.returned))
	b = append(b, p.after...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (q *Query) decodeToken(tok string) (position, error) {
	bad := func(why string) (position, error) {
		return position{}, &ContinuationError{Msg: "the token is not one this hub issued (" + why + "); start the query again without x-ms-continuation"}
	}
	if len(tok) > maxTokenLength {
		return bad(strconv.Itoa(len(tok)) + " characters is too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return bad("not base64url")
	}
	if len(b) < 11 {
		return bad("too short")
	}
	if b[0] != tokenVersion {
		return bad("unknown version")
	}
	if [8]byte(b[2:10]) != q.hash {
		return position{}, &ContinuationError{Msg: "the token belongs to another query; send the same query text to continue, or start again without x-ms-continuation"}
	}
	p := position{kind: b[1]}
	want := byte(tokenScan)
	if q.agg != nil {
		want = tokenAggregate
	}
	if p.kind != want {
		return bad("wrong kind")
	}
	n, size := binary.Uvarint(b[10:])
	if size <= 0 || n > 1<<62 {
		return bad("bad count")
	}
	p.returned = int64(n)
	p.after = string(b[10+size:])
	if p.kind == tokenScan && p.after == "" {
		return bad("no position")
	}
	return p, nil
}

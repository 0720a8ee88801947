package app

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/events/delivery"
)

// A ledger's answer in pages (clustering_handover.go): one NATS message
// holds at most the server's max_payload (1 MB by default), and a node's
// ledger may list more (a busy subscription's book holds up to 16,384
// unanswered acknowledgements, and a node has one per subscription). A
// request carries, as its body, the cursor of the page it wants (empty:
// the first); an answer is a JSON list of delivery.Unconfirmed and, when
// more follows, the next cursor in its ledgerMoreHeader. The ledger's list
// is in (consumer, stream, sequence) order, so a page is what follows the
// cursor: an entry answered between two pages is not listed (it is stored
// and needs no hand-over), and none is added once the node's engine
// stopped, which is when it answers. A node of an earlier release answers
// with the whole list and no header: it is taken as the last page.

// ledgerCursor is the last entry of a page: the next page starts after it.
type ledgerCursor struct {
	Consumer string `json:"consumer"`
	Stream   string `json:"stream"`
	Seq      uint64 `json:"seq"`
}

// ledgerMoreHeader carries the next page's cursor (JSON).
const ledgerMoreHeader = "Tether-Ledger-More"

// after reports whether the entry (consumer, stream, seq) comes after c.
func (c *ledgerCursor) after(consumer, stream string, seq uint64) bool {
	if c == nil {
		return true
	}
	if consumer != c.Consumer {
		return consumer > c.Consumer
	}
	if stream != c.Stream {
		return stream > c.Stream
	}
	return seq > c.Seq
}

// ledgerPage returns what of list (in ledger order) follows after and fits
// in about budget bytes of JSON, and the cursor of its last entry when
// more follows (nil: the page ends the list). A page holds at least one
// sequence number.
func ledgerPage(list []delivery.Unconfirmed, after *ledgerCursor, budget int) ([]delivery.Unconfirmed, *ledgerCursor) {
	page := []delivery.Unconfirmed{}
	size, n := 2, 0 // the list's brackets; the sequence numbers taken
	for _, u := range list {
		var seqs []uint64
		for _, s := range u.Seqs {
			if !after.after(u.Consumer, u.Stream, s) {
				continue
			}
			add := len(strconv.FormatUint(s, 10)) + 1
			if len(seqs) == 0 {
				// {"consumer":"…","stream":"…","seqs":[…]}, and names
				// escaped at worst 6 bytes per byte.
				add += 40 + 6*(len(u.Consumer)+len(u.Stream))
			}
			if n > 0 && size+add > budget {
				if len(seqs) > 0 {
					page = append(page, delivery.Unconfirmed{Consumer: u.Consumer, Stream: u.Stream, Seqs: seqs})
				}
				last := page[len(page)-1]
				return page, &ledgerCursor{Consumer: last.Consumer, Stream: last.Stream, Seq: last.Seqs[len(last.Seqs)-1]}
			}
			size += add
			n++
			seqs = append(seqs, s)
		}
		if len(seqs) > 0 {
			page = append(page, delivery.Unconfirmed{Consumer: u.Consumer, Stream: u.Stream, Seqs: seqs})
		}
	}
	return page, nil
}

// ledgerBudget is how many bytes of JSON one answer on nc may hold: the
// server's max_payload, less room for the headers.
func ledgerBudget(nc *nats.Conn) int {
	return max(int(nc.MaxPayload())-4096, 1024)
}

// answerLedgerPage answers request m with the page of list it asks for.
func answerLedgerPage(nc *nats.Conn, m *nats.Msg, list []delivery.Unconfirmed) error {
	var after *ledgerCursor
	if len(m.Data) > 0 {
		after = &ledgerCursor{}
		if err := json.Unmarshal(m.Data, after); err != nil {
			return fmt.Errorf("a ledger request's cursor: %w", err)
		}
	}
	page, next := ledgerPage(list, after, ledgerBudget(nc))
	b, err := json.Marshal(page)
	if err != nil {
		return err
	}
	ans := nats.NewMsg(m.Reply)
	ans.Data = b
	if next != nil {
		c, err := json.Marshal(next)
		if err != nil {
			return err
		}
		ans.Header.Set(ledgerMoreHeader, string(c))
	}
	return m.RespondMsg(ans)
}

// nextLedgerPage reads an answer: its list, and the body of the request
// for the next page (nil: it was the last).
func nextLedgerPage(m *nats.Msg) ([]delivery.Unconfirmed, []byte, error) {
	var list []delivery.Unconfirmed
	if err := json.Unmarshal(m.Data, &list); err != nil {
		return nil, nil, err
	}
	if m.Header == nil {
		return list, nil, nil
	}
	if more := m.Header.Get(ledgerMoreHeader); more != "" {
		return list, []byte(more), nil
	}
	return list, nil, nil
}

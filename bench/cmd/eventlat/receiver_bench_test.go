package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/hubclient"
)

// BenchmarkReceiverPost: one connection event per POST on a kept-alive
// connection, as the hub sends them at maxEventsPerBatch 1; the receiver
// eventlat uses against the net/http + encoding/json one it used before
// (hubclient.Receiver, with the same per-event bookkeeping). The figure
// includes the client's side and the loopback socket (same in both).
func BenchmarkReceiverPost(b *testing.B) {
	body := batchOf(connEvent(hubclient.DeviceConnected, 7, 1, ""))
	req := []byte(post(body))
	run := func(b *testing.B, url string) {
		c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(url, hookPath), "http://"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				b.Fatal(resp.Status)
			}
		}
	}
	b.Run("hookServer", func(b *testing.B) {
		r, err := startReceiver(10)
		if err != nil {
			b.Fatal(err)
		}
		defer r.close()
		run(b, r.url)
	})
	b.Run("netHTTP", func(b *testing.B) {
		r := &receiver{disc: make([][]arrival, 10), conn: make([][]arrival, 10), lastSeq: make([]string, 10)}
		rx := &hubclient.Receiver{Deliver: func(bt hubclient.Batch) int {
			evs := make([]hookEvent, 0, len(bt.Events))
			for _, e := range bt.Events {
				evs = append(evs, hookEvent{eventType: []byte(e.EventType), eventTime: e.EventTime, deviceID: []byte(e.Data.DeviceID),
					seq: []byte(e.Data.Info.SequenceNumber), reason: []byte(e.Data.Tether.Reason)})
			}
			r.mu.Lock()
			r.deliverLocked(evs, bt.At)
			r.mu.Unlock()
			return http.StatusOK
		}}
		if err := rx.Start(""); err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
		run(b, rx.URL)
	})
}

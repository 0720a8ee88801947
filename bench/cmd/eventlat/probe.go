package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/bench/internal/procstat"
)

// probe is one journal-sync measurement: due time → PubAck latency of an
// embedded JetStream file stream at a paced rate (a message waits while
// 256 are unacknowledged, as behind journal.Publisher's window).
type probe struct {
	sync     bool
	rate     int
	achieved float64
	lat      dist
	cores    float64
}

// probeJournal runs an embedded nats-server in dir (SyncAlways as given)
// with a stream shaped like TETHER_CONN and publishes rate msg/s for d.
func probeJournal(ctx context.Context, dir string, syncAlways bool, rate int, d time.Duration) (probe, error) {
	p := probe{sync: syncAlways, rate: rate}
	srv, err := server.NewServer(&server.Options{
		ServerName: "eventlat-probe", DontListen: true, JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: true, JetStreamMaxMemory: 256 << 20, SyncAlways: syncAlways,
	})
	if err != nil {
		return p, err
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}()
	if !srv.ReadyForConnections(30 * time.Second) {
		return p, fmt.Errorf("probe server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		return p, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return p, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "PROBE_CONN", Subjects: []string{"tether.conn.>"}, Storage: jetstream.FileStorage,
		Duplicates: 10 * time.Minute, MaxAge: 30 * 24 * time.Hour,
	}); err != nil {
		return p, err
	}
	// About the size of a journalled ConnectionEvent.
	body := []byte(`{"id":"lat-0/0000000000000000` + strings.Repeat("0", 48) + `","kind":"disconnected","time":"2026-11-26T00:00:00.0000000Z",` +
		`"hub":"localhost","deviceId":"lat-0","sequenceNumber":"` + strings.Repeat("0", 64) + `","reason":"client",` +
		`"result":{"Type":"","Description":""},"detail":"client sent DISCONNECT","protocol":"MQTT","protocolVersion":4,` +
		`"maskedIpAddress":"127.0.0.XXX","sdkVersion":"tether-eventlat/1.0","authType":"sas","sessionId":"0123456789abcdef0123456789abcdef",` +
		`"connectedAt":"2026-11-26T00:00:00.0000000Z","durationMs":1234,"tokenExpiry":"2026-11-27T00:00:00Z","keepAlive":60}`)
	total := int(float64(rate) * d.Seconds())
	lats := make([]time.Duration, 0, total)
	var mu sync.Mutex
	var wg sync.WaitGroup
	self0, _ := procstat.CPU(os.Getpid())
	start := time.Now()
	for k := 0; k < total && ctx.Err() == nil; {
		due := int(time.Since(start).Seconds()*float64(rate)) + 1
		for ; k < total && k < due; k++ {
			m := &nats.Msg{Subject: fmt.Sprintf("tether.conn.lat-%d.disconnected", k%5000), Data: body, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("probe-%d", k))
			t := start.Add(time.Duration(float64(k) / float64(rate) * float64(time.Second))) // when it was due
			fut, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))          // blocks while 256 are pending
			if err != nil {
				return p, err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-fut.Ok():
					mu.Lock()
					lats = append(lats, time.Since(t))
					mu.Unlock()
				case err := <-fut.Err():
					log.Printf("probe publish: %v", err)
				}
			}()
		}
		time.Sleep(200 * time.Microsecond)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	self1, _ := procstat.CPU(os.Getpid())
	p.achieved = float64(len(lats)) / el
	p.lat = newDist(lats)
	p.cores = float64(self1-self0) * procstat.TickDuration.Seconds() / el
	log.Printf("journal probe SyncAlways=%v %d msg/s: achieved %.0f/s, ack p50 %s p99 %s max %s ms", syncAlways, rate, p.achieved,
		ms(p.lat.p50), ms(p.lat.p99), ms(p.lat.mx))
	return p, ctx.Err()
}

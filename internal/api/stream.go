package api

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// serveFeed serves one Server-Sent Events stream from a live feed (the
// telemetry and event streams). subscribe runs on its own goroutine until
// the client goes; the items it pushes are queued up to buffer, beyond
// which they are counted and reported as "event: dropped" {"dropped":n}
// (a slow reader never slows the feed). Each queued burst is written with
// write and flushed once; a comment line goes out every Heartbeat so
// proxies keep the connection and a gone client is noticed; "event: error"
// {"message"} ends the stream if the feed fails. name ("telemetry",
// "event") names the stream in its opening comment and in errors.
func serveFeed[T any](s *Server, w http.ResponseWriter, r *http.Request, name, device string, buffer int,
	subscribe func(ctx context.Context, push func(T)) error, write func(w http.ResponseWriter, item T) error) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server WriteTimeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, ": %s stream open\n\n", name); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		s.log.Error(name+" stream: response cannot be flushed", "err", err)
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	queue := make(chan T, buffer)
	var dropped atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- subscribe(ctx, func(item T) {
			select {
			case queue <- item:
			default:
				dropped.Add(1)
			}
		})
	}()
	feeding := true
	defer func() {
		cancel()
		if !feeding {
			return
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.log.Warn(name+" stream: the feed did not end after its context", "device", device)
		}
	}()

	// writeBurst writes item and whatever else is queued, so one flush
	// covers a burst.
	writeBurst := func(item T) error {
		for {
			if n := dropped.Swap(0); n > 0 {
				if err := writeEvent(w, "dropped", map[string]int64{"dropped": n}); err != nil {
					return err
				}
			}
			if err := write(w, item); err != nil {
				return err
			}
			select {
			case item = <-queue:
			default:
				return nil
			}
		}
	}

	tick := time.NewTicker(s.d.Heartbeat)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case ferr := <-done:
			feeding = false
			if ferr != nil && ctx.Err() == nil {
				s.log.Error(name+" stream: the feed failed", "device", device, "err", ferr)
				_ = writeEvent(w, "error", map[string]string{"message": "the " + name + " feed failed: " + ferr.Error()})
				_ = rc.Flush()
			}
			return
		case item := <-queue:
			err = writeBurst(item)
		case <-tick.C:
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return // the client went away
		}
	}
}

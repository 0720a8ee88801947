package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/datadir"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/journal"
)

// Local mode (--local) works on the hub's machine, as the hub's user,
// from the data dir alone: no connection string, no URL, no CA. While the
// hub runs it goes through the hub's admin socket (<data-dir>/tether.sock,
// the API without SAS tokens, for the socket's owner only); while it is
// stopped the command opens the data dir itself, holding its lock so the
// hub cannot start meanwhile. It is the way back in when every key is lost.

// socketClient returns an API client on the running hub's admin socket,
// or false when no hub answers there.
func socketClient(dataDir string) (*apiClient, bool) {
	path := filepath.Join(dataDir, datadir.SocketFile)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, false
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	hc := &hubclient.Client{Base: "http://tether.sock", HTTP: &http.Client{Transport: tr}}
	return &apiClient{Client: hc}, true
}

// offlineHub is a stopped hub's data dir opened by a command.
type offlineHub struct {
	dir  string
	lock *datadir.Lock
	j    *journal.Journal
}

// openOffline opens the journal of a stopped hub: the embedded one in
// dataDir (locked for the command's run), or natsURL's.
func openOffline(ctx context.Context, dataDir, natsURL, holder string) (*offlineHub, error) {
	o := &offlineHub{dir: dataDir}
	if natsURL == "" {
		info, fresh, err := datadir.ReadFormat(dataDir)
		if err != nil {
			return nil, err
		}
		if fresh {
			return nil, fmt.Errorf("%s holds no hub data: is --data-dir the hub's? (a hub on an external NATS needs --nats-url)", dataDir)
		}
		lock, err := datadir.Acquire(dataDir, holder)
		var le *datadir.LockedError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%w, and its admin socket %s does not answer: is the hub starting or stopping? try again", err, filepath.Join(dataDir, datadir.SocketFile))
		}
		if err != nil {
			return nil, err
		}
		o.lock = lock
		if info.Format != datadir.Current {
			// The hub would migrate it on start; so does this binary.
			if _, err := datadir.Prepare(dataDir); err != nil {
				o.Close()
				return nil, err
			}
		}
	}
	j, err := journal.Open(ctx, journal.Options{DataDir: dataDir, URL: natsURL})
	if err != nil {
		o.Close()
		return nil, err
	}
	o.j = j
	return o, nil
}

func (o *offlineHub) Close() {
	if o.j != nil {
		o.j.Close()
	}
	_ = o.lock.Release()
}

// localHubName is the hub name a hub last served from dataDir (its
// api-url file), for connection strings; "" if unknown.
func localHubName(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, datadir.APIURLFile))
	if err != nil {
		return ""
	}
	u, err := url.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return ""
	}
	return u.Hostname()
}

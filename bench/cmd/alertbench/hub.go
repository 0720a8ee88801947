package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// benchHub is a hub in this process with its own data dir.
type benchHub struct {
	*app.App
	dir  string
	keys map[string]string
}

func startHub(ctx context.Context, rulesYAML string) (*benchHub, error) {
	dir, err := os.MkdirTemp("", "alertbench-")
	if err != nil {
		return nil, err
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(rulesYAML), 0o600); err != nil {
		return nil, err
	}
	a, err := app.New(app.Config{
		DataDir: filepath.Join(dir, "data"), Dev: true, HubName: "localhost",
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", RulesFile: rules,
	}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.Start(sctx); err != nil {
		return nil, err
	}
	return &benchHub{App: a, dir: dir, keys: map[string]string{}}, nil
}

func (h *benchHub) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = h.Stop(ctx)
	_ = os.RemoveAll(h.dir)
}

// client registers id (once) and returns an MQTT client for it, not connected.
func (h *benchHub) client(ctx context.Context, id string) (pahov3.Client, error) {
	key, ok := h.keys[id]
	if !ok {
		d, err := h.Registry().Create(ctx, registry.Device{DeviceID: id}, "alertbench")
		if err != nil {
			return nil, err
		}
		key = d.Authentication.SymmetricKey.PrimaryKey
		h.keys[id] = key
	}
	tok, err := sas.Sign(sas.DeviceResource("localhost", id), key, "", time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	o := pahov3.NewClientOptions().AddBroker("tcp://" + h.TCPAddr()).SetClientID(id).
		SetUsername("localhost/" + id + "/?api-version=2021-04-12").SetPassword(tok).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(60 * time.Second).SetConnectTimeout(10 * time.Second).SetProtocolVersion(4)
	return pahov3.NewClient(o), nil
}

// connect connects the devices, 32 at a time.
func (h *benchHub) connect(ctx context.Context, ids []string) ([]pahov3.Client, error) {
	clients := make([]pahov3.Client, len(ids))
	for i, id := range ids {
		c, err := h.client(ctx, id)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	sem := make(chan struct{}, 32)
	for i, c := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tok := c.Connect()
			if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("%s: connect: %v", ids[i], tok.Error())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return clients, nil
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

package kvstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/kvstore"
	"github.com/tether-hub/tether/internal/events/storetest"
	"github.com/tether-hub/tether/internal/journal"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) events.SubscriptionStore {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		j, err := journal.Open(ctx, journal.Options{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(j.Close)
		s, err := kvstore.New(ctx, j.JS, kvstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// New may run at every start: it must accept the bucket it made, and the
// subscriptions in it survive.
func TestNewTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s1, err := kvstore.New(ctx, j.JS, kvstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sub := events.Subscription{Name: "keep-me", Destination: events.Destination{Properties: events.DestinationProperties{EndpointURL: "https://x.example"}}}
	if _, err := s1.Create(ctx, sub); err != nil {
		t.Fatal(err)
	}
	s2, err := kvstore.New(ctx, j.JS, kvstore.Options{History: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.Get(ctx, "KEEP-ME"); err != nil {
		t.Fatal(err)
	}
	st, err := j.JS.KeyValue(ctx, kvstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bucket() != "tether_subscriptions" {
		t.Error(st.Bucket())
	}
}

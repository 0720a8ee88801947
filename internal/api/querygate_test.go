package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestQueryGate(t *testing.T) {
	g := newQueryGate(QueryLimits{Running: 2, RunningPerCaller: 1, Queued: 3, QueuedPerCaller: 2, MaxWait: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends c's wait
	relA, err := g.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// a is at its running limit: its next query waits although a slot is free.
	got := make(chan string, 10)
	wait := func(caller string) {
		go func() {
			rel, err := g.acquire(ctx, caller)
			if err != nil {
				got <- caller + " " + err.Error()
				return
			}
			got <- caller
			_ = rel // released by the test through the gate's counts below
		}()
	}
	wait("a")
	waitFor(t, func() bool { return g.queued() == 1 })
	// b runs at once in the free slot.
	relB, err := g.acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	// Queue: a (waiting) + b + c; then the queue is full.
	wait("b")
	waitFor(t, func() bool { return g.queued() == 2 })
	wait("c")
	waitFor(t, func() bool { return g.queued() == 3 })
	if _, err := g.acquire(ctx, "d"); !errors.Is(err, errQueryBusy) {
		t.Fatalf("fourth waiter: %v, want busy", err)
	}
	// b's first query ends: the first waiter that fits is b's (a is still
	// at its limit), not a's although a came first.
	relB()
	if c := <-got; c != "b" {
		t.Fatalf("admitted %q, want b", c)
	}
	relA()
	if c := <-got; c != "a" {
		t.Fatalf("admitted %q, want a", c)
	}
	if g.queued() != 1 {
		t.Fatalf("%d waiting, want c", g.queued())
	}
}

func TestQueryGatePerCallerQueueAndWait(t *testing.T) {
	g := newQueryGate(QueryLimits{Running: 1, RunningPerCaller: 1, Queued: 10, QueuedPerCaller: 1, MaxWait: 50 * time.Millisecond})
	ctx := context.Background()
	rel, err := g.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := g.acquire(ctx, "a"); done <- err }()
	waitFor(t, func() bool { return g.queued() == 1 })
	if _, err := g.acquire(ctx, "a"); !errors.Is(err, errQueryBusy) {
		t.Fatalf("second waiter of a: %v, want busy (per-caller queue)", err)
	}
	if err := <-done; !errors.Is(err, errQueryBusy) {
		t.Fatalf("waiter past MaxWait: %v, want busy", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { _, err := g.acquire(cctx, "b"); done <- err }()
	waitFor(t, func() bool { return g.queued() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v", err)
	}
	rel()
	rel() // twice is harmless
	if g.running != 0 || g.queued() != 0 || len(g.perRun) != 0 || len(g.perWait) != 0 {
		t.Fatalf("gate not empty: %d running, %d waiting, %v %v", g.running, g.queued(), g.perRun, g.perWait)
	}
	if r, err := g.acquire(ctx, "b"); err != nil {
		t.Fatal(err)
	} else {
		r()
	}
}

func (g *queryGate) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiters)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

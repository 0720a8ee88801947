package connlog_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
)

// opsTimeline makes n operations, cycling through the categories, names
// and outcomes, one every 10 ms from start.
func opsTimeline(start time.Time, n int) []journal.Operation {
	kinds := []struct{ category, name, code string }{
		{journal.CategoryD2CTwinOperations, journal.OpGet, ""},
		{journal.CategoryD2CTwinOperations, journal.OpUpdate, ""},
		{journal.CategoryC2DTwinOperations, journal.OpRead, ""},
		{journal.CategoryC2DTwinOperations, journal.OpUpdate, "412001"},
		{journal.CategoryC2DTwinOperations, journal.OpReplace, ""},
		{journal.CategoryTwinQueries, journal.OpQuery, ""},
		{journal.CategoryDirectMethods, journal.OpSend, ""},
		{journal.CategoryDirectMethods, journal.OpSend, "404103"},
		{journal.CategoryDirectMethods, journal.OpSend, "504101"},
	}
	out := make([]journal.Operation, n)
	for i := range out {
		k := kinds[i%len(kinds)]
		op := operation(k.category, k.name)
		op.ID = fmt.Sprintf("op-%04d", i)
		op.Time = start.Add(time.Duration(i) * 10 * time.Millisecond)
		op.DeviceID = fmt.Sprintf("dev-%d", i%5)
		op.RequestSize, op.ResponseSize = int64(i), int64(2*i)
		if k.category == journal.CategoryTwinQueries {
			op.DeviceID, op.Query, op.PageSize = "", "SELECT * FROM devices", 100
		}
		if k.category == journal.CategoryDirectMethods {
			op.MethodName = "m"
		}
		if k.code != "" {
			op.ErrorCode, op.Status = k.code, 400
		}
		out[i] = op
	}
	return out
}

func publishOps(t *testing.T, j *journal.Journal, ops []journal.Operation) {
	t.Helper()
	p := journal.NewPublisher(j.JS, len(ops)+1, testLogger(t))
	for _, op := range ops {
		if err := p.Publish(journal.OperationMsg(op)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Failed() != 0 {
		t.Fatalf("%d operations not journalled", p.Failed())
	}
}

func recordsOf(t *testing.T, ops []journal.Operation, categories ...string) []connlog.Record {
	t.Helper()
	var out []connlog.Record
	for _, op := range ops {
		if len(categories) > 0 && !slices.Contains(categories, op.Category) {
			continue
		}
		r, err := connlog.FromOperation(res, op)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// Operations journalled through the Publisher reach the SQLite log as the
// records FromOperation makes, whether they were in the journal before the
// writer started or came while it ran, each once though one was published
// twice; a message whose payload names another category than its subject
// is dropped.
func TestWriterOperations(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	ops := opsTimeline(time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), 90)
	publishOps(t, j, ops[:40])
	publishOps(t, j, ops[:1]) // a retried publish: the stream keeps one
	// A TwinQueries payload on a DirectMethods subject.
	stray, err := journal.EncodeOperation(ops[5])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.JS.Publish(context.Background(), journal.OpsSubject(journal.CategoryDirectMethods, "dev-0"), stray); err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, j, store, nil)
	publishOps(t, j, ops[40:])

	want := recordsOf(t, ops)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := findAll(t, store, connlog.Filter{Limit: 1000})
		return len(got) == len(want), fmt.Sprintf("%d records stored, want %d", len(got), len(want))
	})
	got := findAll(t, store, connlog.Filter{Limit: 1000})
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	eventually(t, 5*time.Second, lagIsZero(t, w))
	if w.Processed() != uint64(len(ops)) || w.Skipped() != 1 {
		t.Errorf("Processed %d, Skipped %d; want %d and 1", w.Processed(), w.Skipped(), len(ops))
	}
	for _, c := range journal.OperationCategories {
		if n := len(findAll(t, store, connlog.Filter{Category: c, Limit: 1000})); n != len(recordsOf(t, ops, c)) {
			t.Errorf("%s: %d records, want %d", c, n, len(recordsOf(t, ops, c)))
		}
	}
	failed := findAll(t, store, connlog.Filter{Category: connlog.CategoryDirectMethods, Level: connlog.LevelError, Limit: 1000})
	if len(failed) != 20 || failed[0].ResultDescription == "" {
		t.Errorf("%d failed direct methods, want 20 with their error names: %+v", len(failed), failed[:min(1, len(failed))])
	}
}

// A Writer limited to some operation categories reads those alone, on one
// consumer of TETHER_OPS filtering their subjects (one Raft group per
// stream in a cluster, not one per category); the connection consumer
// keeps the plain durable name; DeleteConsumers takes exactly the
// categories it is given out of the filter, and deletes the consumer
// when none is left.
func TestWriterOperationCategories(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	ops := opsTimeline(time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), 45)
	publishOps(t, j, ops)
	cats := []string{connlog.CategoryConnections, connlog.CategoryDirectMethods, connlog.CategoryTwinQueries}
	w := startWriter(t, j, store, func(o *connlog.WriterOptions) { o.Durable, o.Categories = "cold", cats })
	want := recordsOf(t, ops, cats...)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := findAll(t, store, connlog.Filter{Limit: 1000})
		return len(got) == len(want), fmt.Sprintf("%d records stored, want %d", len(got), len(want))
	})
	eventually(t, 5*time.Second, lagIsZero(t, w))
	ctx := context.Background()
	names := func(stream string) []string {
		st, err := j.JS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for n := range st.ListConsumers(ctx).Info() {
			fs := slices.Clone(n.Config.FilterSubjects)
			slices.Sort(fs)
			out = append(out, n.Name+"@"+n.Config.FilterSubject+strings.Join(fs, "+"))
		}
		slices.Sort(out)
		return out
	}
	if got, want := names(journal.StreamOps), []string{"cold-ops@tether.ops.DirectMethods.*+tether.ops.TwinQueries.*"}; !slices.Equal(got, want) {
		t.Errorf("TETHER_OPS consumers %v, want %v", got, want)
	}
	if got := names(journal.StreamConn); !slices.Equal(got, []string{"cold@"}) {
		t.Errorf("TETHER_CONN consumers %v, want [cold@]", got)
	}
	stop, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Stop(stop); err != nil {
		t.Fatal(err)
	}
	if err := connlog.DeleteConsumers(ctx, j.JS, "cold", connlog.CategoryDirectMethods); err != nil {
		t.Fatal(err)
	}
	if got := names(journal.StreamOps); !slices.Equal(got, []string{"cold-ops@tether.ops.TwinQueries.*"}) {
		t.Errorf("after deleting DirectMethods: %v", got)
	}
	if _, err := j.JS.Consumer(ctx, journal.StreamConn, "cold"); err != nil {
		t.Errorf("the Connections consumer went too: %v", err)
	}
	if err := connlog.DeleteConsumers(ctx, j.JS, "cold"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{journal.StreamOps, journal.StreamConn} {
		if got := names(s); len(got) != 0 {
			t.Errorf("%s still has %v", s, got)
		}
	}
	if _, err := j.JS.Consumer(ctx, journal.StreamConn, "cold"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer after DeleteConsumers: %v", err)
	}
}

// A hub of an earlier version left one consumer per operation category,
// each at its own position: the Writer replaces them with one, starting
// after the lowest ack floor, and stores every record once — what the
// slowest had not stored yet included, nothing the store held twice.
func TestWriterMergesPerCategoryConsumers(t *testing.T) {
	j := openJournal(t)
	store := openStore(t)
	ctx := context.Background()
	ops := opsTimeline(time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond), 45)
	half := len(ops) / 2
	publishOps(t, j, ops[:half])
	// The old layout: connlog-<category>, filtering its subjects, acking
	// all. DirectMethods stored and acked the first half, TwinQueries
	// nothing (its floor is 0).
	for _, c := range []string{connlog.CategoryDirectMethods, connlog.CategoryTwinQueries} {
		if _, err := j.JS.CreateConsumer(ctx, journal.StreamOps, jetstream.ConsumerConfig{
			Durable: "connlog-" + c, FilterSubject: journal.OpsFilter(c), AckPolicy: jetstream.AckAllPolicy,
		}); err != nil {
			t.Fatal(err)
		}
	}
	dm, err := j.JS.Consumer(ctx, journal.StreamOps, "connlog-"+connlog.CategoryDirectMethods)
	if err != nil {
		t.Fatal(err)
	}
	var dmOld []journal.Operation
	for _, op := range ops[:half] {
		if op.Category == connlog.CategoryDirectMethods {
			dmOld = append(dmOld, op)
		}
	}
	if len(dmOld) == 0 {
		t.Fatal("the timeline's first half has no direct method")
	}
	b, err := dm.Fetch(len(dmOld), jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var last jetstream.Msg
	n := 0
	for m := range b.Messages() {
		last = m
		n++
	}
	if n != len(dmOld) || last.DoubleAck(ctx) != nil {
		t.Fatalf("fetched %d direct methods of %d, or the ack failed", n, len(dmOld))
	}
	// What the old writer had stored of them.
	old := recordsOf(t, dmOld, connlog.CategoryDirectMethods)
	if err := store.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	publishOps(t, j, ops[half:])
	cats := []string{connlog.CategoryDirectMethods, connlog.CategoryTwinQueries}
	w := startWriter(t, j, store, func(o *connlog.WriterOptions) { o.Categories = cats })
	want := recordsOf(t, ops, cats...)
	eventually(t, 10*time.Second, func() (bool, string) {
		got := findAll(t, store, connlog.Filter{Limit: 1000})
		return len(got) == len(want), fmt.Sprintf("%d records stored, want %d", len(got), len(want))
	})
	eventually(t, 5*time.Second, lagIsZero(t, w))
	st, err := j.JS.Stream(ctx, journal.StreamOps)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for n := range st.ListConsumers(ctx).Info() {
		left = append(left, n.Name)
	}
	if !slices.Equal(left, []string{"connlog-ops"}) {
		t.Errorf("TETHER_OPS consumers after the merge: %v, want [connlog-ops]", left)
	}
	ids := map[string]int{}
	for _, r := range findAll(t, store, connlog.Filter{Limit: 1000}) {
		ids[r.ItemID]++
	}
	for _, r := range want {
		if ids[r.ItemID] != 1 {
			t.Errorf("record %s stored %d times", r.ItemID, ids[r.ItemID])
		}
	}
}

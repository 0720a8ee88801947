package journal

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func sampleOperations(at time.Time) []Operation {
	return []Operation{
		{ID: NewOperationID(), Time: at, Hub: "myhub.azure-devices.net", Category: CategoryD2CTwinOperations,
			OperationName: OpGet, DeviceID: "thermo.1", Status: 200, DurationMs: 3, Protocol: "MQTT",
			SDKVersion: "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)", MaskedIP: "10.0.0.XXX", AuthType: "sas",
			ResponseSize: 412},
		{ID: NewOperationID(), Time: at.Add(time.Millisecond), Hub: "myhub.azure-devices.net", Category: CategoryC2DTwinOperations,
			OperationName: OpReplace, DeviceID: "thermo-2", Status: 412, ErrorCode: "412001", ErrorDescription: "PreconditionFailed",
			ErrorMessage: "the twin's etag is AAAAAAAAAAI=", DurationMs: 1, SDKVersion: "2021-04-12", Caller: "iothubowner", RequestSize: 98},
		{ID: NewOperationID(), Time: at.Add(2 * time.Millisecond), Hub: "myhub.azure-devices.net", Category: CategoryTwinQueries,
			OperationName: OpQuery, Status: 200, DurationMs: 7, SDKVersion: "2021-04-12", Caller: "service",
			Query: "SELECT * FROM devices WHERE tags.floor = '3'", PageSize: 100, Continuation: true, ResultCount: 2,
			RequestSize: 60, ResponseSize: 2048},
		{ID: NewOperationID(), Time: at.Add(3 * time.Millisecond), Hub: "myhub.azure-devices.net", Category: CategoryDirectMethods,
			OperationName: OpSend, DeviceID: "thermo 3", Status: 404, ErrorCode: "404103", ErrorDescription: "DeviceNotOnline",
			DurationMs: 30000, SDKVersion: "2021-04-12", Caller: "service", MethodName: "reboot", RequestSize: 2},
	}
}

// Operations published through the Publisher are stored on their
// category's subject in TETHER_OPS and decode to what was published; a
// retried publish (same id) is stored once; an invalid operation is not
// published and its Done gets the reason.
func TestOperationJournalRoundTrip(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	p := NewPublisher(j.JS, 16, slog.New(slog.DiscardHandler))
	ops := sampleOperations(time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600)))
	for _, op := range append(ops, ops[1]) {
		if err := p.Publish(OperationMsg(op)); err != nil {
			t.Fatal(err)
		}
	}
	refused := make(chan error, 1)
	bad := OperationMsg(Operation{ID: "x", Time: time.Now(), Category: CategoryDirectMethods, OperationName: "invoke", DeviceID: "d"})
	bad.Done = func(err error) { refused <- err }
	if err := p.Publish(bad); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-refused; !errors.Is(err, ErrInvalidOperation) || !strings.Contains(err.Error(), `"invoke"`) {
		t.Errorf("invalid operation: Done(%v), want ErrInvalidOperation naming the operation name", err)
	}

	st, err := j.JS.Stream(ctx, StreamOps)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []Operation
	var subjects []string
	for m := range batch.Messages() {
		op, err := DecodeOperation(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		if m.Headers().Get(jetstream.MsgIDHeader) != op.ID {
			t.Errorf("Nats-Msg-Id %q, want the operation id %s", m.Headers().Get(jetstream.MsgIDHeader), op.ID)
		}
		got = append(got, op)
		subjects = append(subjects, m.Subject())
	}
	if len(got) != len(ops) {
		t.Fatalf("stored %d operations, want %d (the retried one once)", len(got), len(ops))
	}
	wantSubjects := []string{"tether.ops.D2CTwinOperations.thermo%2E1", "tether.ops.C2DTwinOperations.thermo-2",
		"tether.ops.TwinQueries.%", "tether.ops.DirectMethods.thermo%203"}
	for i, op := range ops {
		op.Time = op.Time.UTC()
		if !reflect.DeepEqual(got[i], op) {
			t.Errorf("operation %d:\n got %+v\nwant %+v", i, got[i], op)
		}
		if subjects[i] != wantSubjects[i] {
			t.Errorf("subject %q, want %q", subjects[i], wantSubjects[i])
		}
	}
}

func TestOperationValidate(t *testing.T) {
	ok := sampleOperations(time.Now())[0]
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid operation: %v", err)
	}
	cases := map[string]func(*Operation){
		"no id":               func(o *Operation) { o.ID = "" },
		"no time":             func(o *Operation) { o.Time = time.Time{} },
		"unknown category":    func(o *Operation) { o.Category = "C2DCommands" },
		"name of other cat":   func(o *Operation) { o.OperationName = OpRead },
		"no device":           func(o *Operation) { o.DeviceID = "" },
		"short code":          func(o *Operation) { o.ErrorCode = "404" },
		"named code":          func(o *Operation) { o.ErrorCode = "DeviceNotFound" },
		"description no code": func(o *Operation) { o.ErrorDescription = "DeviceNotFound" },
		"negative size":       func(o *Operation) { o.ResponseSize = -1 },
		"negative duration":   func(o *Operation) { o.DurationMs = -5 },
	}
	for name, edit := range cases {
		op := ok
		edit(&op)
		err := op.Validate()
		if !errors.Is(err, ErrInvalidOperation) {
			t.Errorf("%s: Validate = %v, want ErrInvalidOperation", name, err)
		}
		if _, err := EncodeOperation(op); err == nil {
			t.Errorf("%s: EncodeOperation succeeded", name)
		}
	}
	// Every problem is reported at once.
	err := Operation{Category: "nope"}.Validate()
	for _, want := range []string{"no id", "no time", `category "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of an empty operation: %v; want it to say %q", err, want)
		}
	}
	q := sampleOperations(time.Now())[2]
	if err := q.Validate(); err != nil || q.DeviceID != "" {
		t.Errorf("a twin query needs no device: %v", err)
	}
}

func TestDecodeOperationRejects(t *testing.T) {
	for _, in := range []string{``, `null`, `[]`, `{"id":"a"}`, `{"id":"a","time":"2026-01-01T00:00:00Z"}`,
		`{"time":"2026-01-01T00:00:00Z","category":"DirectMethods"}`, `{"id":"a","time":"yesterday","category":"x"}`,
		`{"id":"a","time":"2026-01-01T00:00:00Z","category":"DirectMethods","status":"200"}`} {
		if _, err := DecodeOperation([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeOperation(%s) = %v, want ErrMalformed", in, err)
		}
	}
	// A category or key of a later version passes through.
	op, err := DecodeOperation([]byte(`{"id":"a","time":"2026-01-01T00:00:00Z","category":"C2DCommands","operationName":"send","later":1}`))
	if err != nil || op.Category != "C2DCommands" {
		t.Errorf("later category: %+v, %v", op, err)
	}
}

// Operations as this version stored them (testdata, one JSON object per
// line, written by EncodeOperation) still decode: the form only gains
// optional keys.
func TestDecodeStoredOperations(t *testing.T) {
	f, err := os.Open("testdata/operations-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		op, err := DecodeOperation(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if err := op.Validate(); err != nil {
			t.Errorf("line %d: %v", n+1, err)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d stored operations, want 4", n)
	}
}

func FuzzDecodeOperation(f *testing.F) {
	for _, op := range sampleOperations(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
		b, err := EncodeOperation(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a","time":"2026-01-01T00:00:00Z","category":"TwinQueries","query":"\u0000é"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := DecodeOperation(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if op.Validate() != nil {
			return
		}
		// What decodes and validates encodes and decodes to itself.
		b, err := EncodeOperation(op)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeOperation(b)
		if err != nil {
			t.Fatal(err)
		}
		op.Time = op.Time.UTC()
		if !reflect.DeepEqual(back, op) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, op)
		}
	})
}

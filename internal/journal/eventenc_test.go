package journal

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/jsonenc/jsonenctest"
	"github.com/tether-hub/tether/internal/presence"
)

func marshalBoth(t testing.TB, e presence.ConnectionEvent) (got, want []byte) {
	t.Helper()
	want, werr := json.Marshal(e)
	got, gerr := EncodeConnectionEvent(e)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("encoding/json error %v, EncodeConnectionEvent error %v", werr, gerr)
	}
	return got, want
}

// TestAppendConnectionEventMatchesMarshal: the hand-written encoder writes
// exactly what json.Marshal writes, so stored events do not change form.
func TestAppendConnectionEventMatchesMarshal(t *testing.T) {
	full := fullEvent()
	paris := time.FixedZone("CET", 3600)
	odd := full
	odd.ID, odd.Detail, odd.SDKVersion = "a\"b\\c", "<script>&\u2028\u2029\x01\n\t é \xff", "naïve/1.0 (日本)"
	odd.Time, odd.ConnectedAt, odd.TokenExpiry = full.Time.In(paris), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), full.Time.Truncate(time.Second)
	neg := fullEvent()
	neg.DurationMs, neg.IdleMs, neg.Count = -5, 42, 7
	for _, e := range []presence.ConnectionEvent{
		full, {}, {Kind: presence.Connected}, odd, neg,
		{ID: "r", Kind: presence.Refused, Time: full.Time, Reason: presence.ReasonAuthFailed,
			AuthFailure: presence.AuthTokenExpired, Result: presence.ResultUnauthorized, Count: 12},
	} {
		got, want := marshalBoth(t, e)
		if !bytes.Equal(got, want) {
			t.Errorf("encoder and encoding/json differ:\n got %s\nwant %s", got, want)
		}
	}
	// Years encoding/json refuses are refused too.
	bad := full
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := EncodeConnectionEvent(bad); err == nil {
		t.Error("year 10000 was encoded; encoding/json refuses it")
	}
}

// TestEncoderCoversFields sets every field of ConnectionEvent to a
// non-zero value and compares: a field added to the struct and not to the
// encoder fails here.
func TestEncoderCoversFields(t *testing.T) {
	var e presence.ConnectionEvent
	if err := jsonenctest.Fill(&e); err != nil {
		t.Fatal(err)
	}
	got, want := marshalBoth(t, e)
	if !bytes.Equal(got, want) {
		t.Errorf("encoder and encoding/json differ:\n got %s\nwant %s", got, want)
	}
}

func FuzzAppendConnectionEvent(f *testing.F) {
	f.Add("thermo-1/00A5", "thermo-1", "token expired at 2025-06-01T12:00:00Z", int64(3_600_000), int64(1748779200123456789), true)
	f.Add("", "", "", int64(0), int64(0), false)
	f.Add("a\"b", "<&>", "\xff\u2028\x00", int64(-1), int64(-62135596800000000), true)
	f.Fuzz(func(t *testing.T, id, dev, detail string, dur, nanos int64, flag bool) {
		e := fullEvent()
		e.ID, e.DeviceID, e.Detail, e.DurationMs, e.CleanSession, e.TokenRenewal = id, dev, detail, dur, flag, !flag
		e.Time = time.Unix(0, nanos).UTC()
		got, want := marshalBoth(t, e)
		if !bytes.Equal(got, want) {
			t.Errorf("encoder and encoding/json differ:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncodeConnection(b *testing.B) {
	e := fullEvent()
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeConnectionEvent(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

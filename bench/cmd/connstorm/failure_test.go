package main

import (
	"errors"
	"testing"

	"github.com/tether-hub/tether/internal/mqttclient"
)

func TestFailureKind(t *testing.T) {
	refused := &mqttclient.DialError{Phase: mqttclient.PhaseConnack, Err: mqttclient.ConnackError(5)}
	if got := failureKind(refused); got != "connack rc=5" {
		t.Fatalf("failureKind(refused) = %q", got)
	}
	if got := failureKind(&mqttclient.DialError{Phase: "tls", Err: errors.New("x: EOF")}); got != "tls: EOF" {
		t.Fatalf("failureKind = %q", got)
	}
}

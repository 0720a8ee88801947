package connlog

import (
	"encoding/json"

	"github.com/tether-hub/tether/internal/journal"
)

// AdministrativeProperties is properties_s of an Administrative record
// (Tether's category: a change to a diagnostic setting, an event
// subscription or the alert rules). There is no Azure sample to follow:
// the keys say who changed what, and how.
//
//	target           the setting's or subscription's name, the rules file
//	caller           the shared access policy of the request ("SIGHUP" for
//	                 a reload by signal)
//	maskedIpAddress  the requester's address, masked as IoT Hub masks
//	                 devices' (empty for a signal)
//	status           the HTTP status the requester got
//	statusCode       null on success, else the class of ResultType ("401")
//	before, after    the definition before and after (null: it did not
//	                 exist / no longer exists; a large one is a note of its
//	                 size and digest, journal.Definition)
//	errorMessage     on failure, what the requester was told
//
// A refused change (401, 400) is recorded too, with after the definition
// asked for, so the log shows attempts as well as changes.
type AdministrativeProperties struct {
	Target       string          `json:"target"`
	Caller       string          `json:"caller"`
	MaskedIP     string          `json:"maskedIpAddress"`
	Status       int             `json:"status"`
	StatusCode   *string         `json:"statusCode"`
	Before       json.RawMessage `json:"before"`
	After        json.RawMessage `json:"after"`
	ErrorMessage string          `json:"errorMessage,omitempty"`
}

// administrativeRecord fills rec (FromOperation's common columns) for an
// Administrative operation. These records are rare, so encoding/json
// writes them.
func administrativeRecord(rec *Record, op journal.Operation, status *string, errMsg string) error {
	null := json.RawMessage("null")
	p := AdministrativeProperties{Target: op.Target, Caller: op.Caller, MaskedIP: op.MaskedIP, Status: op.Status,
		StatusCode: status, Before: op.Before, After: op.After, ErrorMessage: errMsg}
	if len(p.Before) == 0 {
		p.Before = null
	}
	if len(p.After) == 0 {
		p.After = null
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	rec.Properties = string(b)
	rec.CallerIPAddress = op.MaskedIP
	rec.DeviceID, rec.SDKVersion = "", ""
	return nil
}

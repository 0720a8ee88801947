package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// ConfigRights are what a change to what the hub records or where it
// sends data needs: creating, replacing or deleting a diagnostic setting
// or an event subscription, reloading the alert rules and action groups.
// They are the owner's rights (registry.AllRights, as for managing
// policies and taking backups; iothubowner has them). Such changes
// decide whether the audit trail exists and where device data goes, so a
// key made for a back end (service: ServiceConnect) or for registry
// tooling (registryReadWrite) may not make them; in Azure they are
// management-plane operations no SAS policy can do at all. Reading the
// settings keeps its right (ServiceConnect).
const ConfigRights = registry.AllRights

// adminChange is one configuration change being served: it checks the
// caller's rights and journals the attempt as an Administrative operation
// record — who (policy, masked address), what (operation, target), the
// definition before and after, and the outcome — whether it succeeded,
// failed or was refused for lack of rights.
type adminChange struct {
	s      *Server
	r      *http.Request
	w      *statusRecorder
	start  time.Time
	op     journal.Operation
	before json.RawMessage
	// read returns a target's definition (nil when it does not exist),
	// for Before and, once the handler ran, After.
	read func(name string) any
}

// beginChange authorizes a configuration change of target (named by the
// path, or for a POST by the body's "name") with ConfigRights and returns
// the writer the handler must use, or ok false when it answered (401 for
// a bad token or missing rights; the latter is journalled). current
// reads the target's definition, for Before and After; end journals.
func (s *Server) beginChange(w http.ResponseWriter, r *http.Request, opName, target string, maxBody int64, current func(name string) any) (*adminChange, http.ResponseWriter, bool) {
	// Authenticate first (no right needed yet): a valid key without the
	// owner's rights is refused below, with why, and recorded.
	policy, ok := s.authorize(w, r, 0, s.v1Error)
	if !ok {
		return nil, nil, false
	}
	if target == "" {
		target = bodyName(r, maxBody)
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	c := &adminChange{s: s, r: r, w: rec, start: time.Now(), op: journal.Operation{
		Category: journal.CategoryAdministrative, OperationName: opName, Target: target, Caller: policy,
		MaskedIP: maskAddr(r.RemoteAddr), SDKVersion: r.URL.Query().Get("api-version"),
	}}
	c.read = current
	if target == "" {
		c.op.Target = unnamed
		c.before = journal.Definition(nil)
	} else {
		c.before = journal.Definition(current(target))
	}
	p, _ := s.d.Registry.Policy(policy)
	if missing := ConfigRights &^ p.Rights; missing != 0 {
		s.v1Error(rec, r, http.StatusUnauthorized, registry.CodeUnauthorized,
			fmt.Sprintf("policy '%s' may not change what the hub records or where it sends data: diagnostic settings, event subscriptions and alert rules need a policy with the owner's rights (%s), like iothubowner; '%s' lacks %s",
				policy, ConfigRights, policy, missing))
		c.end()
		return nil, nil, false
	}
	return c, rec, true
}

// end journals the change with what the handler answered.
func (c *adminChange) end() {
	if c.s.d.Operations == nil {
		return
	}
	if c.op.Target == unnamed {
		// A create by POST without a name in the body: named once stored.
		if loc := c.w.Header().Get("Location"); loc != "" {
			if name, err := url.PathUnescape(loc[strings.LastIndexByte(loc, '/')+1:]); err == nil {
				c.op.Target = name
			}
		}
	}
	op := c.op
	op.Status = c.w.status
	op.DurationMs = time.Since(c.start).Milliseconds()
	op.Before = c.before
	op.After = journal.Definition(nil)
	if op.Target != unnamed {
		op.After = journal.Definition(c.read(op.Target))
	}
	if op.Status >= 400 {
		op.ErrorCode = errorNumber(nil, op.Status)
		op.ErrorMessage = c.w.errorMessage()
	}
	_ = c.s.d.Operations.RecordOperation(op)
}

// unnamed is the target of a create whose body names nothing.
const unnamed = "(unnamed)"

// bodyName peeks at the "name" of a JSON body (for a create by POST),
// leaving the body for the handler (which enforces its size limit).
func bodyName(r *http.Request, max int64) string {
	if r.Body == nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if err != nil {
		return ""
	}
	var v struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Name
}

// statusRecorder remembers the status and the start of an error body.
type statusRecorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status >= 400 && len(w.body) < 2048 {
		w.body = append(w.body, b[:min(len(b), 2048-len(w.body))]...)
	}
	return w.ResponseWriter.Write(b)
}

// errorMessage is the message of the v1 error body written, else its
// start.
func (w *statusRecorder) errorMessage() string {
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if json.Unmarshal(w.body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return string(w.body)
}

// maskAddr masks a remote address as IoT Hub masks device addresses in
// its logs: the last IPv4 octet "XXX", the last four IPv6 groups "XXXX".
func maskAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		b := ip.As4()
		return fmt.Sprintf("%d.%d.%d.XXX", b[0], b[1], b[2])
	}
	b := ip.As16()
	return fmt.Sprintf("%x:%x:%x:%x:XXXX:XXXX:XXXX:XXXX", uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3]),
		uint16(b[4])<<8|uint16(b[5]), uint16(b[6])<<8|uint16(b[7]))
}

package probe

import (
	"time"
)

// Status is a step's verdict.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn" // works, but something deserves attention
	Fail Status = "fail"
	Skip Status = "skip" // not run: a step it needs did not pass, or not asked for
)

// Step numbers (the exit status of a failed run is ExitFailedBase + the
// number of the first failed step).
const (
	StepDNS = 1 + iota
	StepTCP
	StepTLS
	StepClock
	StepMQTT
	StepWebSocket
	StepKeepAlive
)

// Exit statuses of `tether probe`.
const (
	ExitPass       = 0  // every step passed (warnings allowed)
	ExitFailedBase = 10 // + number of the first failed step: 11 dns … 17 keepalive
)

var stepNames = map[int]string{
	StepDNS: "dns", StepTCP: "tcp", StepTLS: "tls", StepClock: "clock",
	StepMQTT: "mqtt", StepWebSocket: "websocket", StepKeepAlive: "keepalive",
}

// Step is one check: what was found (Summary), what to do about it
// (Hint), and the step's own measurements in exactly one of the typed
// fields.
type Step struct {
	Number  int      `json:"step"`
	Name    string   `json:"name"`
	Target  string   `json:"target,omitempty"`
	Status  Status   `json:"status"`
	Summary string   `json:"summary"`
	Hint    string   `json:"hint,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	// Millis is how long the step took, in milliseconds.
	Millis float64 `json:"ms"`

	DNS       *DNSResult       `json:"dns,omitempty"`
	TCP       *TCPResult       `json:"tcp,omitempty"`
	TLS       *TLSResult       `json:"tls,omitempty"`
	Clock     *ClockResult     `json:"clock,omitempty"`
	MQTT      *MQTTResult      `json:"mqtt,omitempty"`
	KeepAlive *KeepAliveResult `json:"keepalive,omitempty"`
}

// Ref names a step.
type Ref struct {
	Number int    `json:"step"`
	Name   string `json:"name"`
	Target string `json:"target,omitempty"`
}

func (s Step) ref() Ref { return Ref{s.Number, s.Name, s.Target} }

// String is "step 2 (tcp localhost:8883)".
func (r Ref) String() string {
	s := "step " + itoa(r.Number) + " (" + r.Name
	if r.Target != "" {
		s += " " + r.Target
	}
	return s + ")"
}

// Report is the whole run.
type Report struct {
	ClientType string `json:"clientType"`
	HostName   string `json:"hostName"`
	DeviceID   string `json:"deviceId"`
	ModuleID   string `json:"moduleId,omitempty"`
	// DialHost is where the probe connects (GatewayHostName or HostName).
	DialHost  string `json:"dialHost"`
	MQTTPort  int    `json:"mqttPort"`
	HTTPSPort int    `json:"httpsPort"`
	Proxy     string `json:"proxy,omitempty"` // password redacted
	// Trust is "system" or where the CA came from (--ca FILE).
	Trust string `json:"trust"`
	// Started is when the run began, by the device's clock.
	Started time.Time `json:"started"`
	Steps   []Step    `json:"steps"`
	// Status is fail if any step failed, else warn if any warned, else
	// pass.
	Status Status `json:"status"`
	// Failed lists the failed steps in order; the first sets ExitStatus.
	Failed     []Ref  `json:"failed,omitempty"`
	Conclusion string `json:"conclusion"`
	ExitStatus int    `json:"exitStatus"`
	// Interrupted is set when the run was cancelled before its end.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Step returns the first step with this number and target ("" matches
// any target), or nil.
func (r *Report) Step(number int, target string) *Step {
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Number == number && (target == "" || s.Target == target) {
			return s
		}
	}
	return nil
}

// finish sets Status, Failed and ExitStatus from the steps.
func (r *Report) finish() {
	r.Status = Pass
	r.Failed = nil
	for _, s := range r.Steps {
		switch s.Status {
		case Fail:
			r.Status = Fail
			r.Failed = append(r.Failed, s.ref())
		case Warn:
			if r.Status == Pass {
				r.Status = Warn
			}
		}
	}
	r.ExitStatus = ExitPass
	if len(r.Failed) > 0 {
		r.ExitStatus = ExitFailedBase + r.Failed[0].Number
	}
	r.Conclusion = conclude(r)
}

func ms(d time.Duration) float64 {
	return float64(d.Round(10*time.Microsecond)) / float64(time.Millisecond)
}

package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ClockResult is what step 4 found.
type ClockResult struct {
	// Local is this machine's clock at the middle of the request; Hub is
	// the hub's time estimated for the same instant.
	Local time.Time `json:"local"`
	Hub   time.Time `json:"hub,omitzero"`
	// SkewSeconds is local − hub: positive when this clock is ahead.
	SkewSeconds float64 `json:"skewSeconds"`
	// UncertaintySeconds bounds the estimate: half the round trip plus
	// the Date header's one-second resolution.
	UncertaintySeconds float64 `json:"uncertaintySeconds"`
	// Source: "https-date" (the hub's Date header) or "certificate" (only
	// the certificates' validity windows were available).
	Source string `json:"source"`
	// CertificateCheck: whether this clock lies inside the validity window
	// of the certificates step 3 saw: "consistent", "before-not-before",
	// "after-not-after", or "" when there was none.
	CertificateCheck string `json:"certificateCheck,omitempty"`
}

// Clock thresholds: the seed's note (devices more than five minutes off
// start being refused), and a smaller drift worth fixing before it grows.
const (
	skewFail = 5 * time.Minute
	skewWarn = 30 * time.Second
)

// clockStep reads the hub's Date header over HTTPS. It needs only TCP to
// the HTTPS port: a certificate that does not verify is often the clock's
// fault, and the Date header says so.
func (r *run) clockStep(ctx context.Context) Step {
	s := r.newStep(StepClock, r.httpsTarget())
	res := &ClockResult{Source: "https-date"}
	s.Clock = res
	r.clock = res
	res.CertificateCheck = r.certificateCheck(r.t.now())
	if !r.passed[key(StepTCP, r.httpsTarget())] {
		return r.clockFromCertificates(s)
	}
	conf := r.tlsConfig()
	conf.InsecureSkipVerify = true // only the time is read; step 3 judged the certificate
	tr := &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return r.dial(ctx, r.t.httpsPort) },
		TLSClientConfig:   conf,
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, r.t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "https://"+r.httpsTarget()+"/", nil)
	if err != nil {
		s.Status, s.Summary = Fail, errText(err)
		return s
	}
	// The request is measured from its start: connecting and the
	// handshake are part of the round trip the Date header could come from.
	t0, m0 := r.t.now(), time.Now()
	resp, err := tr.RoundTrip(req)
	t1 := r.t.now()
	rtt := time.Since(m0)
	if err != nil {
		s.Notes = append(s.Notes, "HTTPS request failed: "+errText(err))
		return r.clockFromCertificates(s)
	}
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		s.Notes = append(s.Notes, "the hub's answer has no usable Date header")
		return r.clockFromCertificates(s)
	}
	local := t0.Add(t1.Sub(t0) / 2)
	hub := date.Add(500 * time.Millisecond) // Date truncates to the second
	unc := rtt/2 + 500*time.Millisecond
	skew := local.Sub(hub)
	res.Local, res.Hub = local.UTC(), hub.UTC()
	res.SkewSeconds = skew.Seconds()
	res.UncertaintySeconds = unc.Seconds()
	s.Summary = fmt.Sprintf("this clock is %s (± %s)", skewWords(skew), unc.Round(time.Millisecond))
	sure := absDur(skew) - unc
	switch {
	case sure >= skewFail:
		s.Status = Fail
		s.Hint = fmt.Sprintf("SAS tokens carry an expiry computed from this clock: %s off, the hub finds them expired (or lasting longer than meant) and refuses the device (401003), which can start weeks after the clock began to drift; sync the clock (NTP: timedatectl set-ntp true, chrony) before the device connects", absDur(skew).Round(time.Second))
	case sure >= skewWarn:
		s.Status = Warn
		s.Hint = "the clock drifts: sync it with NTP before the drift reaches minutes and SAS tokens are refused"
	default:
		s.Status = Pass
	}
	if res.CertificateCheck != "" && res.CertificateCheck != "consistent" {
		s.Notes = append(s.Notes, "by this clock the hub's certificate is "+certWindowWords(res.CertificateCheck))
	}
	return s
}

// clockFromCertificates is the fallback without an HTTPS answer: the
// certificates' validity windows bound the clock only coarsely.
func (r *run) clockFromCertificates(s Step) Step {
	res := s.Clock
	res.Source = "certificate"
	res.Local = r.t.now().UTC()
	switch res.CertificateCheck {
	case "before-not-before", "after-not-after":
		s.Status = Fail
		s.Summary = "no Date from the hub, and by this clock the hub's certificate is " + certWindowWords(res.CertificateCheck)
		s.Hint = "the clock is far off: sync it (NTP) before anything else"
	default:
		s.Status = Skip
		s.Summary = fmt.Sprintf("no HTTPS answer from %s to read the hub's time from", r.httpsTarget())
		if res.CertificateCheck == "consistent" {
			s.Summary += "; the clock is at least inside the certificate's validity"
		}
	}
	return s
}

// certificateCheck places now within the leaf certificates step 3 saw.
func (r *run) certificateCheck(now time.Time) string {
	check := ""
	for _, res := range r.tls {
		if len(res.Chain) == 0 {
			continue
		}
		leaf := res.Chain[0]
		switch {
		case now.Before(leaf.NotBefore):
			return "before-not-before"
		case !now.Before(leaf.NotAfter):
			check = "after-not-after"
		case check == "":
			check = "consistent"
		}
	}
	return check
}

func certWindowWords(c string) string {
	if c == "before-not-before" {
		return "not valid yet: the clock is behind"
	}
	return "expired: the clock is ahead, or the certificate really expired"
}

func skewWords(d time.Duration) string {
	a := absDur(d)
	switch {
	case a < time.Second:
		return "in step with the hub's"
	case d > 0:
		return a.Round(time.Second).String() + " ahead of the hub's"
	}
	return a.Round(time.Second).String() + " behind the hub's"
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// tokenExpiredAtHub says whether a token expiring at exp (device clock)
// was already expired by the hub's clock, when the skew is known.
func (r *run) tokenExpiredAtHub(exp time.Time) bool {
	if r.clock == nil || r.clock.Source != "https-date" {
		return false
	}
	skew := time.Duration(r.clock.SkewSeconds * float64(time.Second))
	return !r.t.now().Add(-skew).Before(exp)
}

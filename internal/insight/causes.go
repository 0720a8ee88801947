package insight

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// evaluators find one cause each in a device's facts; nil when the
// history does not show it. The order here is only the order they run;
// Diagnose orders the verdicts by strength.
var evaluators = []func(*facts) *Verdict{
	duplicateIdentity, tokenRenewal, expiredToken, wrongKey, disabledDevice,
	idleTimeout, unstableNetwork, hubSide, flapping,
}

// explains sets the verdict's share of the trouble and its strength.
func (f *facts) explains(v *Verdict, events int) {
	if f.trouble > 0 {
		v.Evidence.Share = math.Min(float64(events)/float64(f.trouble), 1)
	}
	v.strength = v.Confidence * (0.4 + 0.6*v.Evidence.Share)
}

// sourcesOf lists distinct source addresses of recs matching keep, most
// frequent first, with their counts ("10.0.1.XXX (108)").
func (f *facts) sourcesOf(keep func(*rec) bool) (names []string, distinct int) {
	counts := map[uint32]int{}
	var order []uint32
	for i := range f.recs {
		r := &f.recs[i]
		if !keep(r) {
			continue
		}
		if counts[r.Src] == 0 {
			order = append(order, r.Src)
		}
		counts[r.Src]++
	}
	slices.SortStableFunc(order, func(a, b uint32) int { return counts[b] - counts[a] })
	for _, s := range order {
		name := f.str(s)
		if name == "" {
			name = "(unknown)"
		}
		names = append(names, fmt.Sprintf("%s (%d)", name, counts[s]))
	}
	return names, len(order)
}

// srcList lists the device's sources seen in the window with what pick
// counts of them (over the device's whole history), most first:
// "10.0.1.XXX (21 connects)".
func (f *facts) srcList(pick func(*srcStat) int, unit string) []string {
	type entry struct {
		name string
		n    int
	}
	var es []entry
	for i := range f.d.Srcs {
		s := &f.d.Srcs[i]
		if n := pick(s); n > 0 && s.Last >= f.since {
			name := f.str(s.Src)
			if name == "" {
				name = "(unknown)"
			}
			es = append(es, entry{name, n})
		}
	}
	slices.SortStableFunc(es, func(a, b entry) int { return b.n - a.n })
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s (%s)", e.name, plural(e.n, unit)))
	}
	return out
}

func srcConnects(s *srcStat) int { return int(s.Connects) }
func srcRefusals(s *srcStat) int { return int(s.Refusals) }
func srcDrops(s *srcStat) int    { return int(s.Drops) }

// perHour renders a rate: "103 an hour", "2.5 an hour".
func perHour(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f an hour", v)
	}
	return fmt.Sprintf("%.1f an hour", v)
}

// sdksOf lists the distinct SDK versions of recs matching keep.
func (f *facts) sdksOf(keep func(*rec) bool) []string {
	var out []string
	for i := range f.recs {
		r := &f.recs[i]
		if keep(r) {
			if s := f.str(r.SDK); s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func notProbe(r *rec) bool { return r.Flags&flagProbe == 0 }

func isClass(cs ...Class) func(*rec) bool {
	return func(r *rec) bool { return slices.Contains(cs, r.Class) }
}

// lifetimes are the token lifetimes (s) the device's connects in the
// window showed.
func (f *facts) lifetimes() []float64 {
	var out []float64
	for _, r := range f.recs {
		if r.Op == opConnect && notProbe(&r) && r.Flags&flagLife != 0 {
			out = append(out, float64(r.Life))
		}
	}
	return out
}

// duplicateIdentity: 400027 takeovers, the sessions alternating between
// two or more sources or sessions.
func duplicateIdentity(f *facts) *Verdict {
	takeovers := int(f.n[ClassTakeover])
	if takeovers < 3 {
		return nil
	}
	ends := 0
	for c := ClassClientClose; c <= ClassProtocol; c++ {
		ends += int(f.n[c])
	}
	frac := float64(takeovers) / float64(max(ends, 1))
	// Sources of the connects, in order, and how often consecutive
	// connects come from different ones.
	var srcs []uint32
	var takeDurs []float64
	for _, r := range f.recs {
		if r.Op == opConnect && notProbe(&r) {
			srcs = append(srcs, r.Src)
		}
		if r.Class == ClassTakeover {
			takeDurs = append(takeDurs, float64(r.Dur)/1000)
		}
	}
	switches := 0
	for i := 1; i < len(srcs); i++ {
		if srcs[i] != srcs[i-1] {
			switches++
		}
	}
	alternation := 0.0
	if len(srcs) > 1 {
		alternation = float64(switches) / float64(len(srcs)-1)
	}
	_, distinct := f.sourcesOf(func(r *rec) bool { return r.Op == opConnect && notProbe(r) })
	names := f.srcList(srcConnects, "connect")
	sdks := f.sdksOf(func(r *rec) bool { return r.Op == opConnect && notProbe(r) })
	dur := spreadOf(takeDurs)
	conf := 0.35 + 0.45*math.Min(frac, 1)
	switch {
	case distinct >= 2 && alternation >= 0.3:
		conf += 0.2
	case len(sdks) >= 2:
		conf += 0.15
	case dur.N >= 3 && dur.Rel < 0.15 && dur.Median > 5:
		// One source, sessions replaced after a near-constant time: more
		// likely a device reconnecting over a dead path (idle timeout).
		conf -= 0.3
	}
	conf = math.Min(conf, 0.99)
	first, last := f.span(ClassTakeover)
	v := &Verdict{
		Cause: CauseDuplicateIdentity, Confidence: conf,
		Title: "duplicate identity: more than one client connects with this device's credentials",
		Evidence: Evidence{
			Counts:      map[string]int{"takeovers": takeovers, "sessionsEnded": ends, "connects": f.n.sum(ClassConnect, ClassRenewal, ClassRenewalExpiry, ClassReturn)},
			First:       first,
			Last:        last,
			Sources:     names,
			SDKVersions: sdks,
			RatePerHour: round1(float64(takeovers) / f.hours()),
			Samples: f.samples(func(r *rec) bool { return notProbe(r) && (r.Class == ClassTakeover || r.Op == opConnect) },
				func(r *rec) string {
					if r.Class == ClassTakeover {
						return fmt.Sprintf("replaced after %s", humanDuration(time.Duration(r.Dur)*time.Millisecond))
					}
					return ""
				}),
		},
	}
	pattern := fmt.Sprintf("%d of %s ended by a new connection with the same id (400027), %s",
		takeovers, plural(ends, "session"), perHour(v.Evidence.RatePerHour))
	if distinct >= 2 {
		pattern += fmt.Sprintf("; connects alternate between %d sources (%.0f %% of consecutive connects switch)", distinct, alternation*100)
	} else if len(names) == 1 {
		pattern += "; all from " + strings.Split(names[0], " (")[0] + " (two processes behind one address, or a cloned image on one network)"
	}
	if dur.N > 0 {
		pattern += fmt.Sprintf("; a session lasts %s (median) before the other copy takes over", humanDuration(msDur(dur.Median*1000)))
	}
	v.Evidence.Pattern = pattern
	v.Explanation = "IoT Hub, and Tether, keep one connection per device identity: a new connection closes the one before " +
		"(400027 ConnectionForcefullyClosedOnNewConnection). Here the replaced client comes back and replaces the other in turn, " +
		"so two or more clients — a second instance of the application, a cloned SD card or disk image, a test rig using " +
		"production credentials — share this device's identity and keep knocking each other off."
	v.Fix = "Give every client its own device identity. Find the other client from the sources and SDK versions above " +
		"(the sessionId of each record tells the clients apart), then stop it or register it as a new device with its own keys " +
		"(tether device create NEW-ID) and give it that connection string. `tether probe` also replaces the connection while it " +
		"runs; its takeovers are not counted here."
	v.Query = f.query(
		`where OperationName == "deviceConnect" or ResultType == "400027"`,
		"extend p = parse_json(properties_s)",
		"project TimeGenerated, OperationName, ResultType, MaskedIp = tostring(p.maskedIpAddress), SessionId = tostring(p.sessionId), SdkVersion, DurationMs = tolong(p.connectDurationMs)",
		"order by TimeGenerated asc")
	f.explains(v, takeovers)
	return v
}

// tokenRenewal: disconnect/reconnect pairs at a steady period, marked as
// renewals (benign).
func tokenRenewal(f *facts) *Verdict {
	renewals := f.n.sum(ClassRenewal, ClassRenewalExpiry)
	if renewals == 0 {
		return nil
	}
	// The renewed sessions' lengths are the renewal period.
	var period []float64
	for i := 1; i < len(f.recs); i++ {
		r, prev := f.recs[i], f.recs[i-1]
		if (r.Class == ClassRenewal || r.Class == ClassRenewalExpiry) && prev.Op == opDisconnect {
			period = append(period, float64(prev.Dur)/1000)
		}
	}
	sp := spreadOf(period)
	life := spreadOf(f.lifetimes())
	errs := f.n[ClassRenewalExpiry] > 0
	sdkName := ""
	var sdk SDK
	if len(f.d.SDKs) > 0 {
		sdkStr := f.str(f.d.Live.SDK)
		if sdkStr == "" {
			sdkStr = f.str(f.d.SDKs[0].SDK)
		}
		sdk = IdentifySDK(sdkStr)
		sdkName = sdkStr
	}
	conf := 0.6
	steady := sp.N >= 2 && sp.Rel <= 0.15
	if steady {
		conf = 0.9
	} else if sp.N == 1 {
		conf = 0.75
	}
	first, last := f.span(ClassRenewal, ClassRenewalExpiry)
	v := &Verdict{
		Cause: CauseTokenRenewal, Benign: true, Confidence: conf,
		Title: "token renewals: the SDK reconnects with a new SAS token, as expected",
		Evidence: Evidence{
			Counts: map[string]int{"renewals": renewals, "afterClientDisconnect": int(f.n[ClassRenewal]), "afterTokenExpiry": int(f.n[ClassRenewalExpiry])},
			First:  first, Last: last,
			PeriodSeconds:        round1(sp.Median),
			TokenLifetimeSeconds: round1(life.Median),
			ErrorsOnRenewal:      &errs,
			SDK:                  sdkName,
			RatePerHour:          round1(float64(renewals) / f.hours()),
			Samples: f.samples(func(r *rec) bool { return r.Class == ClassRenewal || r.Class == ClassRenewalExpiry },
				func(r *rec) string { return "renewal connect" }),
		},
	}
	switch {
	case sp.N >= 2:
		v.Evidence.Pattern = fmt.Sprintf("a renewal every %s (± %.0f %%)", humanDuration(msDur(sp.Median*1000)), sp.Rel*50)
	case sp.N == 1:
		v.Evidence.Pattern = fmt.Sprintf("one renewal after %s", humanDuration(msDur(sp.Median*1000)))
	default:
		v.Evidence.Pattern = plural(renewals, "renewal")
	}
	if life.N > 0 && sp.N > 0 && life.Median > 0 {
		v.Evidence.Pattern += fmt.Sprintf(", at %.0f %% of the token's %s lifetime", math.Min(sp.Median/life.Median, 1)*100, humanDuration(msDur(life.Median*1000)))
	}
	v.Explanation = "MQTT cannot re-authenticate a live connection, so the device SDK closes its connection and opens a new one " +
		"with a fresh SAS token before (or when) the old one expires. Each renewal is one disconnect and one connect in the log; " +
		"the hub marks the connect tokenRenewal. Nothing is wrong."
	switch {
	case errs:
		v.Explanation += " This SDK keeps the connection until the hub closes it at expiry, so each renewal also writes 401003 " +
			"IoTHubUnauthorized and 404104 DeviceConnectionClosedRemotely error records: expected for the .NET and Java SDKs over MQTT."
	case sdk.Family != "" && !sdk.ErrorsOnRenewal:
		v.Explanation += " This SDK (" + sdk.Name + ") " + sdk.Renewal + "."
	}
	v.Fix = "Nothing to fix. To keep renewals out of alerts and webhooks, create subscriptions with renewal suppression " +
		"(tether sub create … --suppress-renewals) and filter tokenRenewal in log queries."
	v.Query = f.query(
		"extend p = parse_json(properties_s)",
		`where tobool(p.tokenRenewal) or tostring(p.reason) in ("client", "token-expired")`,
		"project TimeGenerated, OperationName, ResultType, Reason = tostring(p.reason), TokenRenewal = tobool(p.tokenRenewal), DurationMs = tolong(p.connectDurationMs), TokenExpiry = tostring(p.tokenExpiry)",
		"order by TimeGenerated asc")
	f.explains(v, 0)
	return v
}

// expiredToken: 401003 then 404104 without a renewal, tokens that expired
// before they arrived (with the device's clock skew), tokens that live
// only minutes.
func expiredToken(f *facts) *Verdict {
	refused := int(f.n[ClassRefusedExpired])
	unrenewed := max(int(f.n[ClassTokenExpiry])-int(f.n[ClassRenewalExpiry]), 0)
	life := spreadOf(f.lifetimes())
	short := life.N >= 2 && life.Median > 0 && life.Median < f.e.o.ShortToken.Seconds()
	shortReconnects := 0
	if short {
		shortReconnects = f.n.sum(ClassRenewal, ClassRenewalExpiry, ClassConnect)
	}
	if refused < 2 && unrenewed < 2 && !(short && shortReconnects >= 2) {
		return nil
	}
	var late []float64
	for _, r := range f.recs {
		if r.Class == ClassRefusedExpired && r.Flags&flagLife != 0 {
			late = append(late, -float64(r.Life))
		}
	}
	lateSp := spreadOf(late)
	ev := Evidence{
		Counts:  map[string]int{"refusedExpired": refused, "expiredWithoutRenewal": unrenewed, "connects": f.n.sum(ClassConnect, ClassRenewal, ClassRenewalExpiry, ClassReturn)},
		Samples: f.samples(isClass(ClassRefusedExpired, ClassTokenExpiry), noteToken),
	}
	ev.First, ev.Last = f.span(ClassRefusedExpired, ClassTokenExpiry)
	if life.N > 0 {
		ev.TokenLifetimeSeconds = round1(life.Median)
	}
	var what []string
	conf := 0.0
	v := &Verdict{Cause: CauseExpiredToken}
	explain := []string{}
	if refused >= 2 {
		conf = math.Max(conf, 0.75+0.2*math.Min(float64(refused)/float64(max(f.trouble, 1)), 1))
		ev.ExpiredBySeconds = round1(lateSp.Median)
		what = append(what, fmt.Sprintf("%s refused because the token had expired", plural(refused, "connect")))
		if lateSp.N > 0 {
			// The device signs se = its clock + lifetime; arriving expired
			// by L means its clock is behind the hub's by L + lifetime.
			lifetime, assumed := f.usualLifetime()
			skew := -(lateSp.Median + lifetime)
			skew = math.Round(skew)
			ev.ClockSkewSeconds = &skew
			how := "the device's usual token lifetime"
			if assumed {
				how = "its SDK's default token lifetime"
			}
			explain = append(explain, fmt.Sprintf(
				"The tokens had expired a median of %s before they reached the hub. A device signs its token's expiry from its own clock, "+
					"so its clock is about %s behind the hub's (estimated from the expiry against the hub's clock and %s of %s).",
				humanDuration(msDur(lateSp.Median*1000)), humanDuration(msDur(-skew*1000)), how, humanDuration(msDur(lifetime*1000))))
		}
	}
	if unrenewed >= 2 {
		conf = math.Max(conf, 0.7+0.2*math.Min(float64(unrenewed)/float64(max(f.trouble, 1)), 1))
		what = append(what, fmt.Sprintf("%s closed by the hub at token expiry (401003, then 404104) without a renewal after", plural(unrenewed, "session")))
		explain = append(explain, "The hub closes a session when its token expires; an SDK that renews comes back within seconds with a "+
			"new token. This device did not: it retried with the expired token, or stayed away.")
	}
	if short && shortReconnects >= 2 {
		conf = math.Max(conf, 0.85)
		what = append(what, fmt.Sprintf("tokens valid for only %s, so the device reconnects every few minutes (%s in the window)",
			humanDuration(msDur(life.Median*1000)), plural(shortReconnects, "reconnect")))
		explain = append(explain, fmt.Sprintf("Its tokens live %s (the SDKs' default is 60 min): over MQTT every new token is a new "+
			"connection, so the device disconnects and reconnects that often, and a token that expires before the SDK renews it "+
			"is refused.", humanDuration(msDur(life.Median*1000))))
	}
	v.Confidence = conf
	v.Title = "expired or short-lived SAS tokens"
	if ev.ClockSkewSeconds != nil && math.Abs(*ev.ClockSkewSeconds) >= 300 {
		v.Title = "expired SAS tokens: the device's clock is wrong"
	} else if short && refused < 2 && unrenewed < 2 {
		v.Title = "short-lived SAS tokens: the device reconnects at every renewal"
	}
	if len(ev.Samples) == 0 {
		ev.Samples = f.samples(func(r *rec) bool { return r.Op == opConnect && notProbe(r) && r.Flags&flagLife != 0 },
			func(r *rec) string {
				return fmt.Sprintf("token valid for %s", humanDuration(time.Duration(r.Life)*time.Second))
			})
	}
	ev.Pattern = strings.Join(what, "; ")
	v.Evidence = ev
	v.Explanation = strings.Join(explain, " ")
	v.Fix = "Synchronise the device's clock (NTP; a device whose clock runs minutes off gets refused once its tokens expire by " +
		"its clock), let the SDK make and renew tokens from the device's key (a connection string with SharedAccessKey) rather " +
		"than giving it a fixed SAS token, and keep the SDK's default token lifetime (60 min) unless there is a reason not to."
	v.Query = f.query(
		`where ResultType == "401003" or tostring(parse_json(properties_s).reason) == "token-expired" or OperationName == "deviceConnect"`,
		"extend p = parse_json(properties_s)",
		"project TimeGenerated, OperationName, ResultType, Reason = tostring(p.reason), TokenExpiry = tostring(p.tokenExpiry), ErrorMessage = tostring(p.errorMessage)",
		"order by TimeGenerated asc")
	f.explains(v, refused+unrenewed+shortReconnects)
	return v
}

func noteToken(r *rec) string {
	if r.Flags&flagLife == 0 {
		return ""
	}
	if r.Life < 0 {
		return fmt.Sprintf("token expired %s before it arrived", humanDuration(time.Duration(-r.Life)*time.Second))
	}
	return ""
}

// usualLifetime is the lifetime (s) of the device's accepted tokens, from
// its history, or its SDK's default (assumed).
func (f *facts) usualLifetime() (float64, bool) {
	var lifes []float64
	for _, r := range f.d.Ring {
		if r.Op == opConnect && notProbe(&r) && r.Flags&flagLife != 0 && r.Life > 0 {
			lifes = append(lifes, float64(r.Life))
		}
	}
	if sp := spreadOf(lifes); sp.N > 0 {
		return sp.Median, false
	}
	sdk := IdentifySDK(f.str(f.d.Live.SDK))
	if len(f.d.SDKs) > 0 && sdk.Family == "" {
		sdk = IdentifySDK(f.str(f.d.SDKs[0].SDK))
	}
	if sdk.TokenLifetime > 0 {
		return sdk.TokenLifetime.Seconds(), true
	}
	return time.Hour.Seconds(), true
}

// wrongKey: signature failures, starting at a key change in the registry.
func wrongKey(f *facts) *Verdict {
	bad := int(f.n[ClassRefusedSignature])
	if bad < 2 {
		return nil
	}
	g := f.d.Reg
	firstBad := f.d.First[ClassRefusedSignature]
	rotated := g.KeyChanged != 0 && firstBad >= g.KeyChanged-5000
	ev := Evidence{
		Counts:      map[string]int{"badSignature": bad, "connects": f.n.sum(ClassConnect, ClassRenewal, ClassRenewalExpiry, ClassReturn)},
		RatePerHour: round1(float64(bad) / f.hours()),
		Samples:     f.samples(isClass(ClassRefusedSignature), nil),
	}
	ev.First, ev.Last = f.span(ClassRefusedSignature)
	ev.Sources = f.srcList(srcRefusals, "refusal")
	ev.SDKVersions = f.sdksOf(isClass(ClassRefusedSignature))
	v := &Verdict{Cause: CauseWrongKey, Evidence: ev}
	okAfter := 0
	if rotated {
		for _, r := range f.recs {
			if r.Op == opConnect && notProbe(&r) && r.At > g.KeyChanged {
				okAfter++
			}
		}
	}
	if rotated {
		v.Confidence = 0.95
		v.Title = "rotated key: the device still signs with a key the registry no longer holds"
		v.Evidence.KeyChangedAt = time.UnixMilli(g.KeyChanged).UTC()
		key := g.KeyChange + " key"
		if g.KeyChange == "both" {
			key = "both keys"
		}
		by := ""
		if g.Caller != "" {
			by = " (by " + g.Caller + ")"
		}
		v.Evidence.Pattern = fmt.Sprintf("the device's %s changed at %s%s; since then %s refused with a bad signature (401003), none before",
			key, v.Evidence.KeyChangedAt.Format("2006-01-02 15:04:05 UTC"), by, plural(bad, "connect"))
		if okAfter > 0 {
			v.Evidence.Pattern += fmt.Sprintf("; %s succeeded after the change (a client that has the new key)", plural(okAfter, "connect"))
		}
		v.Explanation = "The token's signature does not verify with either key the registry holds for the device. The refusals began " +
			"when the device's " + key + " changed: the device (or one of its copies) still signs its tokens with the old key."
	} else {
		v.Confidence = 0.75
		v.Title = "wrong key: the device's tokens are not signed with its registry keys"
		v.Evidence.Pattern = fmt.Sprintf("%s refused with a bad signature (401003), %s; no key change recorded in the window",
			plural(bad, "connect"), perHour(v.Evidence.RatePerHour))
		v.Explanation = "The token's signature does not verify with either key the registry holds for the device: it was given " +
			"another device's or another hub's connection string, a key that was regenerated before the journal's history, or " +
			"a key mangled in provisioning."
	}
	v.Fix = "Give the device its current connection string (tether device show ID). When rotating keys, change one key at a time " +
		"(devices keep connecting with the other) and switch devices over before changing the second."
	v.Query = f.base("DeviceIdentityOperations") + "\n| " + strings.Join([]string{
		`where Category == "DeviceIdentityOperations" or OperationName == "deviceConnect"`,
		"extend p = parse_json(properties_s)",
		"project TimeGenerated, Category, OperationName, ResultType, ErrorMessage = tostring(p.errorMessage), MaskedIp = tostring(p.maskedIpAddress), Caller = tostring(p.caller)",
		"order by TimeGenerated asc"}, "\n| ")
	f.explains(v, bad)
	return v
}

// disabledDevice: a disabled or deleted device still trying to connect.
func disabledDevice(f *facts) *Verdict {
	dis, gone := int(f.n[ClassRefusedDisabled]), int(f.n[ClassRefusedNotFound])
	if dis+gone < 2 {
		return nil
	}
	ev := Evidence{
		Counts:  map[string]int{"refusedDisabled": dis, "refusedNotFound": gone},
		Samples: f.samples(isClass(ClassRefusedDisabled, ClassRefusedNotFound, ClassAdmin), nil),
	}
	ev.First, ev.Last = f.span(ClassRefusedDisabled, ClassRefusedNotFound)
	ev.Sources = f.srcList(srcRefusals, "refusal")
	ev.SDKVersions = f.sdksOf(isClass(ClassRefusedDisabled, ClassRefusedNotFound))
	span := ev.Last.Sub(ev.First)
	if span > 0 {
		ev.RatePerHour = round1(float64(dis+gone-1) / span.Hours())
	}
	g := f.d.Reg
	state, since := "disabled", g.Disabled
	if gone > dis {
		state, since = "deleted", g.Deleted
	}
	v := &Verdict{Cause: CauseDisabledDevice, Confidence: 0.95, Evidence: ev,
		Title: fmt.Sprintf("%s device still retrying", state)}
	when := ""
	if since != 0 {
		when = " since " + time.UnixMilli(since).UTC().Format("2006-01-02 15:04:05 UTC")
		if g.Caller != "" && g.Status == state {
			when += " (by " + g.Caller + ")"
		}
	}
	v.Evidence.Pattern = fmt.Sprintf("%s refused, about %s, from %s to %s UTC",
		plural(dis+gone, "attempt"), perHour(ev.RatePerHour), ev.First.Format("2006-01-02 15:04:05"), ev.Last.Format("15:04:05"))
	v.Explanation = fmt.Sprintf("The device is %s in the registry%s, yet it keeps trying to connect; every attempt is refused "+
		"(401003). Each one costs the device power and data and the hub a TLS handshake.", state, when)
	v.Fix = "If the device should connect, enable it (tether device update ID --status enabled) or create it again. " +
		"If it is retired, switch it off or remove its credentials: SDKs that retry on 401003 (Node, C, Python) never stop by themselves."
	v.Query = f.query(
		`where OperationName == "deviceConnect" and ResultType == "401003"`,
		"extend p = parse_json(properties_s)",
		"summarize Attempts = count(), First = min(TimeGenerated), Last = max(TimeGenerated) by ErrorMessage = tostring(p.errorMessage), MaskedIp = tostring(p.maskedIpAddress)")
	f.explains(v, dis+gone+int(f.n[ClassAdmin]))
	return v
}

// dropIdle is the idle time (s) at a drop: the event's idle time, or the
// session's length when the hub did not know it.
func dropIdle(r *rec) float64 {
	if r.Idle > 0 {
		return float64(r.Idle) / 1000
	}
	return float64(r.Dur) / 1000
}

// idlePool are the drops whose idle time can show a path's idle timeout:
// resets, and takeovers when every connect comes from one source (a
// device that reconnects over a silently dropped path replaces its dead
// session).
func (f *facts) idlePool() (vals []float64, ka int, recs []rec) {
	srcs := map[uint32]bool{}
	for _, r := range f.recs {
		if r.Op == opConnect && notProbe(&r) {
			srcs[r.Src] = true
		}
	}
	for _, r := range f.recs {
		if r.Class == ClassNetwork || (r.Class == ClassTakeover && len(srcs) <= 1) {
			vals = append(vals, dropIdle(&r))
			recs = append(recs, r)
			if r.KA > 0 {
				ka = int(r.KA)
			}
		}
	}
	if ka == 0 {
		ka = int(f.d.Live.KA)
	}
	return vals, ka, recs
}

// idleTimeout: 404104 closes after a near-constant idle time shorter than
// 1.5 × keep-alive.
func idleTimeout(f *facts) *Verdict {
	vals, ka, _ := f.idlePool()
	if len(vals) < 3 {
		return nil
	}
	sp := spreadOf(vals)
	if sp.Median <= 0 || sp.Rel > 0.2 {
		return nil
	}
	if ka > 0 && sp.Median >= 1.5*float64(ka) {
		return nil
	}
	in := within(vals, sp.Median, 0.1)
	if float64(in) < 0.6*float64(len(vals)) {
		return nil
	}
	suggest := int(math.Floor(sp.Median*0.75/5) * 5)
	if suggest < 5 {
		suggest = max(int(sp.Median*0.5), 1)
	}
	drops := f.n.sum(ClassNetwork) + f.n.sum(ClassTakeover)
	if len(vals) < drops && f.n[ClassNetwork] > 0 {
		drops = int(f.n[ClassNetwork])
	}
	v := &Verdict{
		Cause: CauseIdleTimeout, Confidence: math.Min(0.55+0.4*float64(in)/float64(len(vals)), 0.95),
		Title: fmt.Sprintf("idle timeout in the network path: connections die after %s without traffic", humanDuration(msDur(sp.Median*1000))),
		Evidence: Evidence{
			Counts:             map[string]int{"drops": len(vals), "atThatIdleTime": in},
			IdleSeconds:        round1(sp.Median),
			KeepAliveSeconds:   ka,
			SuggestedKeepAlive: suggest,
			Samples: f.samples(func(r *rec) bool { return r.Class == ClassNetwork || r.Class == ClassTakeover }, func(r *rec) string {
				return fmt.Sprintf("idle %s", humanDuration(msDur(dropIdle(r)*1000)))
			}),
		},
	}
	v.Evidence.First, v.Evidence.Last = f.span(ClassNetwork)
	v.Evidence.Sources = f.srcList(srcDrops, "drop")
	v.Evidence.Pattern = fmt.Sprintf("%d of %d drops came after %s of silence (± %.0f %%)", in, len(vals),
		humanDuration(msDur(sp.Median*1000)), sp.Rel*50)
	kaText := "its keep-alive"
	if ka > 0 {
		kaText = fmt.Sprintf("its keep-alive of %d s (the hub waits 1.5 × that, %d s)", ka, ka*3/2)
		v.Evidence.Pattern += fmt.Sprintf(", well inside the keep-alive's %d s", ka*3/2)
	}
	v.Explanation = fmt.Sprintf("The device's connections end (404104, closed or reset without DISCONNECT) after it has sent nothing "+
		"for the same %s each time, shorter than %s. Something on the path — a NAT gateway, a firewall, a mobile carrier — "+
		"drops connections that stay idle that long, before the device's first PINGREQ would have kept them open.",
		humanDuration(msDur(sp.Median*1000)), kaText)
	v.Fix = fmt.Sprintf("Set the device's MQTT keep-alive to %d s or less (Node: setOptions({keepalive}), .NET: KeepAliveInSeconds, "+
		"C: OPTION_KEEP_ALIVE, Python: keep_alive, Java: setKeepAliveInterval), or raise the idle timeout of the NAT or firewall. "+
		"`tether probe --keepalive` measures the path's idle timeout from where the device is.", suggest)
	v.Query = f.query(
		`where OperationName == "deviceDisconnect" and ResultType in ("404104", "400027")`,
		"extend p = parse_json(properties_s)",
		"project TimeGenerated, ResultType, Reason = tostring(p.reason), IdleMs = tolong(p.idleMs), DurationMs = tolong(p.connectDurationMs), KeepAlive = tolong(p.keepAlive), MaskedIp = tostring(p.maskedIpAddress)",
		"order by TimeGenerated asc")
	f.explains(v, drops)
	return v
}

// unstableNetwork: drops without DISCONNECT after sessions of varying
// length, clustered by time and source.
func unstableNetwork(f *facts) *Verdict {
	drops := f.n.sum(ClassNetwork, ClassKeepAlive)
	if drops < 3 {
		return nil
	}
	if iv := idleTimeout(f); iv != nil && iv.Confidence >= 0.7 {
		return nil // a constant idle time is the path's timeout, not instability
	}
	var durs []float64
	bins := map[int64]int{}
	for _, r := range f.recs {
		if r.Class == ClassNetwork || r.Class == ClassKeepAlive {
			durs = append(durs, float64(r.Dur)/1000)
			bins[r.At/(10*60*1000)]++
		}
	}
	sp := spreadOf(durs)
	share := float64(drops) / float64(max(f.trouble, 1))
	conf := 0.45 + 0.4*math.Min(share, 1)
	ev := Evidence{
		Counts:      map[string]int{"resets": int(f.n[ClassNetwork]), "keepAliveTimeouts": int(f.n[ClassKeepAlive])},
		RatePerHour: round1(float64(drops) / f.hours()),
		Samples: f.samples(isClass(ClassNetwork, ClassKeepAlive), func(r *rec) string {
			return "after " + humanDuration(time.Duration(r.Dur)*time.Millisecond)
		}),
	}
	ev.First, ev.Last = f.span(ClassNetwork, ClassKeepAlive)
	ev.Sources = f.srcList(srcDrops, "drop")
	// The busiest 10-minute spans.
	type bin struct {
		at int64
		n  int
	}
	var bs []bin
	for k, n := range bins {
		bs = append(bs, bin{k, n})
	}
	slices.SortFunc(bs, func(a, b bin) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return int(a.at - b.at)
	})
	var clusters []string
	for i, b := range bs {
		if i == 3 {
			break
		}
		clusters = append(clusters, fmt.Sprintf("%s (%d)", time.UnixMilli(b.at*10*60*1000).UTC().Format("15:04"), b.n))
	}
	ev.Pattern = fmt.Sprintf("%d connections lost without DISCONNECT (%d resets, %d keep-alive timeouts), %s; sessions lasted %s median (%s to %s)",
		drops, f.n[ClassNetwork], f.n[ClassKeepAlive], perHour(ev.RatePerHour),
		humanDuration(msDur(sp.Median*1000)), humanDuration(msDur(sp.Min*1000)), humanDuration(msDur(sp.Max*1000)))
	if len(clusters) > 0 {
		ev.Pattern += "; busiest 10-minute spans (UTC): " + strings.Join(clusters, ", ")
	}
	v := &Verdict{Cause: CauseUnstableNetwork, Confidence: conf, Evidence: ev,
		Title: "unstable network: the connection keeps getting lost"}
	v.Explanation = "The device's sessions end without a DISCONNECT after irregular times: the TCP connection is reset or closed " +
		"on the way (404104), or nothing arrives for 1.5 × keep-alive. The device reconnects each time, so its SDK is fine; " +
		"its network is not (signal, Wi-Fi roaming, cellular coverage, power saving, an overloaded gateway)."
	v.Fix = "Check the device's connectivity where it is (signal strength, gateway logs), and run `tether probe` from its network. " +
		"Keep the SDK's exponential back-off so reconnects do not pile up; if the losses come from one source address, " +
		"look at that site's network."
	v.Query = f.query(
		`where OperationName == "deviceDisconnect" and ResultType == "404104"`,
		"extend p = parse_json(properties_s)",
		"summarize Drops = count(), AvgSessionMs = avg(tolong(p.connectDurationMs)) by bin(TimeGenerated, 10m), MaskedIp = tostring(p.maskedIpAddress)",
		"order by TimeGenerated asc")
	f.explains(v, drops)
	return v
}

// hubSide: hub restarts and shutdowns, server errors and timeouts.
func hubSide(f *facts) *Verdict {
	hub := f.n.sum(ClassHub, ClassRefusedHub)
	if hub == 0 {
		return nil
	}
	share := float64(hub) / float64(max(f.trouble, 1))
	ev := Evidence{
		Counts:  map[string]int{"hubDisconnects": int(f.n[ClassHub]), "hubRefusals": int(f.n[ClassRefusedHub])},
		Samples: f.samples(isClass(ClassHub, ClassRefusedHub), nil),
	}
	ev.First, ev.Last = f.span(ClassHub, ClassRefusedHub)
	ev.Pattern = fmt.Sprintf("%d of %d disconnects and refusals were the hub's doing (restart, shutdown, server error or timeout)",
		hub, f.trouble)
	v := &Verdict{Cause: CauseHubSide, Confidence: 0.5 + 0.45*math.Min(share, 1), Evidence: ev,
		Title: "hub-side: the hub ended or refused the connections, not the device"}
	v.Explanation = "These sessions ended because the hub stopped (server-shutdown), died and found them open at restart " +
		"(hub-restart), or failed (500001 ServerError, 500008 GenericTimeout). The device is not at fault and reconnected."
	v.Fix = "Nothing on the device. Look at the hub's own log and its journal around these times (restarts, a full disk, " +
		"an unreachable NATS cluster); throttling is not implemented yet, so it is not a cause."
	v.Query = f.query(
		`where tostring(parse_json(properties_s).reason) in ("server-shutdown", "hub-restart", "server-error") or ResultType startswith "5"`,
		"extend p = parse_json(properties_s)",
		"project TimeGenerated, OperationName, ResultType, ResultDescription, Reason = tostring(p.reason)",
		"order by TimeGenerated asc")
	f.explains(v, hub)
	return v
}

// flapping: many reconnects per hour that no other cause explains.
func flapping(f *facts) *Verdict {
	reconnects := int(f.n[ClassConnect])
	rate := float64(reconnects) / f.hours()
	score := f.e.flapScore(f.d, f.now)
	if reconnects < f.e.o.FlapThreshold/2 || (rate < float64(f.e.o.FlapThreshold) && score.Score < f.e.o.FlapThreshold) {
		return nil
	}
	// What the specific causes explain.
	explained := 0
	for _, eval := range []func(*facts) *Verdict{duplicateIdentity, expiredToken, wrongKey, disabledDevice, idleTimeout, unstableNetwork, hubSide} {
		if v := eval(f); v != nil && v.Confidence >= 0.6 {
			explained = max(explained, int(v.Evidence.Share*float64(f.trouble)))
		}
	}
	unexplained := 1 - float64(explained)/float64(max(f.trouble, 1))
	if f.trouble == 0 {
		unexplained = 1
	}
	if unexplained < 0.5 {
		return nil
	}
	var durs []float64
	for _, r := range f.recs {
		if r.Op == opDisconnect && notProbe(&r) {
			durs = append(durs, float64(r.Dur)/1000)
		}
	}
	sp := spreadOf(durs)
	ends := map[string]int{}
	for c := ClassClientClose; c <= ClassProtocol; c++ {
		if f.n[c] > 0 {
			ends[c.String()] = int(f.n[c])
		}
	}
	top, topN := "", 0
	for k, n := range ends {
		if n > topN || (n == topN && k < top) {
			top, topN = k, n
		}
	}
	ev := Evidence{
		Counts:      map[string]int{"reconnects": reconnects, "flapScore": score.Score},
		RatePerHour: round1(rate),
		Samples: f.samples(func(r *rec) bool { return notProbe(r) && (r.Class == ClassConnect || r.Op == opDisconnect) }, func(r *rec) string {
			if r.Op == opDisconnect {
				return "after " + humanDuration(time.Duration(r.Dur)*time.Millisecond)
			}
			return ""
		}),
	}
	for k, n := range ends {
		ev.Counts["ended:"+k] = n
	}
	ev.First, ev.Last = f.span(ClassConnect)
	ev.Sources = f.srcList(srcConnects, "connect")
	ev.Pattern = fmt.Sprintf("%s, %s over the window; flap score %d in the last hour (trend %s); sessions last %s median, most end by %s",
		plural(reconnects, "reconnect"), perHour(rate), score.Score, score.Trend, humanDuration(msDur(sp.Median*1000)), top)
	v := &Verdict{Cause: CauseFlapping, Evidence: ev, Confidence: math.Min(0.55+0.35*unexplained, 0.9),
		Title: "flapping: the device reconnects far more often than renewals explain"}
	v.Explanation = "The device connects and disconnects many times an hour, and neither token renewals, a duplicate identity, " +
		"credentials, the network path's idle timeout nor the hub account for it."
	if top == ClassClientClose.String() {
		v.Explanation += " Its sessions mostly end with its own DISCONNECT well before its token expires: the application closes and " +
			"reopens its client (a new client per message, a restart loop, a watchdog)."
	}
	v.Fix = "Read the device application's log around these times: crashes and restarts, code that opens a new client for each " +
		"message or closes it after sending. Keep one client open for the application's life and let the SDK reconnect."
	v.Query = f.query(
		"extend p = parse_json(properties_s)",
		"summarize Connects = countif(OperationName == \"deviceConnect\"), Disconnects = countif(OperationName == \"deviceDisconnect\") by bin(TimeGenerated, 10m)",
		"order by TimeGenerated asc")
	f.explains(v, int(unexplained*float64(f.trouble)))
	return v
}

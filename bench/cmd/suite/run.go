package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/sas"
)

// hubName is the IoT Hub host name of the dev hub (and of the usernames
// every broker sees).
const hubName = "localhost"

// setup is what every broker run shares.
type setup struct {
	o         options
	cert, key string // for bare mochi and Mosquitto
	passwd    string // Mosquitto password file
	mosquitto string
	httpsAddr string // of the Tether started last
	expiry    int64  // se of every token
	logs      string
}

// result is everything one report needs.
type result struct {
	started  time.Time
	took     time.Duration
	env      string
	storms   map[string]map[string][]*stormrun.Result // mode → broker → one result per repetition
	pubs     map[string]*pubResult                    // broker → telemetry result
	idle     map[string]*holdResult                   // broker → -idle-n connections held
	scale    map[string]*holdResult                   // broker → -scale-n connections held
	storms2  map[string]*stormResult                  // throttled, off → the reconnect storm
	eventlat string                                   // eventlat's markdown
	errs     []string
}

func run(ctx context.Context, o options) (*result, error) {
	r := &result{started: time.Now(), storms: map[string]map[string][]*stormrun.Result{}, pubs: map[string]*pubResult{},
		idle: map[string]*holdResult{}, scale: map[string]*holdResult{}, storms2: map[string]*stormResult{}}
	s := &setup{o: o, logs: filepath.Join(o.work, "logs"),
		expiry: time.Now().Add(24 * time.Hour).Unix()}
	if err := os.MkdirAll(s.logs, 0o755); err != nil {
		return nil, err
	}
	tc, err := certs.EnsureDev(filepath.Join(o.work, "certs"), []string{"127.0.0.1", "localhost"})
	if err != nil || len(tc.Certificate) == 0 {
		return nil, fmt.Errorf("certificates: %v", err)
	}
	s.cert, s.key = filepath.Join(o.work, "certs", certs.ServerFile), filepath.Join(o.work, "certs", certs.ServerKeyFile)
	if contains(o.brokers, "mosquitto") {
		if s.mosquitto, err = exec.LookPath("mosquitto"); err != nil {
			if s.mosquitto, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
				return nil, fmt.Errorf("mosquitto is not installed (bench/run installs the Debian package)")
			}
		}
		if err := s.writePasswd(ctx); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"tether", "tether-prev"} {
		if contains(o.brokers, name) {
			if err := s.registerDevices(ctx, name); err != nil {
				return nil, err
			}
		}
	}
	for _, mode := range []string{"tcp", "tls12"} {
		r.storms[mode] = map[string][]*stormrun.Result{}
	}
	// The storms, repetition-major: each repetition runs every mode and
	// broker once, the brokers' order reversed every other repetition, so
	// every broker sees the same stretch of the machine's load and a
	// broker run first does not always get the quietest minute. The
	// telemetry test runs in the first repetition only.
	for rep := range max(o.reps, 1) {
		order := slices.Clone(o.brokers)
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, mode := range o.modes {
			for _, b := range order {
				if ctx.Err() != nil || !o.storms {
					break
				}
				res, pub, err := s.brokerRun(ctx, b, mode, rep)
				if err != nil {
					r.errs = append(r.errs, fmt.Sprintf("%s %s (repetition %d): %v", b, mode, rep+1, err))
					log.Printf("%s %s: %v", b, mode, err)
				}
				if res != nil {
					r.storms[mode][b] = append(r.storms[mode][b], res)
				}
				if pub != nil {
					r.pubs[b] = pub
				}
			}
		}
	}
	for _, t := range []struct {
		n   int
		out map[string]*holdResult
	}{{o.idleN, r.idle}, {o.scaleN, r.scale}} {
		for _, b := range o.brokers {
			if t.n <= 0 || ctx.Err() != nil {
				break
			}
			h, err := s.holdRun(ctx, b, t.n)
			if err != nil {
				r.errs = append(r.errs, fmt.Sprintf("%s holding %d: %v", b, t.n, err))
				log.Printf("%s holding %d: %v", b, t.n, err)
			}
			if h != nil {
				t.out[b] = h
			}
		}
	}
	for _, mode := range o.stormModes {
		if o.stormN <= 0 || !contains(o.brokers, "tether") || ctx.Err() != nil {
			break
		}
		sr, err := s.stormRun(ctx, mode == "throttled")
		if err != nil {
			r.errs = append(r.errs, fmt.Sprintf("storm %s: %v", mode, err))
			log.Printf("storm %s: %v", mode, err)
		}
		if sr != nil {
			r.storms2[mode] = sr
		}
	}
	if !o.skipEventLat && contains(o.brokers, "tether") && ctx.Err() == nil {
		md, err := s.eventLatency(ctx)
		if err != nil {
			r.errs = append(r.errs, "eventlat: "+err.Error())
		}
		r.eventlat = md
	}
	r.took = time.Since(r.started)
	return r, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (s *setup) token(i int) (user, pass string, err error) {
	id := stormrun.DeviceID(i)
	key, _ := stormrun.DeviceKeys(stormrun.DefaultSeed, id)
	pass, err = sas.Sign(sas.DeviceResource(hubName, id), key, "", time.Unix(s.expiry, 0))
	return hubName + "/" + id + "/?api-version=" + stormrun.APIVersion, pass, err
}

// writePasswd writes every device's username and token, then hashes the
// file in place with mosquitto_passwd -U.
func (s *setup) writePasswd(ctx context.Context) error {
	s.passwd = filepath.Join(s.o.work, "mosquitto.passwd")
	var b strings.Builder
	for i := range s.devices() {
		u, p, err := s.token(i)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", u, p)
	}
	if err := os.WriteFile(s.passwd, []byte(b.String()), 0o600); err != nil {
		return err
	}
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "mosquitto_passwd", "-U", s.passwd).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mosquitto_passwd -U: %v %s", err, out)
	}
	log.Printf("mosquitto password file: %d users hashed in %.1fs", s.devices(), time.Since(t0).Seconds())
	return nil
}

// dataDir is where Tether build name (tether, tether-prev) keeps its
// registry: each its own, as a previous build need not read a newer one's.
func (s *setup) dataDir(name string) string { return filepath.Join(s.o.work, name+"-data") }

// devices is how many bench devices the largest test connects.
func (s *setup) devices() int { return max(s.o.n, s.o.pubConns, s.o.idleN, s.o.scaleN, s.o.stormN) }

// registerDevices starts Tether build name once and registers bench-0…
// with the derived keys.
func (s *setup) registerDevices(ctx context.Context, name string) error {
	b, err := startTether(ctx, s, name, filepath.Join(s.logs, name+"-setup.log"))
	if err != nil {
		return err
	}
	defer b.stop()
	api, err := hubclient.FromDevDir(ctx, s.dataDir(name), "https://"+s.httpsAddr, 30*time.Second)
	if err != nil {
		return err
	}
	n := s.devices()
	devs := make([]hubclient.Device, n)
	for i := range devs {
		id := stormrun.DeviceID(i)
		k1, k2 := stormrun.DeviceKeys(stormrun.DefaultSeed, id)
		devs[i] = hubclient.Device{ID: id, PrimaryKey: k1, SecondaryKey: k2}
	}
	t0 := time.Now()
	if err := api.PutDevices(ctx, devs, 32, nil); err != nil {
		return err
	}
	log.Printf("%s: %d devices registered in %.1fs", name, n, time.Since(t0).Seconds())
	return nil
}

// start runs a fresh process of broker name.
func (s *setup) start(ctx context.Context, name, logPath string) (*broker, error) {
	switch name {
	case "tether", "tether-prev":
		return startTether(ctx, s, name, logPath)
	case "bare":
		return startBare(ctx, s, logPath)
	case "mosquitto":
		return startMosquitto(ctx, s, logPath)
	}
	return nil, fmt.Errorf("unknown broker %q", name)
}

// brokerRun starts a fresh broker, runs the connect storm against it and,
// over TLS in the first repetition, the telemetry test, and stops it.
func (s *setup) brokerRun(ctx context.Context, name, mode string, rep int) (*stormrun.Result, *pubResult, error) {
	withPub := rep == 0
	b, err := s.start(ctx, name, filepath.Join(s.logs, name+"-"+mode+".log"))
	if err != nil {
		return nil, nil, err
	}
	defer b.stop()
	addr := b.tcp
	if mode != "tcp" {
		addr = b.tls
	}
	resFile := filepath.Join(s.logs, fmt.Sprintf("%s-%s-%d.json", name, mode, time.Now().UnixNano()))
	log.Printf("connect storm: %s over %s, %d connections", name, mode, s.o.n)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, s.o.bin["connstorm"], "-broker", name, "-addr", addr, "-mode", mode,
		"-n", strconv.Itoa(s.o.n), "-c", strconv.Itoa(s.o.conc), "-pid", strconv.Itoa(b.pid), "-hub", hubName,
		"-expiry", strconv.FormatInt(s.expiry, 10), "-clean=true", "-hold", "3s",
		"-quiet-timeout", "30s", "-drain-timeout", "20s", "-phase-cap", "90s", "-out", resFile,
		"-linger", s.stormLinger(b).String())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	profiled := s.profileStorm(b, mode, rep)
	err = cmd.Run()
	profiled()
	if err != nil {
		return nil, nil, fmt.Errorf("connstorm: %w", err)
	}
	data, err := os.ReadFile(resFile)
	if err != nil {
		return nil, nil, err
	}
	var res stormrun.Result
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, nil, err
	}
	if mode == "tcp" || !withPub {
		return &res, nil, nil
	}
	log.Printf("telemetry: %s over TLS, %d connections × %d in flight for %s", name, s.o.pubConns, s.o.pubWindow, s.o.pubFor)
	pub, err := s.publish(ctx, b)
	if err != nil {
		return &res, nil, fmt.Errorf("telemetry: %w", err)
	}
	return &res, pub, nil
}

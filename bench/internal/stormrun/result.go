package stormrun

// Result is what one connstorm run measured; connstorm writes it as JSON and
// the driver aggregates it. Durations are in the unit their name says.
type Result struct {
	Broker       string `json:"broker"`
	Mode         string `json:"mode"` // tcp, tls12, tls13
	Addr         string `json:"addr"`
	N            int    `json:"n"`
	Concurrency  int    `json:"concurrency"`
	CleanSession bool   `json:"clean_session"`
	Sources      int    `json:"sources"` // loopback source addresses used

	// Negotiated TLS parameters of the first connection ("" for tcp).
	TLSVersion string `json:"tls_version,omitempty"`
	TLSCipher  string `json:"tls_cipher,omitempty"`
	TLSCurve   string `json:"tls_curve,omitempty"`
	TLSCertKey string `json:"tls_cert_key,omitempty"`

	QuietWaitS float64 `json:"quiet_wait_s"`
	Quiet      bool    `json:"quiet"`

	Connected  int               `json:"connected"`
	Failed     int               `json:"failed"`
	NotTried   int               `json:"not_tried"` // left when the connect phase hit its cap
	Failures   map[string]int    `json:"failures,omitempty"`
	FailSample map[string]string `json:"fail_sample,omitempty"`

	// With -retry (a reconnect storm): every attempt made, the failed
	// attempts that were retried by kind, and the Unix time (ms) of the
	// last CONNACK.
	Attempts      int            `json:"attempts,omitempty"`
	RetryFailures map[string]int `json:"retry_failures,omitempty"`
	LastConnack   int64          `json:"last_connack_ms,omitempty"`

	ConnectS       float64 `json:"connect_s"`      // first dial → last CONNACK
	ConnectsPerS   float64 `json:"connects_per_s"` // Connected / ConnectS
	LatP50ms       float64 `json:"lat_p50_ms"`     // dial start → CONNACK
	LatP99ms       float64 `json:"lat_p99_ms"`
	LatMaxms       float64 `json:"lat_max_ms"`
	ListenOverflow int64   `json:"listen_overflows"` // TcpExt ListenOverflows delta over the connect phase

	ServerCPUms        float64 `json:"server_cpu_ms"` // utime+stime, first dial → last CONNACK
	ServerCPUusPerConn float64 `json:"server_cpu_us_per_conn"`
	HoldCPUms          float64 `json:"hold_cpu_ms"` // server CPU while all connections were held idle
	ClientCPUusPerConn float64 `json:"client_cpu_us_per_conn"`
	// Machine-wide CPU in use during the connect phase, in cores, and the
	// part of it that was neither the broker nor this client (other load on
	// the shared machine).
	BusyCores  float64 `json:"busy_cores"`
	OtherCores float64 `json:"other_cores"`

	RSSBeforeKiB    int64   `json:"rss_before_kib"`
	RSSHeldKiB      int64   `json:"rss_held_kib"`
	RSSKiBPerConn   float64 `json:"rss_kib_per_conn"`
	RSSGCKiB        int64   `json:"rss_gc_kib,omitempty"` // after the broker's own GC on SIGUSR1 (bare mochi only)
	RSSGCKiBPerConn float64 `json:"rss_gc_kib_per_conn,omitempty"`
	HoldS           float64 `json:"hold_s"`
	// After the hold the client waits (bounded) until the broker is idle:
	// SettleCPUms is the broker's CPU from the last CONNACK until then.
	SettleS       float64 `json:"settle_s"`
	Settled       bool    `json:"settled"`
	SettleCPUms   float64 `json:"settle_cpu_ms"`
	RSSSettledKiB int64   `json:"rss_settled_kib"`
	// The connects' whole cost: the broker's CPU from the first dial
	// until it was idle again (Settled), less what the broker burns when
	// nothing happens (IdleBaseCores, read before the storm, times that
	// span). Work a connect leaves behind (a journal store, a log flush,
	// consumers catching up, GC) is in it whenever it runs.
	IdleBaseCores               float64 `json:"idle_base_cores"`
	UntilIdleS                  float64 `json:"until_idle_s"`
	ServerCPUUntilIdleUsPerConn float64 `json:"server_cpu_until_idle_us_per_conn"`

	// From the broker's /debug/pprof (when given): before the storm and
	// once idle after it, all connections still held. No GC is forced.
	GoroutinesBefore    int64 `json:"goroutines_before,omitempty"`
	GoroutinesHeld      int64 `json:"goroutines_held,omitempty"`
	HeapInuseBeforeKiB  int64 `json:"heap_inuse_before_kib,omitempty"`
	HeapInuseHeldKiB    int64 `json:"heap_inuse_held_kib,omitempty"`
	StackInuseBeforeKiB int64 `json:"stack_inuse_before_kib,omitempty"`
	StackInuseHeldKiB   int64 `json:"stack_inuse_held_kib,omitempty"`

	FDsBefore   int     `json:"fds_before"`
	FDsHeld     int     `json:"fds_held"`
	FDsAfter    int     `json:"fds_after"`
	CloseS      float64 `json:"close_s"` // client time to close all its connections
	Drained     bool    `json:"drained"`
	DrainS      float64 `json:"drain_s"`
	DrainCPUms  float64 `json:"drain_cpu_ms"` // server CPU from close until drained
	ServerAlive bool    `json:"server_alive"` // broker process still there at the end
}

// DriveEvent is one line (JSON) that connstorm in driven mode (-drive)
// writes on stdout, in answer to its driver's commands on stdin: "ready"
// once its CONNECT packets are built, "connected" after the connect phase,
// "stats" on request and "closed" at the end.
type DriveEvent struct {
	Event string `json:"event"`
	// Result holds the connect figures (counts, failures, rate, CONNACK
	// latency, TLS parameters) on "connected"; broker readings stay zero,
	// the driver takes them.
	Result *Result `json:"result,omitempty"`
	// Since "connected": PINGREQs sent, PINGRESPs read, connections that
	// failed (no PINGRESP, a read or write error) before the close.
	Pings int64 `json:"pings"`
	Pongs int64 `json:"pongs"`
	Lost  int64 `json:"lost"`
	// On "closed": connections the broker closed (EOF or reset) within
	// 20 s of their DISCONNECT, of those still open at the close.
	ClosedByBroker int64 `json:"closed_by_broker"`
}

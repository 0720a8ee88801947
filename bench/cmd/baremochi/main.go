// Command baremochi is the benchmark baseline: mochi-mqtt v2 as it comes, with
// an allow-all auth hook (mochi's auth.AllowHook) and nothing else, MaximumClientWritesPending = 64
// (as Tether sets it), a plain and a TLS listener. It prints one ready line,
//
//	READY pid=<pid> tcp=<addr> tls=<addr>
//
// on stdout once both listeners accept, and stops on SIGINT/SIGTERM. SIGUSR1
// runs a GC and returns freed memory to the OS, so a client can read a
// post-GC RSS after it has taken every other number. -debug-addr serves
// /debug/pprof, as Tether's --debug-addr does.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	tcpAddr := flag.String("tcp", "127.0.0.1:11883", "plain MQTT listen address (\"\" = none)")
	tlsAddr := flag.String("tls", "127.0.0.1:18883", "MQTT over TLS listen address (\"\" = none)")
	certFile := flag.String("cert", "", "server certificate chain, PEM (required with -tls)")
	keyFile := flag.String("key", "", "server private key, PEM (required with -tls)")
	pending := flag.Int("pending", 64, "Capabilities.MaximumClientWritesPending")
	debugAddr := flag.String("debug-addr", "", "serve /debug/pprof on this plain-HTTP address (off unless set)")
	flag.Parse()
	if *debugAddr != "" {
		ln, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(ln, nil) // net/http/pprof registers on the default mux
	}

	opts := &mqtt.Options{Capabilities: mqtt.NewDefaultServerCapabilities()}
	opts.Capabilities.MaximumClientWritesPending = int32(*pending)
	srv := mqtt.New(opts) // default logger (INFO): nothing is logged per connect
	if err := srv.AddHook(new(allowHook), nil); err != nil {
		log.Fatal(err)
	}
	if *tcpAddr != "" {
		if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: *tcpAddr})); err != nil {
			log.Fatal(err)
		}
	}
	if *tlsAddr != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("tls: %v", err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}} // Go defaults otherwise
		if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: *tlsAddr, TLSConfig: cfg})); err != nil {
			log.Fatal(err)
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)

	// AddListener has already bound the sockets (Init), so connects queue
	// in the backlog from here on; Serve starts the accept loops.
	if err := srv.Serve(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("READY pid=%d tcp=%s tls=%s\n", os.Getpid(), *tcpAddr, *tlsAddr)

	for s := range sigs {
		if s == syscall.SIGUSR1 {
			runtime.GC()
			debug.FreeOSMemory()
			continue
		}
		slog.Info("stopping", "signal", s.String())
		_ = srv.Close()
		return
	}
}

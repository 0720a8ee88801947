package journal

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// routeAddrs returns n loopback addresses free a moment ago (127.0.0.21…).
func routeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", 21+i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().String())
		defer l.Close()
	}
	return out
}

// startMember starts a NATS server with a cluster member's options (no
// JetStream: the routes are what is tested).
func startMember(t *testing.T, o *ClusterOptions) *server.Server {
	t.Helper()
	opts := &server.Options{NoLog: true, NoSigs: true}
	if err := o.apply(opts); err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("%s did not start", o.NodeName)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// routeHandshake connects to a route listener as a route would, with
// connect as its CONNECT line, and returns what the server answers.
func routeHandshake(t *testing.T, addr, connect string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	info, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(info, "INFO ") {
		t.Fatalf("route listener %s: %q, %v; want its INFO", addr, info, err)
	}
	if _, err := c.Write([]byte(connect + "\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		line, err := r.ReadString('\n')
		if line = strings.TrimSpace(line); line != "" {
			got = append(got, line)
		}
		if err != nil || line == "PONG" || strings.HasPrefix(line, "-ERR") {
			return strings.Join(got, " | ")
		}
	}
}

// The route listener of a member takes only routes that present the
// cluster's secret: two members with it form their route; a route without
// it or with another is refused (Authorization Violation), and a server
// with the wrong secret never joins.
func TestClusterRoutesNeedTheSecret(t *testing.T) {
	addrs := routeAddrs(t, 3)
	const secret = "0123456789abcdef-route"
	member := func(name string, i int, secret string, peers ...int) *server.Server {
		var ps []string
		for _, p := range peers {
			ps = append(ps, addrs[p])
		}
		return startMember(t, &ClusterOptions{Name: "auth", NodeName: name, Listen: addrs[i], Peers: ps, Secret: secret})
	}
	a := member("a", 0, secret, 1)
	b := member("b", 1, secret, 0)
	deadline := time.Now().Add(20 * time.Second)
	for a.NumRoutes() == 0 || b.NumRoutes() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("members with the same secret formed no route: a %d, b %d", a.NumRoutes(), b.NumRoutes())
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, tc := range []struct{ name, connect string }{
		{"no credentials", `CONNECT {"verbose":false,"pedantic":false,"name":"intruder"}`},
		{"wrong secret", fmt.Sprintf(`CONNECT {"verbose":false,"pedantic":false,"user":%q,"pass":"not-the-secret-at-all","name":"intruder"}`, routeUser)},
	} {
		if got := routeHandshake(t, addrs[0], tc.connect); !strings.Contains(got, "Authorization Violation") {
			t.Errorf("%s: the route listener answered %q, want an Authorization Violation", tc.name, got)
		}
	}
	// The right secret passes the same handshake (the test's own
	// control: the refusals above are the secret's doing).
	ok := routeHandshake(t, addrs[0], fmt.Sprintf(`CONNECT {"verbose":false,"pedantic":false,"user":%q,"pass":%q,"name":"z","cluster":"auth"}`, routeUser, secret))
	if strings.Contains(ok, "-ERR") {
		t.Errorf("with the secret: %q", ok)
	}

	c := member("c", 2, "another-secret-of-16-bytes", 0)
	time.Sleep(3 * time.Second) // a route retries every second
	if n := c.NumRoutes(); n != 0 {
		t.Errorf("a member with another secret has %d routes", n)
	}
	rz, err := a.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rz.Routes {
		if r.RemoteName != "b" {
			t.Errorf("a has a route to %q", r.RemoteName)
		}
	}
}

func TestClusterOptionsWantASecret(t *testing.T) {
	o := &ClusterOptions{Name: "x", NodeName: "n1", Listen: "127.0.0.1:6222", Peers: []string{"127.0.0.1:6223"}, Secret: "short"}
	if err := o.Check(); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("a 5-byte secret: %v", err)
	}
	o.Secret = strings.Repeat("s", MinSecretLen)
	if err := o.Check(); err != nil {
		t.Errorf("a %d-byte secret: %v", MinSecretLen, err)
	}
}

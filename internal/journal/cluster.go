package journal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterOptions make the embedded NATS server one member of a JetStream
// cluster of Tether nodes: no separate servers to run. Every node names
// the others in Peers; the cluster forms once a majority is up, and the
// streams and buckets are created with one replica per node (at most 3).
type ClusterOptions struct {
	// Name of the cluster; every member uses the same.
	Name string
	// NodeName is this server's name, unique in the cluster; it also
	// names the node's Raft identity, so it must stay the same across
	// restarts of the node (with the same data dir).
	NodeName string
	// Listen is host:port of this node's cluster (route) listener.
	Listen string
	// Peers are the host:port route listeners of the other members.
	Peers []string
	// Secret authenticates the routes: every member's route listener
	// accepts only a route that presents it, and presents it to its
	// peers. The same on every member; at least MinSecretLen bytes.
	// (Plain TCP: it keeps out whoever reaches the port without it, not
	// an eavesdropper on the network between the nodes.)
	Secret string

	token string // the client listener's (apply)
}

// Check reports what is wrong with o.
func (o *ClusterOptions) Check() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("--cluster-name is needed for a cluster"))
	}
	if o.NodeName == "" {
		errs = append(errs, errors.New("a node name is needed for a cluster (--node-name)"))
	}
	if _, _, err := splitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-listen %q: %w", o.Listen, err))
	}
	if len(o.Secret) < MinSecretLen {
		errs = append(errs, fmt.Errorf("the cluster's route listener needs a shared secret of at least %d bytes, the same on every node (--cluster-secret-file, or TETHER_CLUSTER_SECRET); without it anyone who reaches --cluster-listen could join the cluster and read its journal", MinSecretLen))
	}
	if len(o.Peers) == 0 {
		errs = append(errs, errors.New("--cluster-peers: name at least one other node's cluster address"))
	}
	for _, p := range o.Peers {
		if _, _, err := splitHostPort(p); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-peers %q: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number 0…65535", p)
	}
	return h, port, nil
}

// MinSecretLen is the shortest route secret a member accepts.
const MinSecretLen = 16

// routeUser is the user name of the routes between members (the secret
// is their password).
const routeUser = "tether-route"

// replicas is how many copies the cluster keeps: one per member, at most
// three (R3 survives one lost node; more only costs writes).
func (o *ClusterOptions) replicas() int { return min(len(o.Peers)+1, 3) }

// apply sets the server options of a cluster member.
func (o *ClusterOptions) apply(opts *server.Options) error {
	if err := o.Check(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	o.token = hex.EncodeToString(b[:])
	host, port, _ := splitHostPort(o.Listen)
	opts.ServerName = o.NodeName
	// The server starts its routes only once its client listener is up
	// (nats-server's StartRouting), so a member listens for clients: on
	// a random loopback port, behind a token only this process knows.
	opts.DontListen = false
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.Authorization = o.token
	opts.Cluster = server.ClusterOpts{Name: o.Name, Host: host, Port: port,
		Username: routeUser, Password: o.Secret}
	for _, p := range o.Peers {
		u, err := url.Parse("nats-route://" + p)
		if err != nil {
			return fmt.Errorf("journal: --cluster-peers %q: %w", p, err)
		}
		u.User = url.UserPassword(routeUser, o.Secret)
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// UntilReady runs op (a stream or bucket creation) until it succeeds,
// retrying, on a cluster, what a forming cluster answers: several nodes
// creating the same stream at once may see their requests go unanswered.
func (j *Journal) UntilReady(ctx context.Context, op func(context.Context) error) error {
	if j.Replicas <= 1 {
		return op(ctx)
	}
	return untilClusterReady(ctx, op)
}

// untilClusterReady runs op until it succeeds, retrying the errors of a
// JetStream cluster that is still forming (no meta leader yet, too few
// peers up for the replicas), until ctx ends.
func untilClusterReady(ctx context.Context, op func(context.Context) error) error {
	for {
		// A request sent before the cluster had a meta leader is never
		// answered: each attempt gets a few seconds, not all of ctx.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := op(actx)
		cancel()
		if os.Getenv("TETHER_NATS_LOG") != "" && err != nil {
			fmt.Fprintln(os.Stderr, "journal: cluster not ready:", err)
		}
		if err == nil || !forming(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (is a majority of the cluster's nodes up?)", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// forming reports whether err is one a forming cluster returns.
func forming(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		// not enabled yet, cluster not available, no suitable peers,
		// insufficient resources, replicas > peers
		case jetstream.JSErrCodeJetStreamNotEnabled, 10008, 10005, 10023, 10074:
			return true
		}
	}
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "no suitable peers") || strings.Contains(msg, "insufficient resources") ||
		strings.Contains(msg, "cluster not available") || strings.Contains(msg, "no responders") || strings.Contains(msg, "timeout")
}

// waitStreamLeaders waits until every named stream (the buckets' too)
// has a leader. A replicated stream just created or recovered elects its
// own leader after the meta leader answered its creation; until then its
// reads and writes go unanswered, and the first readers of a starting node
// (its start epoch, the insight feed, the metrics) failed on that with
// "no responders" or a timeout.
func (j *Journal) waitStreamLeaders(ctx context.Context, names []string) error {
	for _, name := range names {
		for {
			var info *jetstream.StreamInfo
			err := untilClusterReady(ctx, func(ctx context.Context) error {
				st, err := j.JS.Stream(ctx, name)
				if err == nil {
					info, err = st.Info(ctx)
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("journal: stream %s: %w", name, err)
			}
			if info.Cluster == nil || info.Cluster.Leader != "" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("journal: stream %s has no leader (is a majority of the cluster's nodes up?): %w", name, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitMetaLeader waits until the server is current with the cluster's
// JetStream meta leader (a majority of the members is up).
func waitMetaLeader(ctx context.Context, srv *server.Server) error {
	for !srv.JetStreamIsCurrent() || srv.JetStreamIsLeader() == false && metaLeader(srv) == "" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("journal: the JetStream cluster has no leader (is a majority of the cluster's nodes up?): %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func metaLeader(srv *server.Server) string {
	jsz, err := srv.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return ""
	}
	return jsz.Meta.Leader
}

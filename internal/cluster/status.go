package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is what `tether cluster status` shows.
type Status struct {
	Node    string         `json:"node"` // the node that answered
	Lease   string         `json:"lease"`
	Nodes   []NodeStatus   `json:"nodes"`
	Leaders []LeaderStatus `json:"leaders"`
	Streams []StreamStatus `json:"streams"`
	// StreamsError says why the streams could not be listed (no meta
	// leader for a moment after a node was lost, for one).
	StreamsError string `json:"streamsError,omitempty"`
}

// NodeStatus is one node: its lease (if it holds one) and the devices
// the owner records give it.
type NodeStatus struct {
	Node    string            `json:"node"`
	Alive   bool              `json:"alive"`
	Boot    string            `json:"boot,omitempty"`
	Started time.Time         `json:"started,omitzero"`
	Seen    time.Time         `json:"seen,omitzero"`
	Devices int               `json:"devices"`
	Info    map[string]string `json:"info,omitempty"`
}

// LeaderStatus names the node running a shared job.
type LeaderStatus struct {
	Job  string `json:"job"`
	Node string `json:"node"` // "" while none holds it
}

// StreamStatus is a stream's (or bucket's) replication health.
type StreamStatus struct {
	Name     string       `json:"name"`
	Replicas int          `json:"replicas"`
	Leader   string       `json:"leader"`
	Peers    []PeerStatus `json:"peers,omitempty"`
	Messages uint64       `json:"messages"`
	Bytes    uint64       `json:"bytes"`
}

// PeerStatus is a replica that is not the leader.
type PeerStatus struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Offline bool   `json:"offline,omitempty"`
	Lag     uint64 `json:"lag,omitempty"`
}

// Live reads the lease of every node holding one, by node name: the
// cheap part of Status, for callers that only ask who is alive.
func (n *Node) Live(ctx context.Context) (map[string]Lease, error) {
	keys, err := n.nodes.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: listing nodes: %w", err)
	}
	live := map[string]Lease{}
	for k := range keys.Keys() {
		l, ok, err := n.lease(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			live[k] = l
		}
	}
	return live, nil
}

// Status gathers the cluster's state as this node sees it.
func (n *Node) Status(ctx context.Context) (Status, error) {
	st := Status{Node: n.o.Node, Lease: n.o.Lease.String()}
	counts := n.Owners()
	seen := map[string]bool{}
	live, err := n.Live(ctx)
	if err != nil {
		return st, err
	}
	for k, l := range live {
		seen[k] = true
		st.Nodes = append(st.Nodes, NodeStatus{Node: k, Alive: true, Boot: l.Boot, Started: l.Started, Seen: l.Seen, Devices: counts[k], Info: l.Info})
	}
	for node, c := range counts {
		if !seen[node] {
			st.Nodes = append(st.Nodes, NodeStatus{Node: node, Devices: c})
		}
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Node < st.Nodes[j].Node })
	for _, job := range Jobs {
		ls := LeaderStatus{Job: job}
		if e, err := n.leaders.Get(ctx, job); err == nil {
			ls.Node = string(e.Value())
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return st, fmt.Errorf("cluster: leader of %s: %w", job, err)
		}
		st.Leaders = append(st.Leaders, ls)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	names := n.o.JS.StreamNames(sctx)
	for name := range names.Name() {
		s, err := n.o.JS.Stream(sctx, name)
		if err != nil {
			continue
		}
		info, err := s.Info(sctx)
		if err != nil {
			continue
		}
		ss := StreamStatus{Name: name, Replicas: info.Config.Replicas, Messages: info.State.Msgs, Bytes: info.State.Bytes}
		if c := info.Cluster; c != nil {
			ss.Leader = c.Leader
			for _, p := range c.Replicas {
				ss.Peers = append(ss.Peers, PeerStatus{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag})
			}
		}
		st.Streams = append(st.Streams, ss)
	}
	if err := names.Err(); err != nil {
		st.StreamsError = err.Error()
	}
	sort.Slice(st.Streams, func(i, j int) bool { return st.Streams[i].Name < st.Streams[j].Name })
	return st, nil
}

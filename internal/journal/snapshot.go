package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream snapshots (backup and restore) use JetStream's own API, which
// nats.go does not wrap:
//
//	$JS.API.STREAM.SNAPSHOT.<stream> {"deliver_subject":…}  → {"config":…,"state":…}
//	   chunks of the snapshot (S2-compressed tar of the stream's files and
//	   its consumers' state) arrive on deliver_subject, each acked by an
//	   empty reply; an empty message with status 204 ends it (408/500: failed)
//	$JS.API.STREAM.RESTORE.<stream> {"config":…,"state":…} → {"deliver_subject":…}
//	   each chunk is a request to deliver_subject (empty answer: taken);
//	   an empty request ends it and is answered with the stream's info
//
// A snapshot is the stream at one instant (the server copies its blocks
// under the stream's lock and streams the copy), consumers included, so a
// restored consumer resumes where it was. The server keeps writing to the
// stream meanwhile.

// SnapshotInfo describes a stream snapshot: the stream's configuration and
// state as the server reported them, kept as raw JSON and given back to
// the server unchanged on restore.
type SnapshotInfo struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
	// Messages and LastSeq are read from State, for reports.
	Messages uint64 `json:"messages"`
	LastSeq  uint64 `json:"lastSeq"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d/%d)", e.Description, e.Code, e.ErrCode) }

// snapshotChunk is the chunk size asked for: the server's default.
const snapshotChunk = 128 << 10

// SnapshotStream writes a snapshot of stream name to w.
func SnapshotStream(ctx context.Context, nc *nats.Conn, name string, w io.Writer) (SnapshotInfo, error) {
	info := SnapshotInfo{Name: name}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return info, err
	}
	defer sub.Unsubscribe()
	// The server sends up to its 8 MiB window before it waits for acks.
	_ = sub.SetPendingLimits(-1, 64<<20)
	req, _ := json.Marshal(server.JSApiStreamSnapshotRequest{DeliverSubject: inbox, ChunkSize: snapshotChunk})
	resp, err := nc.RequestWithContext(ctx, fmt.Sprintf(server.JSApiStreamSnapshotT, name), req)
	if err != nil {
		return info, fmt.Errorf("journal: snapshot of %s: %w", name, err)
	}
	var answer struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(resp.Data, &answer); err != nil {
		return info, fmt.Errorf("journal: snapshot of %s: answer %q: %w", name, resp.Data, err)
	}
	if answer.Error != nil {
		return info, fmt.Errorf("journal: snapshot of %s: %w", name, answer.Error)
	}
	info.Config, info.State = answer.Config, answer.State
	info.Messages, info.LastSeq = stateCounts(answer.State)
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return info, fmt.Errorf("journal: snapshot of %s: %w", name, err)
		}
		if len(m.Data) == 0 {
			// The end: 204 after chunks, no header for an empty one.
			if st := m.Header.Get("Status"); st != "" && st != "204" {
				return info, fmt.Errorf("journal: snapshot of %s failed: %s %s", name, st, m.Header.Get("Description"))
			}
			return info, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return info, fmt.Errorf("journal: snapshot of %s: %w", name, err)
		}
		if m.Reply != "" {
			if err := m.Respond(nil); err != nil {
				return info, fmt.Errorf("journal: snapshot of %s: ack: %w", name, err)
			}
		}
	}
}

func stateCounts(state json.RawMessage) (msgs, last uint64) {
	var st struct {
		Msgs    uint64 `json:"messages"`
		LastSeq uint64 `json:"last_seq"`
	}
	_ = json.Unmarshal(state, &st)
	return st.Msgs, st.LastSeq
}

// ErrStreamExists: a restore never replaces a stream.
var ErrStreamExists = errors.New("stream already exists")

// RestoreStream creates stream info.Name from a snapshot read from r. The
// stream must not exist. config, when not nil, replaces info.Config (e.g.
// with fewer replicas).
func RestoreStream(ctx context.Context, nc *nats.Conn, info SnapshotInfo, config json.RawMessage, r io.Reader) error {
	if config == nil {
		config = info.Config
	}
	req, err := json.Marshal(map[string]json.RawMessage{"config": config, "state": info.State})
	if err != nil {
		return err
	}
	resp, err := nc.RequestWithContext(ctx, fmt.Sprintf(server.JSApiStreamRestoreT, info.Name), req)
	if err != nil {
		return fmt.Errorf("journal: restore of %s: %w", info.Name, err)
	}
	var answer struct {
		Error          *apiError `json:"error"`
		DeliverSubject string    `json:"deliver_subject"`
	}
	if err := json.Unmarshal(resp.Data, &answer); err != nil {
		return fmt.Errorf("journal: restore of %s: answer %q: %w", info.Name, resp.Data, err)
	}
	if answer.Error != nil {
		if answer.Error.ErrCode == int(server.JSStreamNameExistRestoreFailedErr) {
			return fmt.Errorf("journal: restore of %s: %w", info.Name, ErrStreamExists)
		}
		return fmt.Errorf("journal: restore of %s: %w", info.Name, answer.Error)
	}
	buf := make([]byte, snapshotChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			ack, err := nc.RequestWithContext(ctx, answer.DeliverSubject, buf[:n])
			if err != nil {
				return fmt.Errorf("journal: restore of %s: %w", info.Name, err)
			}
			if len(ack.Data) > 0 {
				if err := restoreAnswer(ack.Data); err != nil {
					return fmt.Errorf("journal: restore of %s: %w", info.Name, err)
				}
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("journal: restore of %s: reading the snapshot: %w", info.Name, rerr)
		}
	}
	done, err := nc.RequestWithContext(ctx, answer.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("journal: restore of %s: %w", info.Name, err)
	}
	if err := restoreAnswer(done.Data); err != nil {
		return fmt.Errorf("journal: restore of %s: %w", info.Name, err)
	}
	return nil
}

func restoreAnswer(data []byte) error {
	var a struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("answer %q: %w", data, err)
	}
	if a.Error != nil {
		return a.Error
	}
	return nil
}

// streamMetaOwner marks the streams event subscriptions own
// (events/delivery's streamMetaKey).
const streamMetaOwner = "tether-subscription"

// TetherStreams lists the streams a Tether hub keeps: its journal streams
// and KV buckets, diagnostic settings' streams and the streams event
// subscriptions own. On an external NATS the account may hold others',
// which a backup leaves alone.
func TetherStreams(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	var names []string
	l := js.ListStreams(ctx)
	for si := range l.Info() {
		n := si.Config.Name
		if strings.HasPrefix(n, "TETHER_") || strings.HasPrefix(n, "KV_tether_") || si.Config.Metadata[streamMetaOwner] != "" {
			names = append(names, n)
		}
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("journal: listing streams: %w", err)
	}
	return names, nil
}

// Server is an embedded NATS server on a data dir with nothing set up: a
// restore fills it. Close stops it.
type Server struct {
	NC  *nats.Conn
	srv *server.Server
}

// OpenServer starts the embedded server of dataDir without creating any
// stream.
func OpenServer(ctx context.Context, dataDir string) (*Server, error) {
	srv, err := startEmbedded(ctx, dataDir, false, nil)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("tether-restore"))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("journal: connect: %w", err)
	}
	return &Server{NC: nc, srv: srv}, nil
}

// Close flushes and stops the server.
func (s *Server) Close() {
	_ = s.NC.Flush()
	s.NC.Close()
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

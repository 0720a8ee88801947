package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tether-hub/tether/internal/backup"
	"github.com/tether-hub/tether/internal/datadir"
	"github.com/tether-hub/tether/internal/journal"
)

// fixture is a journal with data and two files, one a JSON-lines file
// whose last line is being written.
type fixture struct {
	dir string
	j   *journal.Journal
	src backup.Source
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	j, err := journal.Open(ctx, journal.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	for i := range 20 {
		if _, err := j.JS.Publish(ctx, journal.ConnPrefix+fmt.Sprintf("d%d.connected", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Policies.Put(ctx, "b3duZXI", []byte(`{"keyName":"owner"}`)); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "alerts"), 0o700)
	os.WriteFile(filepath.Join(dir, "alerts", "history.jsonl"), []byte("{\"a\":1}\n{\"a\":2}\n{\"a\":"), 0o600)
	os.MkdirAll(filepath.Join(dir, "archive", "s", "y=2026"), 0o700)
	os.WriteFile(filepath.Join(dir, "archive", "s", "y=2026", "PT1H.json"), []byte("{\"r\":1}\n"), 0o600)
	archive, err := backup.DirParts("archive", filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, j: j, src: backup.Source{
		NC: j.NC, JS: j.JS, Hub: "hub.example", StageDir: dir,
		AfterJournal: append([]backup.Part{
			backup.FilePart("alerts/history.jsonl", filepath.Join(dir, "alerts", "history.jsonl"), true),
			backup.FilePart("ca.pem", filepath.Join(dir, "ca.pem"), false), // absent: skipped
		}, archive...),
	}}
}

func TestTakeVerifyRestore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	to := filepath.Join(t.TempDir(), "b1")
	w, err := backup.NewDirWriter(to)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backup.Take(ctx, f.src, w)
	if err != nil {
		t.Fatal(err)
	}
	if m.Hub != "hub.example" || m.DataDirFormat != datadir.Current || m.Finished.Before(m.Started) {
		t.Fatalf("manifest %+v", m)
	}
	names := map[string]bool{}
	for _, s := range m.Streams {
		names[s.Name] = true
	}
	for _, want := range []string{journal.StreamConn, "KV_tether_policies", "KV_tether_devices"} {
		if !names[want] {
			t.Errorf("stream %s not in the backup (%v)", want, names)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(to, "alerts", "history.jsonl")); string(b) != "{\"a\":1}\n{\"a\":2}\n" {
		t.Errorf("history copied as %q (the half-written line must go)", b)
	}
	if _, err := os.Stat(filepath.Join(to, "archive", "s", "y=2026", "PT1H.json")); err != nil {
		t.Errorf("archive file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(to, "ca.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an absent optional file was backed up: %v", err)
	}
	if ents, _ := filepath.Glob(filepath.Join(f.dir, ".backup-*")); len(ents) != 0 {
		t.Errorf("staging left behind: %v", ents)
	}
	if _, err := backup.Verify(to); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.NewDirWriter(to); err == nil {
		t.Error("a second backup into a full directory")
	}

	// Restore into a new data dir: the journal opens with the data.
	dataDir := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, to, backup.RestoreOptions{DataDir: dataDir}); err != nil {
		t.Fatal(err)
	}
	if info, fresh, err := datadir.ReadFormat(dataDir); err != nil || fresh || info.Format != datadir.Current {
		t.Fatalf("restored format: %+v %v %v", info, fresh, err)
	}
	if fi, _ := os.Stat(dataDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("restored data dir mode %v", fi.Mode().Perm())
	}
	j2, err := journal.Open(ctx, journal.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	st, err := j2.JS.Stream(ctx, journal.StreamConn)
	if err != nil || st.CachedInfo().State.Msgs != 20 {
		t.Fatalf("restored stream: %v", err)
	}
	if e, err := j2.Policies.Get(ctx, "b3duZXI"); err != nil || string(e.Value()) != `{"keyName":"owner"}` {
		t.Fatalf("restored KV: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dataDir, "archive", "s", "y=2026", "PT1H.json")); string(b) != "{\"r\":1}\n" {
		t.Errorf("restored archive %q", b)
	}

	// Nothing is overwritten.
	if _, err := backup.Restore(ctx, to, backup.RestoreOptions{DataDir: dataDir}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore over a data dir: %v", err)
	}
	// A damaged backup is refused before anything is written.
	os.WriteFile(filepath.Join(to, "alerts", "history.jsonl"), []byte("tampered\n"), 0o600)
	os.Remove(filepath.Join(to, "jetstream", "KV_tether_policies.snap"))
	other := filepath.Join(t.TempDir(), "other")
	_, err = backup.Restore(ctx, to, backup.RestoreOptions{DataDir: other})
	if err == nil || !strings.Contains(err.Error(), "alerts/history.jsonl differs") || !strings.Contains(err.Error(), "KV_tether_policies.snap is missing") {
		t.Fatalf("damaged backup: %v", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore left %s", other)
	}
}

// The tar stream (the API's answer) extracts to the same backup; a stream
// cut short is refused and leaves nothing.
func TestTarRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var buf bytes.Buffer
	tw := backup.NewTarWriter(&buf)
	m, err := backup.Take(ctx, f.src, tw)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "x")
	got, err := backup.Extract(bytes.NewReader(buf.Bytes()), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != len(m.Files) || got.Started != m.Started {
		t.Fatalf("extracted manifest differs")
	}
	if _, err := backup.Verify(dir); err != nil {
		t.Fatal(err)
	}
	// Cut anywhere: inside a file, between files, inside the manifest.
	inManifest := bytes.Index(buf.Bytes(), []byte(`"tetherBackup"`)) + 20
	for _, at := range []int{100, buf.Len() / 4, buf.Len() / 2, inManifest} {
		cut := filepath.Join(t.TempDir(), "cut")
		_, err = backup.Extract(bytes.NewReader(buf.Bytes()[:at]), cut)
		if !errors.Is(err, backup.ErrIncomplete) {
			t.Fatalf("stream cut at %d of %d: %v", at, buf.Len(), err)
		}
		if _, err := os.Stat(cut); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a cut stream left %s", cut)
		}
	}
}

func TestExtractRefusesEscapingNames(t *testing.T) {
	for _, name := range []string{"../evil", "/etc/evil", "a/../../evil", "a\\b"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o600})
		tw.Write([]byte("x"))
		tw.Close()
		dir := filepath.Join(t.TempDir(), "d")
		if _, err := backup.Extract(&buf, dir); err == nil || !strings.Contains(err.Error(), "not a plain relative path") {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// With an external NATS, the streams go there (never over existing ones)
// and the data dir gets the files.
func TestRestoreToExternalNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFixture(t)
	to := filepath.Join(t.TempDir(), "b")
	w, _ := backup.NewDirWriter(to)
	if _, err := backup.Take(ctx, f.src, w); err != nil {
		t.Fatal(err)
	}
	_, url := externalNATS(t)
	if _, err := backup.Restore(ctx, to, backup.RestoreOptions{DataDir: filepath.Join(t.TempDir(), "d1"), NATSURL: url}); err != nil {
		t.Fatal(err)
	}
	// Again: every stream exists now; refused, nothing half-done.
	d2 := filepath.Join(t.TempDir(), "d2")
	_, err := backup.Restore(ctx, to, backup.RestoreOptions{DataDir: d2, NATSURL: url})
	if !errors.Is(err, journal.ErrStreamExists) {
		t.Fatalf("second restore: %v", err)
	}
	if _, err := os.Stat(d2); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused restore left its data dir")
	}
}

// FuzzExtract: any byte stream extracts into the directory or fails
// cleanly, never writing outside it.
func FuzzExtract(f *testing.F) {
	var ok bytes.Buffer
	tw := tar.NewWriter(&ok)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a/b", Size: 2, Mode: 0o600})
	tw.Write([]byte("hi"))
	man := []byte(`{"tetherBackup":1,"files":[{"path":"a/b","size":2,"sha256":"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"}]}`)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: backup.ManifestFile, Size: int64(len(man)), Mode: 0o600})
	tw.Write(man)
	tw.Close()
	f.Add(ok.Bytes())
	f.Add(ok.Bytes()[:700])
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "x")
		_, err := backup.Extract(bytes.NewReader(data), dir)
		ents, _ := os.ReadDir(root)
		if err != nil && len(ents) != 0 {
			t.Fatalf("failed extract left %v", ents)
		}
		if len(ents) > 1 || len(ents) == 1 && ents[0].Name() != "x" {
			t.Fatalf("extract wrote outside its directory: %v", ents)
		}
	})
}

// externalNATS runs a NATS server with JetStream on a loopback port.
func externalNATS(t *testing.T) (*server.Server, string) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	return ns, ns.ClientURL()
}

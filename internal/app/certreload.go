package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultCertCheckEvery is how often the hub looks at --tls-cert and
// --tls-key for a renewed certificate.
const DefaultCertCheckEvery = 10 * time.Second

// certReloader serves the server certificate through
// tls.Config.GetCertificate, so a new one (an ACME client or cert-manager
// renewed the files) is used by the next TLS handshake while established
// connections keep theirs: nothing is dropped. It reloads on SIGHUP
// (App.ReloadCertificate) and when the files' contents change (polled:
// inotify is not worth a dependency for a file that changes every few
// weeks, and polling also sees Kubernetes' symlink swaps). A pair that does
// not load (the certificate is written before its key) keeps the old one
// in service and is tried again on the next change.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu                sync.Mutex // one load at a time; guards the fields below
	certPEM, keyPEM   []byte     // of the last attempt, loaded or not
	reloads, failures uint64
}

// reloadCertificates switches conf to a reloadable certificate: the one
// tlsConfig loaded serves until the files change. Dev certificates are
// served the same way but have no files to watch.
func (a *App) reloadCertificates(conf *tls.Config) error {
	if len(conf.Certificates) != 1 {
		return errors.New("TLS configuration: want exactly one server certificate")
	}
	r := &certReloader{certFile: a.cfg.TLSCertFile, keyFile: a.cfg.TLSKeyFile, log: a.log.With("component", "tls")}
	cert := conf.Certificates[0]
	if err := withLeaf(&cert); err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	r.cur.Store(&cert)
	if r.certFile != "" {
		// What tlsConfig just loaded; a change after this is a renewal.
		r.certPEM, _ = os.ReadFile(r.certFile)
		r.keyPEM, _ = os.ReadFile(r.keyFile)
	}
	conf.Certificates = nil
	conf.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cur.Load(), nil }
	a.certs = r
	return nil
}

func withLeaf(c *tls.Certificate) error {
	if c.Leaf != nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return err
	}
	c.Leaf = leaf
	return nil
}

// ErrNoCertificateFiles: a --dev hub has no files to reload from.
var ErrNoCertificateFiles = errors.New("no certificate files to reload: the hub runs with a generated --dev certificate")

// ReloadCertificate reads --tls-cert and --tls-key again (SIGHUP). It
// reports whether the served certificate changed; on error the previous
// one stays in service.
func (a *App) ReloadCertificate() (changed bool, err error) {
	return a.certs.reload(true)
}

// reload loads the files if their contents differ from the last attempt
// (or always, when forced: SIGHUP after fixing a file that did not change
// since).
func (r *certReloader) reload(force bool) (bool, error) {
	if r.certFile == "" {
		return false, ErrNoCertificateFiles
	}
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return false, r.failed(fmt.Errorf("reading %s: %w", r.certFile, err), force)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return false, r.failed(fmt.Errorf("reading %s: %w", r.keyFile, err), force)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !force && bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		return false, nil
	}
	r.certPEM, r.keyPEM = certPEM, keyPEM
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil {
		err = withLeaf(&cert)
	}
	if err != nil {
		r.failures++
		err = fmt.Errorf("new certificate %s / key %s not loaded, the previous one stays in service: %w", r.certFile, r.keyFile, err)
		r.log.Warn("TLS certificate reload failed", "err", err)
		return false, err
	}
	old := r.cur.Load()
	if bytes.Equal(old.Certificate[0], cert.Certificate[0]) {
		return false, nil // rewritten, same certificate
	}
	r.cur.Store(&cert)
	r.reloads++
	r.log.Info("TLS certificate reloaded: new connections get it, established ones keep theirs",
		"subject", cert.Leaf.Subject.String(), "serial", cert.Leaf.SerialNumber.Text(16),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "previous_not_after", old.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

// failed counts and logs a file that could not be read. Polls that keep
// failing the same way (a file moved away) log at debug.
func (r *certReloader) failed(err error, force bool) error {
	r.mu.Lock()
	first := r.certPEM != nil || force
	r.certPEM, r.keyPEM = nil, nil
	r.failures++
	r.mu.Unlock()
	if first {
		r.log.Warn("TLS certificate reload failed, the previous one stays in service", "err", err)
	} else {
		r.log.Debug("TLS certificate files still unreadable", "err", err)
	}
	return err
}

// watch polls the files every interval until ctx ends.
func (r *certReloader) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.reload(false) // reload logs
		}
	}
}

// leaf is the certificate in service.
func (r *certReloader) leaf() *x509.Certificate { return r.cur.Load().Leaf }

func (r *certReloader) counts() (reloads, failures uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloads, r.failures
}

// startCertificateWatch exposes the certificate's expiry on /metrics and,
// with certificate files, polls them for renewals.
func (a *App) startCertificateWatch() error {
	r := a.certs
	source := "file"
	if r.certFile == "" {
		source = "dev"
	}
	err := a.metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "tether_tls_certificate_expiry_timestamp_seconds",
		Help:        "When the server certificate in service expires (NotAfter, Unix seconds). Alert well before: deploy/prometheus/tether-alerts.yml.",
		ConstLabels: prometheus.Labels{"source": source},
	}, func() float64 { return float64(r.leaf().NotAfter.Unix()) }))
	if err != nil {
		return err
	}
	for _, result := range []string{"success", "failure"} {
		err := a.metrics.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "tether_tls_certificate_reloads_total",
			Help:        "Server certificate reloads (SIGHUP or changed files), by result; a failure keeps the previous certificate in service.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 {
			ok, failed := r.counts()
			if result == "success" {
				return float64(ok)
			}
			return float64(failed)
		}))
		if err != nil {
			return err
		}
	}
	if r.certFile == "" {
		return nil
	}
	every := a.cfg.CertCheckEvery
	if every <= 0 {
		every = DefaultCertCheckEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.watch(ctx, every); close(done) }()
	a.onStop(func(context.Context) error { cancel(); <-done; return nil })
	return nil
}

package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// certReloader serves a listener's certificate from PEM files and re-reads
// them when either file is replaced (a new file at the path, as a rename
// or symlink swap gives) or its modification time or size changes, so a renewed
// certificate applies to new connections without a restart. A reload that
// fails keeps the last good certificate and logs why. Safe for concurrent
// use.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat fileStamp
	keyStat  fileStamp
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	fi os.FileInfo
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi: fi}, nil
}

// same reports whether both stamps are of the same file, unchanged.
func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == b.fi
	}
	return os.SameFile(a.fi, b.fi) && a.fi.ModTime().Equal(b.fi.ModTime()) && a.fi.Size() == b.fi.Size()
}

// newCertReloader loads the pair once; an unreadable or mismatched pair is
// an error at start (fail closed: the listener does not come up).
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) reload() error {
	cs, err := stampOf(c.certFile)
	if err != nil {
		return err
	}
	ks, err := stampOf(c.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.cert, c.certStat, c.keyStat = &cert, cs, ks
	return nil
}

// getCertificate implements tls.Config.GetCertificate.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, cerr := stampOf(c.certFile)
	ks, kerr := stampOf(c.keyFile)
	if cerr == nil && kerr == nil && (!cs.same(c.certStat) || !ks.same(c.keyStat)) {
		if err := c.reload(); err != nil {
			c.log.Warn("tls: certificate reload failed; serving the previous certificate", "cert_file", c.certFile, "err", err)
		} else {
			c.log.Info("tls: certificate reloaded", "cert_file", c.certFile)
		}
	}
	return c.cert, nil
}

// tlsConfig returns the server TLS settings for a listener: TLS 1.2 and
// later with Go's default (current) cipher suites, certificate from files.
func tlsConfig(listener, certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	r, err := newCertReloader(certFile, keyFile, log)
	if err != nil {
		return nil, fmt.Errorf("server: %s.tls: %w", listener, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}, nil
}

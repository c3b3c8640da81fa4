package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate for a server (127.0.0.1) or a client and
// returns its PEM certificate and key.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writePEM(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveTLS starts an HTTP server on the listener tlsListener makes from a.
func serveTLS(t *testing.T, a *AuthConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := tlsListener(ln, a)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "-"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			name = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		_, _ = io.WriteString(w, name)
	}), ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func tlsGet(addr string, roots *x509.CertPool, client *tls.Certificate) (string, error) {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if client != nil {
		// Offer the certificate whatever CAs the server names, so that the
		// server, not the client, is what refuses a stranger's certificate.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	res, err := c.Get("https://" + addr + "/healthz")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

// TLS serves HTTPS only; with a client CA, only clients holding a
// certificate that CA signed get through (mTLS).
func TestTLSAndMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "jitai test CA")
	rogue := newTestCA(t, "rogue CA")
	srvCert, srvKey := ca.issue(t, "jitai", true)
	certFile := writePEM(t, dir, "server.pem", srvCert)
	keyFile := writePEM(t, dir, "server-key.pem", srvKey)
	caFile := writePEM(t, dir, "ca.pem", ca.pem)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)

	clientPair := func(c *testCA, name string) *tls.Certificate {
		cp, kp := c.issue(t, name, false)
		pair, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		return &pair
	}
	good := clientPair(ca, "clinic-app")
	bad := clientPair(rogue, "intruder")

	t.Run("tls", func(t *testing.T) {
		addr := serveTLS(t, &AuthConfig{TLSCert: certFile, TLSKey: keyFile})
		got, err := tlsGet(addr, roots, nil)
		if err != nil || got != "-" {
			t.Fatalf("HTTPS: %q, %v", got, err)
		}
		// Plain HTTP to a TLS port gets no answer from the handler.
		res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				t.Fatalf("plain HTTP served: %d %q", res.StatusCode, b)
			}
		}
		// A client that does not trust the server's CA refuses it.
		if _, err := tlsGet(addr, x509.NewCertPool(), nil); err == nil {
			t.Fatal("an untrusted server certificate was accepted")
		}
	})

	t.Run("mtls", func(t *testing.T) {
		addr := serveTLS(t, &AuthConfig{TLSCert: certFile, TLSKey: keyFile, TLSClientCA: caFile})
		if got, err := tlsGet(addr, roots, good); err != nil || got != "clinic-app" {
			t.Fatalf("client signed by the CA: %q, %v", got, err)
		}
		if _, err := tlsGet(addr, roots, nil); err == nil {
			t.Fatal("a client without a certificate got through")
		}
		if _, err := tlsGet(addr, roots, bad); err == nil {
			t.Fatal("a client certificate from another CA got through")
		}
	})

	t.Run("config errors", func(t *testing.T) {
		for _, tc := range []struct {
			a    AuthConfig
			want string
		}{
			{AuthConfig{TLSCert: certFile}, "tls_cert and tls_key go together"},
			{AuthConfig{TLSClientCA: caFile}, "mTLS runs over TLS"},
			{AuthConfig{TLSCert: certFile, TLSKey: caFile}, "tls_cert/tls_key"},
			{AuthConfig{TLSCert: certFile, TLSKey: keyFile, TLSClientCA: keyFile}, "no PEM certificates"},
			{AuthConfig{TLSCert: certFile, TLSKey: keyFile, TLSClientCA: filepath.Join(dir, "missing.pem")}, "tls_client_ca"},
		} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			_, err = tlsListener(ln, &tc.a)
			ln.Close()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%+v: error %v, want %q", tc.a, err, tc.want)
			}
		}
	})
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/auth"
)

// AuthConfig is the authentication and TLS part of Config.
type AuthConfig struct {
	Auth        string `yaml:"auth"`
	TokensFile  string `yaml:"tokens_file"`
	AuditLog    string `yaml:"audit_log"`
	MetricsAuth string `yaml:"metrics_auth"`
	TLSCert     string `yaml:"tls_cert"`
	TLSKey      string `yaml:"tls_key"`
	TLSClientCA string `yaml:"tls_client_ca"`
}

func (a *AuthConfig) set(key, v string) {
	switch key {
	case "auth":
		a.Auth = v
	case "tokens-file":
		a.TokensFile = v
	case "audit-log":
		a.AuditLog = v
	case "metrics-auth":
		a.MetricsAuth = v
	case "tls-cert":
		a.TLSCert = v
	case "tls-key":
		a.TLSKey = v
	case "tls-client-ca":
		a.TLSClientCA = v
	}
}

// SetDefaults fills unset values; files default to the data folder.
func (a *AuthConfig) SetDefaults(data string) {
	if a.Auth == "" {
		a.Auth = "none"
	}
	if a.TokensFile == "" {
		a.TokensFile = filepath.Join(data, tokenFileName)
	}
	if a.AuditLog == "" {
		a.AuditLog = filepath.Join(data, auditFileName)
	}
	if a.MetricsAuth == "" {
		a.MetricsAuth = "token"
	}
}

// Validate says which key is wrong and how to fix it.
func (a *AuthConfig) Validate() error {
	var errs []error
	if a.Auth != "none" && a.Auth != "token" {
		errs = append(errs, fmt.Errorf("auth %q: want token (bearer tokens; create them with 'jitai token create') or none (loopback only)", a.Auth))
	}
	if a.MetricsAuth != "none" && a.MetricsAuth != "token" {
		errs = append(errs, fmt.Errorf("metrics_auth %q: want token (analyst or admin token) or none", a.MetricsAuth))
	}
	return errors.Join(errs...)
}

// validateTLS checks that the TLS keys go together (at serve time, so that
// each key can be set on its own in layered configuration).
func (a *AuthConfig) validateTLS() error {
	var errs []error
	if (a.TLSCert == "") != (a.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert and tls_key go together: set both or neither"))
	}
	if a.TLSClientCA != "" && a.TLSCert == "" {
		errs = append(errs, errors.New("tls_client_ca needs tls_cert and tls_key: mTLS runs over TLS"))
	}
	return errors.Join(errs...)
}

// checkListen refuses a non-loopback address without authentication.
func checkListen(addr string, a *AuthConfig) error {
	if a.Auth != "none" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without authentication: set auth: token (--auth token, JITAI_AUTH=token) and create tokens with 'jitai token create', or listen on a loopback address such as 127.0.0.1:8080", addr)
}

// setupAuth configures the API's authentication and audit log and, with
// tokens, re-reads the token file on SIGHUP. auditKey gives the secret of
// the audit log's participant pseudonyms (engine.AuditKey: kept in the
// store). It returns a function that releases what it opened.
func setupAuth(ctx context.Context, a *AuthConfig, srv *api.Server, auditKey func(context.Context) ([]byte, error), log *zap.Logger) (func(), error) {
	opts := api.AuthOptions{OpenMetrics: a.MetricsAuth == "none"}
	if a.Auth == "none" {
		log.Warn("authentication is off (auth: none): every client on this loopback address may use every route")
		srv.SetAuth(opts)
		return func() {}, nil
	}
	v, err := auth.NewVerifier(a.TokensFile)
	if err != nil {
		return nil, err
	}
	if v.Len() == 0 {
		log.Warn("no live tokens in the token file: every API request will be refused; create one with 'jitai token create'", zap.String("tokens_file", a.TokensFile))
	}
	if err := os.MkdirAll(filepath.Dir(a.AuditLog), 0o700); err != nil {
		return nil, fmt.Errorf("creating the audit log's folder: %w", err)
	}
	key, err := auditKey(ctx)
	if err != nil {
		return nil, err
	}
	audit, err := auth.OpenAudit(a.AuditLog, key, log)
	if err != nil {
		return nil, err
	}
	opts.Tokens, opts.Audit = v, audit
	srv.SetAuth(opts)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := v.Reload(); err != nil {
					log.Error("reloading the token file failed; the previous tokens stay in force", zap.Error(err))
				} else {
					log.Info("token file reloaded", zap.Int("live_tokens", v.Len()))
				}
			}
		}
	}()
	log.Info("authentication on", zap.String("tokens_file", a.TokensFile), zap.Int("live_tokens", v.Len()), zap.String("audit_log", a.AuditLog))
	return func() {
		signal.Stop(hup)
		<-done
		_ = audit.Close()
	}, nil
}

// tlsListener wraps ln in TLS when a certificate is configured; with a
// client CA, clients must present a certificate it signed.
func tlsListener(ln net.Listener, a *AuthConfig) (net.Listener, error) {
	if err := a.validateTLS(); err != nil {
		return nil, err
	}
	if a.TLSCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls_cert/tls_key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.TLSClientCA != "" {
		pem, err := os.ReadFile(a.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls_client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_client_ca %s: no PEM certificates found", a.TLSClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tls.NewListener(ln, cfg), nil
}

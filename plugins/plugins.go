// Package plugins is the out-of-process plugin protocol of jitai
// (docs/architecture.md, docs/plugins.md): state enrichers, probability
// providers and notifiers run as separate programs, started by the engine
// with hashicorp/go-plugin and called over gRPC (mutual TLS) with a
// deadline and a declared fallback, so that a crashing or slow plugin never
// takes the engine down.
//
// This package holds what both sides share: the handshake, the go-plugin
// glue for the three kinds and Serve, which a plugin's main calls. The
// messages and services are in plugins/proto (package pluginpb); the host
// that starts plugins for a study is plugins/host.
package plugins

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/jitai/jitai/plugins/proto"
)

// Plugin kinds, as written in study.yaml and used as go-plugin plugin names.
const (
	KindEnricher    = "enricher"
	KindProbability = "probability"
	KindNotifier    = "notifier"
)

// ProtocolVersion is the version of the plugin protocol. It changes when a
// change to plugins/proto is not backward compatible.
const ProtocolVersion = 1

// Handshake is the go-plugin handshake: a plugin started by hand (not by
// the engine) refuses to run, and engine and plugin check they speak the
// same protocol version.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "JITAI_PLUGIN",
	MagicCookieValue: "b5f0c2e4-jitai-plugin-7d1a",
}

// EnricherPlugin is the go-plugin glue of an enricher. Impl is set on the
// plugin's side only.
type EnricherPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl pb.EnricherServer
}

// GRPCServer registers the enricher (plugin side).
func (p *EnricherPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterEnricherServer(s, p.Impl)
	return nil
}

// GRPCClient returns a pb.EnricherClient (engine side).
func (p *EnricherPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewEnricherClient(c), nil
}

// ProbabilityPlugin is the go-plugin glue of a probability provider.
type ProbabilityPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl pb.ProbabilityProviderServer
}

// GRPCServer registers the provider (plugin side).
func (p *ProbabilityPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterProbabilityProviderServer(s, p.Impl)
	return nil
}

// GRPCClient returns a pb.ProbabilityProviderClient (engine side).
func (p *ProbabilityPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewProbabilityProviderClient(c), nil
}

// NotifierPlugin is the go-plugin glue of a notifier.
type NotifierPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl pb.NotifierServer
}

// GRPCServer registers the notifier (plugin side).
func (p *NotifierPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterNotifierServer(s, p.Impl)
	return nil
}

// GRPCClient returns a pb.NotifierClient (engine side).
func (p *NotifierPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewNotifierClient(c), nil
}

// PluginSet is the go-plugin plugin map the engine dispenses from: every
// kind, without implementations.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{
		KindEnricher:    &EnricherPlugin{},
		KindProbability: &ProbabilityPlugin{},
		KindNotifier:    &NotifierPlugin{},
	}
}

// Serve runs a plugin that implements one kind; it returns when the engine
// stops the plugin. Exactly one of the arguments is not nil:
//
//	func main() { plugins.Serve(nil, &bandit{}, nil) }
func Serve(e pb.EnricherServer, p pb.ProbabilityProviderServer, n pb.NotifierServer) error {
	set := plugin.PluginSet{}
	if e != nil {
		set[KindEnricher] = &EnricherPlugin{Impl: e}
	}
	if p != nil {
		set[KindProbability] = &ProbabilityPlugin{Impl: p}
	}
	if n != nil {
		set[KindNotifier] = &NotifierPlugin{Impl: n}
	}
	if len(set) != 1 {
		return errors.New("plugins.Serve: give exactly one implementation")
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         set,
		GRPCServer:      plugin.DefaultGRPCServer,
	})
	return nil
}

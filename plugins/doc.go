// Package plugins will hold the out-of-process plugin protocol and host
// (hashicorp/go-plugin over gRPC): state enrichers, probability providers
// and notifiers, each called with a deadline and a declared fallback
// (DESIGN.md section 6). Nothing is implemented yet; the engine does not
// load plugins.
package plugins

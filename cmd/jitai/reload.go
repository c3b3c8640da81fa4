package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/metrics"
)

// watchStudies hot-reloads the served studies: it polls the studies folder
// every watch_interval (unless off) and reloads every study on SIGHUP. New
// study folders are loaded; removed ones keep serving. The returned
// function stops watching.
func watchStudies(ctx context.Context, cfg *Config, eng *engine.Engine, met *metrics.Metrics, log *zap.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	opt := engine.WatchOptions{Interval: cfg.WatchInterval, OnAttempt: func(a *engine.ReloadAttempt) {
		if a.Outcome == engine.ReloadAdded {
			met.AddStudy(a.Study)
		}
	}}
	w := engine.NewWatcher(eng, cfg.Studies, opt)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading every study")
				w.ReloadAll()
			}
		}
	}()
	if cfg.WatchInterval > 0 {
		log.Info("watching studies for changes", zap.String("dir", cfg.Studies), zap.Duration("interval", cfg.WatchInterval))
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	} else {
		// Not polling: SIGHUP still reloads, through a scan of its own.
		wg.Add(1)
		go func() { defer wg.Done(); w.RunForcedOnly(ctx) }()
	}
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}

package main

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/apns"
	"github.com/jitai/jitai/engine/delivery/fcm"
	"github.com/jitai/jitai/engine/delivery/webhook"
	"github.com/jitai/jitai/engine/delivery/webpush"
	"github.com/jitai/jitai/policies"
)

// channelFactory builds a study's delivery channels from its delivery
// section, reading credentials from the environment variables it names
// (never from study.yaml text). A channel whose variable is unset is an
// error at start and at reload, naming the variable.
func channelFactory(getenv func(string) string) engine.ChannelFactory {
	return func(s *policies.Study) ([]delivery.Channel, error) {
		d := s.Config.Delivery
		if d == nil {
			return nil, nil
		}
		need := func(name, what string) (string, error) {
			v := getenv(name)
			if v == "" {
				return "", fmt.Errorf("environment variable %s (%s) is not set", name, what)
			}
			return v, nil
		}
		var out []delivery.Channel
		for _, name := range d.Channels {
			var ch delivery.Channel
			var err error
			switch name {
			case policies.ChannelWebhook:
				var secret string
				if secret, err = need(d.Webhook.SecretEnv, "the webhook's whsec_ signing secret"); err == nil {
					ch, err = webhook.New(webhook.Config{URL: d.Webhook.URL, Secret: secret})
				}
			case policies.ChannelFCM:
				var file string
				if file, err = need(d.FCM.CredentialsFileEnv, "the path of the FCM service-account key file"); err == nil {
					ch, err = fcm.New(fcm.Config{ProjectID: d.FCM.ProjectID, CredentialsFile: file, Endpoint: d.FCM.Endpoint})
				}
			case policies.ChannelAPNs:
				var file string
				if file, err = need(d.APNs.KeyFileEnv, "the path of the APNs .p8 key file"); err == nil {
					ch, err = apns.New(apns.Config{Topic: d.APNs.Topic, KeyFile: file, KeyID: d.APNs.KeyID, TeamID: d.APNs.TeamID,
						Environment: d.APNs.Environment, Host: d.APNs.Endpoint})
				}
			case policies.ChannelWebPush:
				var pub, priv string
				if pub, err = need(d.WebPush.VAPIDPublicKeyEnv, "the VAPID public key"); err == nil {
					if priv, err = need(d.WebPush.VAPIDPrivateKeyEnv, "the VAPID private key"); err == nil {
						ch, err = webpush.New(webpush.Config{VAPIDPublicKey: pub, VAPIDPrivateKey: priv,
							Subscriber: d.WebPush.Subscriber, AllowedHosts: d.WebPush.AllowedHosts})
					}
				}
			default:
				continue // a notifier plugin: the engine adds it
			}
			if err != nil {
				return nil, fmt.Errorf("channel %s: %w", name, err)
			}
			out = append(out, ch)
		}
		return out, nil
	}
}

// runClock runs the trial clock in the background unless --clock off; the
// returned function stops it and waits for it.
func runClock(ctx context.Context, cfg *Config, eng *engine.Engine, log *zap.Logger) func() {
	if cfg.Clock == "off" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := eng.RunClock(ctx); err != nil {
			log.Warn("trial clock not running", zap.Error(err))
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

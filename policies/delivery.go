package policies

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
)

// Delivery channels a study may name (delivery.channels). A notifier
// plugin's name is a channel too.
const (
	ChannelWebhook = "webhook"
	ChannelFCM     = "fcm"
	ChannelAPNs    = "apns"
	ChannelWebPush = "webpush"
)

// DeliveryConfig is how the engine takes the decisions of scheduled and
// event-triggered points to participants (docs/delivery.md). Credentials
// never appear here: only the names of environment variables or files that
// hold them.
type DeliveryConfig struct {
	// Channels are tried in order; a delivery is sent when one accepts it.
	Channels []string       `yaml:"channels" json:"channels"`
	Webhook  *WebhookConfig `yaml:"webhook" json:"webhook,omitempty"`
	FCM      *FCMConfig     `yaml:"fcm" json:"fcm,omitempty"`
	APNs     *APNsConfig    `yaml:"apns" json:"apns,omitempty"`
	WebPush  *WebPushConfig `yaml:"webpush" json:"webpush,omitempty"`
}

// WebhookConfig is a Standard Webhooks receiver of CloudEvents.
type WebhookConfig struct {
	URL string `yaml:"url" json:"url"`
	// SecretEnv names the environment variable holding the whsec_ secret.
	SecretEnv string `yaml:"secret_env" json:"secret_env"`
}

// FCMConfig is Firebase Cloud Messaging HTTP v1.
type FCMConfig struct {
	ProjectID string `yaml:"project_id" json:"project_id"`
	// CredentialsFileEnv names the environment variable holding the path of
	// the service-account JSON file.
	CredentialsFileEnv string `yaml:"credentials_file_env" json:"credentials_file_env"`
	// Endpoint overrides https://fcm.googleapis.com (tests, proxies).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
}

// APNsConfig is Apple Push Notification service with token auth.
type APNsConfig struct {
	Topic      string `yaml:"topic" json:"topic"`
	KeyFileEnv string `yaml:"key_file_env" json:"key_file_env"`
	KeyID      string `yaml:"key_id" json:"key_id"`
	TeamID     string `yaml:"team_id" json:"team_id"`
	// Environment is production (default) or development.
	Environment string `yaml:"environment" json:"environment,omitempty"`
	// Endpoint overrides the APNs host (tests).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
}

// WebPushConfig is Web Push with VAPID.
type WebPushConfig struct {
	VAPIDPublicKeyEnv  string `yaml:"vapid_public_key_env" json:"vapid_public_key_env"`
	VAPIDPrivateKeyEnv string `yaml:"vapid_private_key_env" json:"vapid_private_key_env"`
	// Subscriber is the VAPID contact (mailto: or https: URL).
	Subscriber string `yaml:"subscriber" json:"subscriber"`
	// AllowedHosts, when set, are the only push services the engine posts
	// to (a subscription endpoint comes from the app).
	AllowedHosts []string `yaml:"allowed_hosts" json:"allowed_hosts,omitempty"`
}

var envNameRe = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)

// delivery checks the delivery section.
func (v *validator) delivery(d *DeliveryConfig, plugins []PluginConfig) {
	if d == nil {
		return
	}
	if len(d.Channels) == 0 {
		v.at("delivery.channels", "delivery.channels is empty: name at least one channel (webhook, fcm, apns, webpush or a notifier plugin)")
	}
	for i, ch := range d.Channels {
		p := fmt.Sprintf("delivery.channels[%d]", i)
		if slices.Index(d.Channels, ch) != i {
			v.at(p, "channel %q is named twice", ch)
			continue
		}
		switch ch {
		case ChannelWebhook:
			v.webhook(d.Webhook)
		case ChannelFCM:
			if d.FCM == nil {
				v.at("delivery.fcm", "channel fcm needs delivery.fcm.credentials_file_env (and project_id, unless the key file names it)")
			} else {
				v.envName("delivery.fcm.credentials_file_env", d.FCM.CredentialsFileEnv)
			}
		case ChannelAPNs:
			if d.APNs == nil || d.APNs.Topic == "" || d.APNs.KeyID == "" || d.APNs.TeamID == "" {
				v.at("delivery.apns", "channel apns needs delivery.apns.topic (the app's bundle id), key_id, team_id and key_file_env")
			} else {
				v.envName("delivery.apns.key_file_env", d.APNs.KeyFileEnv)
				if e := d.APNs.Environment; e != "" && e != "production" && e != "development" {
					v.at("delivery.apns.environment", "environment %q must be production or development", e)
				}
			}
		case ChannelWebPush:
			if d.WebPush == nil || d.WebPush.Subscriber == "" {
				v.at("delivery.webpush", "channel webpush needs delivery.webpush.subscriber (mailto:...), vapid_public_key_env and vapid_private_key_env")
			} else {
				v.envName("delivery.webpush.vapid_public_key_env", d.WebPush.VAPIDPublicKeyEnv)
				v.envName("delivery.webpush.vapid_private_key_env", d.WebPush.VAPIDPrivateKeyEnv)
			}
		default:
			if !slices.ContainsFunc(plugins, func(pc PluginConfig) bool { return pc.Name == ch && pc.Kind == PluginNotifier }) {
				v.at(p, "channel %q is not webhook, fcm, apns, webpush or a notifier plugin of this study", ch)
			}
		}
	}
}

func (v *validator) webhook(w *WebhookConfig) {
	if w == nil {
		v.at("delivery.webhook", "channel webhook needs delivery.webhook.url and delivery.webhook.secret_env")
		return
	}
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.at("delivery.webhook.url", "url %q must be an http(s) URL", w.URL)
	}
	v.envName("delivery.webhook.secret_env", w.SecretEnv)
}

func (v *validator) envName(path, name string) {
	if !envNameRe.MatchString(name) {
		v.at(path, "%q must name an environment variable (upper-case letters, digits, _) that holds the credential: credentials never go into study.yaml", name)
	}
}

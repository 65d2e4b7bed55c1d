package whatsmeow

import (
	"errors"
	"log/slog"
	"time"

	"go.mau.fi/whatsmeow"
	"golang.org/x/time/rate"
)

// defaultMaxPendingChannelViews bounds the channel "view" receipts waiting
// at once for WhatsApp's answer (see WithMaxPendingChannelViews).
const defaultMaxPendingChannelViews = 8

// Option configures a [Session] made by [New], or a [Manager] made by
// [Open] and the sessions it runs. Options that configure a Manager's own
// work (its store, connections, pairing) are an error of New. A bad value
// is an error of New or Open, never clamped silently. The defaults differ
// where a wrapped client is the program's own: see each option.
type Option func(*options) error

// options are the settings of a Session and, for Open, of its Manager.
type options struct {
	// A Session's.
	indexSize      int
	markChatRead   bool
	chatReadWindow time.Duration
	maxViews       int
	logger         *slog.Logger
	presence       PresenceMode
	presenceIdle   time.Duration
	autoRead       *AutoRead // nil: off
	// warmPrivacy: fetch the privacy settings after each connection, so
	// that the first receipt does not wait for them (a Manager's sessions;
	// a wrapped client's first receipt fetches them).
	warmPrivacy bool
	// Set by a Manager for each of its sessions (withStore): the store and
	// the cache its sessions share, the session's name for its messages in
	// the cache, and the patch budget of all its sessions; nil: none.
	store          *messageStore
	cache          *index
	owner          string
	newFilter      func() idFilter // the store's filter of ids (see messages.stored)
	chatReadBudget *rate.Limiter

	// A Manager's. openOnly names the first option given that only Open
	// takes, for New's error.
	openOnly      string
	clientHook    func(name string, c *whatsmeow.Client)
	pairFirst     time.Duration // Pair's first wait
	pairMax       time.Duration // and its longest
	pool          DBPool
	connects      int // WithConnectConcurrency
	cacheSize     int
	retention     Retention
	observe       func(SessionEvent)
	fdReserve     *int    // WithFDReserve; nil: the default
	chatReadRate  float64 // WithChatReadRate; 0: no bound
	chatReadBurst int
}

// wrappedDefaults are the defaults of a [Session] made by [New]: over a
// client the program runs, it sends only what a read receipt needs.
func wrappedDefaults() options {
	return options{
		indexSize:      defaultIndexSize,
		chatReadWindow: defaultChatReadWindow,
		maxViews:       defaultMaxPendingChannelViews,
		logger:         slog.New(slog.DiscardHandler),
		presence:       PresenceOff,
		presenceIdle:   defaultPresenceIdle,
	}
}

// managerDefaults are the defaults of a [Manager] and its sessions,
// bluetick's own accounts: they look like a person reading (presence),
// clear the marks of chats marked unread, and warm the privacy settings.
func managerDefaults() options {
	o := wrappedDefaults()
	o.markChatRead, o.warmPrivacy, o.presence = true, true, PresenceReading
	o.pairFirst, o.pairMax = defaultPairRetry, defaultMaxPairRetry
	o.connects, o.cacheSize = defaultConnectConcurrency, defaultIndexCache
	o.chatReadRate, o.chatReadBurst = defaultChatReadRate, defaultChatReadRate
	return o
}

// newOptions applies opts over o.
func newOptions(o options, opts []Option) (options, error) {
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

// forOpen notes that the option called name configures a Manager.
func (o *options) forOpen(name string) {
	if o.openOnly == "" {
		o.openOnly = name
	}
}

// WithLogger sets the logger: of a [Session] made by [New], for what it
// does in the background (presence, chat marking and privacy failures);
// of a [Manager], for the Manager, its sessions (with a "session"
// attribute) and whatsmeow's clients (whose "module" attribute says which
// part of whatsmeow speaks). nil is an error. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("whatsmeow: WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

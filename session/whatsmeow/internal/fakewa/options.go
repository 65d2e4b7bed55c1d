package fakewa

// Option configures a Server at Start.
type Option func(*config)

type config struct {
	readReceipts   string
	newsletterAcks bool
	privacyErrors  bool
	pairCodeErrors bool
	countOnly      bool
	// groupInfoErrors: see Server.SetGroupInfoErrors.
	groupInfoErrors bool
}

func defaultConfig() config {
	return config{
		readReceipts:   "all",
		newsletterAcks: true,
	}
}

// WithReadReceipts sets the value of the "readreceipts" category in the
// server's answer to the privacy settings query: "all" (the default) or
// "none". With "none", whatsmeow's MarkRead sends type="read-self" instead of
// type="read". whatsmeow caches the privacy settings after its first query
// (the first MarkRead of a client), so the value must be chosen before that;
// Server.SetReadReceipts changes it later.
func WithReadReceipts(value string) Option {
	return func(c *config) { c.readReceipts = value }
}

// WithoutNewsletterAck makes the server leave receipts addressed to a
// newsletter (…@newsletter) unanswered. By default it answers them, like other
// receipts, with <ack class="receipt" id=…>, which is what ends the wait in
// whatsmeow's NewsletterMarkViewed. Without the ack that call blocks, even
// past its context, until the connection drops (Server.DropConnections), and
// then returns nil.
func WithoutNewsletterAck() Option {
	return func(c *config) { c.newsletterAcks = false }
}

// WithPrivacyErrors makes the server answer the privacy settings query with
// <iq type="error"><error code="500" text="internal-server-error"/></iq>,
// as WhatsApp does when it cannot answer: whatsmeow's TryFetchPrivacySettings
// then fails, and its GetPrivacySettings (which MarkRead uses) returns empty
// settings. Server.SetPrivacyErrors changes it later.
func WithPrivacyErrors() Option {
	return func(c *config) { c.privacyErrors = true }
}

// WithPairCodeErrors makes the server refuse a pair code (whatsmeow's
// PairPhone) with <iq type="error"><error code="400" text="bad-request"/>
// </iq>; by default it hands out a pairing ref.
func WithPairCodeErrors() Option {
	return func(c *config) { c.pairCodeErrors = true }
}

// WithCountOnly makes the server count what it receives (see
// Server.Counts) without keeping or logging the nodes: Nodes, Receipts and
// WaitNode then see none. For benchmarks, whose millions of nodes would
// otherwise stay in memory.
func WithCountOnly() Option {
	return func(c *config) { c.countOnly = true }
}

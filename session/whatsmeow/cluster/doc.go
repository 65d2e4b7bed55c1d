// Package cluster lets several processes (replicas of one app, a rolling
// deploy) share the WhatsApp sessions of one PostgreSQL store, each session
// connected by exactly one process at a time: WhatsApp allows one
// connection per linked device, and replaces the older of two with a
// stream error.
//
// # Use
//
// Open the store's Manager as usual, then a [Node] over it on the same
// PostgreSQL database, and give the handler the node both as its registry
// and as its forwarder; serve it through [Node.Wrap]; start the node
// instead of the Manager:
//
//	m, _ := whatsmeow.Open(ctx, dsn)
//	node, _ := cluster.Open(ctx, dsn, m, cluster.Config{
//		NodeID:    hostname,
//		Advertise: "https://10.0.0.5:8443", // how the other nodes reach this one
//		Secret:    []byte(os.Getenv("BLUETICK_CLUSTER_SECRET")),
//	})
//	h, _ := seenhandler.New(node, seenhandler.WithForwarder(node), …)
//	mux := http.NewServeMux()
//	seenhandler.Mount(mux, h)
//	go srv.Serve(node.Wrap(mux, seenhandler.WriteError)) // checks forwarded requests, seals their answers
//	_ = node.Start(ctx)
//	…
//	node.Close() // hands the sessions over to the other nodes at once
//	m.Close()
//
// A single process needs none of this: it uses the Manager directly.
// SQLite stores are single-process (the Manager locks the file).
//
// # Ownership: lease rows with fencing
//
// Each session has a row in bluetick_lease naming its owner node, an
// expiry and an epoch. The owner renews all its leases, with its heartbeat
// in bluetick_node, in one statement every Renew (1 s); a node takes a
// lease only when it is free or expired (INSERT … ON CONFLICT … WHERE
// expires_at < now(), which bumps the epoch), and renews or frees a lease
// only at the epoch it took. The expiry is computed by PostgreSQL's clock
// alone; each node measures its own deadline on its monotonic clock from
// the moment it sent the last renewal that succeeded, which is no later
// than the database's now() of that renewal. A node that cannot renew —
// PostgreSQL down, a network partition, a stalled process that wakes up —
// disconnects all its WhatsApp clients (self-fencing) at that moment plus
// LeaseTTL − 2 × Renew, before any lease it held can expire, so even a
// partition between one node and PostgreSQL never yields two connections
// for one device. A send checks the lease when it starts and again right
// before each write to WhatsApp (session.WithFence): a node stalled in
// between, or paused past the lease's term, writes nothing when it
// resumes, before its watchdog has had its turn.
//
// Lease rows were chosen over session-level advisory locks: an advisory
// lock is released when PostgreSQL notices the holder's connection is
// gone, which for a partition (rather than a crash) depends on TCP
// keepalive settings the node does not see, so a node could not know when
// to fence itself. A lease's life is explicit, the same for every node,
// and visible in a table (who owns what, until when), which the status
// endpoints and operators read.
//
// # Membership and placement
//
// Each node heartbeats a row (id, advertised URL, capacity) that expires
// after LeaseTTL. Every Renew, each node reads the live nodes and the
// sessions of the store and computes the same placement: rendezvous
// hashing with bounded loads — a session goes to the node scoring highest
// for it that has fewer than ⌈S/N⌉ sessions and room under its capacity
// (the Manager's descriptor budget). A node joining or leaving moves few
// sessions (measured: 1,000 sessions, 7 → 8 nodes, 149 moved, 125 of them
// to the new node). A node that holds a session placed elsewhere hands it
// over: it disconnects it, then frees its lease; the new owner then takes
// the lease and connects.
//
// # Routing
//
// [Node.Forward] implements seenhandler.Forwarder: a request for a session
// another node owns, once the handler has authenticated it, is sent as it
// came (method, path, headers, body) to the owner's advertised URL, and
// the owner's answer (its status, body and the headers a client needs) is
// the client's. A forwarded request is served where it lands and never
// forwarded again. While a session has no owner (a hand-over, a failover),
// or its owner cannot be reached or does not answer within the handler's
// deadline, the answer is 503 session_not_connected with a Retry-After of
// the expected takeover time.
//
// # Trust
//
// The nodes trust the shared secret, not the database: the first node of
// a database records a proof of its secret (an HMAC of a random salt), and
// a node whose secret does not match refuses to start ([ErrSecret],
// logged at Error). Each node row carries an HMAC under the secret of the
// node's id, incarnation, URL and capacity; a row without one (written by
// anything but a node with the secret) is no member: no session is placed
// on it, no request sent to it. A forwarded request is signed (HMAC-SHA256)
// over its method, URI, body, the client's credentials (Authorization,
// X-Api-Key), the forwarding node, the node it is for, its time and a
// nonce; the receiving node ([Node.Wrap]) serves it once, within 30 s of
// its time, if it is the node it was for, and seals its answer (an HMAC
// over the request's signature, the status, the headers copied to the
// client and the body), which the forwarding node checks before its client
// sees a byte of it. Anything else is answered 503 with a Retry-After and
// logged at Error. The signatures authenticate; they do not hide: a
// forwarded request carries the client's token, so the nodes should reach
// each other over TLS (an https:// Advertise) or a private network.
//
// # Failover bound
//
// When an owner dies, its sessions are connected elsewhere within
// LeaseTTL + Renew + the time to connect them: the leases expire LeaseTTL
// after its last renewal, the next placement round (every Renew) claims
// them, and the new owner connects them in parallel (whatsmeow.Manager's
// connect concurrency). With the defaults, 8 s + 1 s + connecting: under
// 15 s. LeaseTTL sets it; a shorter lease fails
// over sooner but fences a node after a shorter database hiccup
// (LeaseTTL − 2 × Renew: 6 s by default).
//
// # Status
//
// The status endpoints name the owner (session.Status.Node, "node" in
// JSON); GET /api/sessions lists every session of the store with its
// status as its owner last published it (in its lease, every Renew).
package cluster

package fakewa

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// accountState is the app state the server keeps for one account: every
// collection's patches, in order (version i+1 at index i), and the account's
// phone — another device of the account, with its own whatsmeow store —
// which decodes each patch as the account's other devices would, with
// whatsmeow's own appstate processor, MACs and LTHash verified.
type accountState struct {
	phone   *store.Device
	proc    *appstate.Processor
	patches map[appstate.WAPatchName][][]byte
}

// AppStatePatch is one app-state patch the server took, decoded by the
// account's phone.
type AppStatePatch struct {
	// Collection is the patch's collection, e.g. "regular_low".
	Collection appstate.WAPatchName
	// Version is the collection's version the patch made.
	Version uint64
	// FromPhone is true for the patches PhonePatch sent, false for those a
	// client sent.
	FromPhone bool
	// Mutations are the patch's mutations as the phone decoded them.
	Mutations []appstate.Mutation
}

// AddAppStateKey gives the phone of account (a device JID or the account's
// user JID) the app-state sync key id with its 32 bytes of key data, which
// the phone decodes and encodes patches with. The client needs the same key
// in its own store (store.AppStateKeys.PutAppStateSyncKey, or a key share):
// a phone shares its keys with the account's new devices. Until the phone
// has a key, every patch a client sends is refused (AppStateRejections).
func (s *Server) AddAppStateKey(t testing.TB, account types.JID, id, data []byte) {
	t.Helper()
	s.appMu.Lock()
	defer s.appMu.Unlock()
	a := s.accounts[account.User]
	if a == nil {
		phone, _ := NewDevice(t)
		a = &accountState{phone: phone, proc: appstate.NewProcessor(phone, s.log.logger("Phone")),
			patches: make(map[appstate.WAPatchName][][]byte)}
		s.accounts[account.User] = a
	}
	err := a.phone.AppStateKeys.PutAppStateSyncKey(context.Background(), id,
		store.AppStateSyncKey{Data: data, Fingerprint: []byte{1}, Timestamp: time.Now().Unix()})
	if err != nil {
		t.Fatalf("fakewa: store app-state key: %v", err)
	}
}

// PhonePatch sends patch from account's phone, as when its owner marks a
// chat unread there: the phone encodes it with its newest key on top of the
// collection's current version, the server stores it, and every logged-in
// client of the account gets <notification type="server_sync"> naming the
// collection, upon which whatsmeow fetches the new patch and dispatches its
// events (events.MarkChatAsRead, …) — unless the client had never synced
// the collection: its first fetch is a full sync, whose events whatsmeow
// does not dispatch (Client.EmitAppStateEventsOnFullSync). It fails the
// test if the phone has no key (AddAppStateKey).
func (s *Server) PhonePatch(t testing.TB, account types.JID, patch appstate.PatchInfo) {
	t.Helper()
	ctx := context.Background()
	s.appMu.Lock()
	a := s.accounts[account.User]
	if a == nil {
		s.appMu.Unlock()
		t.Fatalf("fakewa: PhonePatch: the phone of %s has no app-state key", account.User)
	}
	keyID, err := a.phone.AppStateKeys.GetLatestAppStateSyncKeyID(ctx)
	if err == nil && keyID == nil {
		err = errors.New("no key")
	}
	var encoded []byte
	if err == nil {
		version, hash, verr := a.phone.AppState.GetAppStateVersion(ctx, string(patch.Type))
		if err = verr; err == nil {
			encoded, err = a.proc.EncodePatch(ctx, keyID, appstate.HashState{Version: version, Hash: hash}, patch)
		}
	}
	var version uint64
	if err == nil {
		version, err = s.takePatchLocked(a, patch.Type, encoded, true)
	}
	s.appMu.Unlock()
	if err != nil {
		t.Fatalf("fakewa: PhonePatch: %v", err)
	}
	s.sendAccount(t, account, waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "type": "server_sync", "id": "SYNC" + strconv.FormatUint(version, 10) + string(patch.Type),
		"t": strconv.FormatInt(time.Now().Unix(), 10),
	}, Content: []waBinary.Node{{Tag: "collection", Attrs: waBinary.Attrs{"name": string(patch.Type), "version": version}}}})
}

// AppStatePatches returns the app-state patches the server has taken, from
// clients and phones, in order.
func (s *Server) AppStatePatches() []AppStatePatch {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	return append([]AppStatePatch(nil), s.taken...)
}

// AppStateRejections returns why the server refused each app-state patch it
// refused: one the account's phone could not decode or verify (a mismatching
// LTHash, as when one patch carries two mutations of one index; an unknown
// key; a patch built on an old version). WhatsApp's server cannot decrypt
// patches and would store such a patch; every other device of the account
// would then fail to apply it. The fake refuses it, so that the client's
// SendAppState fails and a test sees it.
func (s *Server) AppStateRejections() []error {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	return append([]error(nil), s.rejected...)
}

// WaitAppStatePatches waits until the server has taken or refused n
// app-state patches from clients in all (a node is recorded before it is
// answered: WaitNode may return before the patch is taken); it fails the
// test if that does not happen within timeout.
func (s *Server) WaitAppStatePatches(t testing.TB, timeout time.Duration, n int) {
	t.Helper()
	var have int
	waitFor(t, timeout, func() (<-chan struct{}, bool) {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		s.appMu.Lock()
		defer s.appMu.Unlock()
		have = len(s.rejected)
		for _, p := range s.taken {
			if !p.FromPhone {
				have++
			}
		}
		return changed, have >= n
	}, func() string {
		return fmt.Sprintf("%d app-state patches taken or refused after %v, want %d", have, timeout, n)
	})
}

// wake wakes the waiters of WaitNode and WaitAppStatePatches.
func (s *Server) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// sendAccount sends n to every logged-in client of account.
func (s *Server) sendAccount(t testing.TB, account types.JID, n waBinary.Node) {
	t.Helper()
	s.mu.Lock()
	var conns []*conn
	for c := range s.conns {
		if c.loggedIn.Load() && c.device.User == account.User {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		if err := c.send(s.ctx, n); err != nil {
			t.Fatalf("fakewa: send %s: %v", XML(n), err)
		}
	}
}

// answerAppState answers an xmlns="w:sync:app:state" query of c's account:
// each collection carrying a <patch> is a patch to take (answered with the
// collection's new version, or type="error" when refused); each other
// collection is a fetch, answered with the patches after the version the
// client gave (none when it gave none: a full sync starts from the
// patches, there are no snapshots).
func (c *conn) answerAppState(n waBinary.Node) []waBinary.Node {
	s := c.srv
	s.mu.Lock()
	account := c.device.User
	s.mu.Unlock()
	sync, _ := n.GetOptionalChildByTag("sync")
	s.appMu.Lock()
	defer s.appMu.Unlock()
	a := s.accounts[account]
	var out []waBinary.Node
	for _, col := range sync.GetChildrenByTag("collection") {
		name := appstate.WAPatchName(fmt.Sprint(col.Attrs["name"]))
		base, _ := strconv.ParseUint(fmt.Sprint(col.Attrs["version"]), 10, 64)
		reply := waBinary.Node{Tag: "collection", Attrs: waBinary.Attrs{"name": string(name), "version": base}}
		if patch, ok := col.GetOptionalChildByTag("patch"); ok {
			raw, _ := patch.Content.([]byte)
			version, err := s.takeClientPatchLocked(a, name, base, raw)
			s.wake()
			if err != nil {
				s.rejected = append(s.rejected, err)
				c.log.Warnf("refusing app-state patch: %v", err)
				reply.Attrs["type"] = "error"
				reply.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "400", "text": "bad-request"}}}
			} else {
				reply.Attrs["version"] = version
			}
			out = append(out, reply)
			continue
		}
		if a != nil && base < uint64(len(a.patches[name])) {
			var patches []waBinary.Node
			for _, p := range a.patches[name][base:] {
				patches = append(patches, waBinary.Node{Tag: "patch", Content: p})
			}
			reply.Attrs["version"] = len(a.patches[name])
			reply.Content = []waBinary.Node{{Tag: "patches", Content: patches}}
		}
		out = append(out, reply)
	}
	return out
}

// takeClientPatchLocked takes a patch a client built on version base of
// collection name. s.appMu is held.
func (s *Server) takeClientPatchLocked(a *accountState, name appstate.WAPatchName, base uint64, raw []byte) (uint64, error) {
	if a == nil {
		return 0, errors.New("the account's phone has no app-state key to decode the patch with")
	}
	if have := uint64(len(a.patches[name])); base != have {
		return 0, fmt.Errorf("patch built on version %d of %s, which is at version %d", base, name, have)
	}
	return s.takePatchLocked(a, name, raw, false)
}

// takePatchLocked gives raw, an encoded patch without its version, the
// collection's next version, has the phone decode and verify it (which
// stores its MACs in the phone's store, as any device applying it would),
// and stores it. s.appMu is held.
func (s *Server) takePatchLocked(a *accountState, name appstate.WAPatchName, raw []byte, fromPhone bool) (uint64, error) {
	ctx := context.Background()
	var p waServerSync.SyncdPatch
	if err := proto.Unmarshal(raw, &p); err != nil {
		return 0, fmt.Errorf("unmarshal patch: %w", err)
	}
	version := uint64(len(a.patches[name])) + 1
	p.Version = &waServerSync.SyncdVersion{Version: proto.Uint64(version)}
	stored, err := proto.Marshal(&p)
	if err != nil {
		return 0, err
	}
	prev, hash, err := a.phone.AppState.GetAppStateVersion(ctx, string(name))
	if err != nil {
		return 0, err
	}
	if prev != version-1 {
		return 0, fmt.Errorf("the phone is at version %d of %s, the server at %d", prev, name, version-1)
	}
	muts, _, err := a.proc.DecodePatches(ctx, &appstate.PatchList{Name: name, Patches: []*waServerSync.SyncdPatch{&p}},
		appstate.HashState{Version: prev, Hash: hash}, true)
	if err != nil {
		return 0, fmt.Errorf("another device of the account would reject patch v%d of %s: %w", version, name, err)
	}
	a.patches[name] = append(a.patches[name], stored)
	s.taken = append(s.taken, AppStatePatch{Collection: name, Version: version, FromPhone: fromPhone, Mutations: muts})
	return version, nil
}

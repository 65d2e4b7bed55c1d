package session

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Registry finds a session by the name (or id) clients use for it.
//
// Lookup must be safe for concurrent use. It returns an error wrapping
// [ErrSessionNotFound] when no session has that name.
type Registry interface {
	Lookup(ctx context.Context, name string) (Session, error)
}

// RegistryFunc adapts a function to the [Registry] interface.
type RegistryFunc func(ctx context.Context, name string) (Session, error)

// Lookup calls f(ctx, name).
func (f RegistryFunc) Lookup(ctx context.Context, name string) (Session, error) {
	return f(ctx, name)
}

// Lister is implemented by registries that can list their sessions, for
// the session list endpoint (WAHA's GET /api/sessions).
//
// ListSessions must be safe for concurrent use. It returns the names
// clients use for the sessions, sorted, or an error wrapping
// errors.ErrUnsupported when it cannot list them (a wrapper over a
// registry that is no Lister); the handler answers that with 501.
type Lister interface {
	ListSessions(ctx context.Context) ([]string, error)
}

// MemoryRegistry is a [Registry] backed by a map. It is safe for concurrent
// use; the zero value is an empty registry ready to use.
type MemoryRegistry struct {
	mu       sync.RWMutex
	sessions map[string]Session
}

// NewMemoryRegistry returns an empty MemoryRegistry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{}
}

// Set registers s under name, replacing any session already there.
func (m *MemoryRegistry) Set(name string, s Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions == nil {
		m.sessions = make(map[string]Session)
	}
	m.sessions[name] = s
}

// Remove unregisters name. Removing an unknown name does nothing.
func (m *MemoryRegistry) Remove(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, name)
}

// Lookup returns the session registered under name, or an error wrapping
// ErrSessionNotFound.
func (m *MemoryRegistry) Lookup(_ context.Context, name string) (Session, error) {
	m.mu.RLock()
	s, ok := m.sessions[name]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, name)
	}
	return s, nil
}

// ListSessions implements [Lister]: it returns [MemoryRegistry.Names].
func (m *MemoryRegistry) ListSessions(context.Context) ([]string, error) {
	return m.Names(), nil
}

// Names returns the registered names, sorted.
func (m *MemoryRegistry) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	names := make([]string, 0, len(m.sessions))
	for name := range m.sessions {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

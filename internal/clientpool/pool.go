// Package clientpool holds one kgo client per broker address, each sending to that one broker
// only: what a node uses for its own requests to another (a metadata write forwarded to the
// controller, the transaction coordinator's markers and verifications).
package clientpool

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrClosed is what Client returns after Close.
var ErrClosed = errors.New("client pool closed")

// Pool is a set of clients by address. The zero Pool is not usable: New makes one.
type Pool struct {
	clientID string

	mu      sync.Mutex
	clients map[string]*kgo.Client
	closed  bool
}

// New returns an empty pool whose clients send clientID.
func New(clientID string) *Pool {
	return &Pool{clientID: clientID, clients: map[string]*kgo.Client{}}
}

// Client returns the client of addr, made at the first call for it (a 5 s dial timeout and no
// retries: the caller retries as its protocol wants), or ErrClosed after Close.
func (p *Pool) Client(addr string) (*kgo.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if cl, ok := p.clients[addr]; ok {
		return cl, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(p.clientID),
		kgo.DialTimeout(5*time.Second), kgo.RequestRetries(0))
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", addr, err)
	}
	p.clients[addr] = cl
	return cl, nil
}

// Close closes every client; Client fails from then on.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, cl := range p.clients {
		cl.Close()
	}
	p.clients = nil
}

package clientpool

import (
	"errors"
	"testing"
)

// TestPoolClientPerAddress: one client per address, made once and handed out again; none after
// Close.
func TestPoolClientPerAddress(t *testing.T) {
	p := New("test")
	a1, err := p.Client("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := p.Client("127.0.0.1:1")
	if err != nil || a2 != a1 {
		t.Fatalf("second call for the same address: %p %v, want %p", a2, err, a1)
	}
	b, err := p.Client("127.0.0.1:2")
	if err != nil || b == a1 {
		t.Fatalf("another address: %p %v, want a client of its own", b, err)
	}
	p.Close()
	if _, err := p.Client("127.0.0.1:1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

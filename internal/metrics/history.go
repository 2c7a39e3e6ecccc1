package metrics

// Ring is a bounded history: it keeps the last Cap values added, oldest first.
// It is not safe for concurrent use; LagTracker guards its rings with its own lock.
//
// INVARIANT: len(buf) <= cap(buf) == the capacity given to NewRing; once full, next is the
// index of the oldest value (the one the next Add overwrites).
type Ring[T any] struct {
	buf  []T
	next int
}

// NewRing returns an empty ring keeping at most n values (n < 1 keeps one).
func NewRing[T any](n int) *Ring[T] {
	return &Ring[T]{buf: make([]T, 0, max(n, 1))}
}

// Add appends v, dropping the oldest value when the ring is full.
func (r *Ring[T]) Add(v T) {
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
}

// Len is the number of values kept.
func (r *Ring[T]) Len() int { return len(r.buf) }

// Cap is the most values the ring keeps.
func (r *Ring[T]) Cap() int { return cap(r.buf) }

// Values returns a copy of the values, oldest first.
func (r *Ring[T]) Values() []T {
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// Last returns the newest value, false when the ring is empty.
func (r *Ring[T]) Last() (T, bool) {
	var zero T
	if len(r.buf) == 0 {
		return zero, false
	}
	// Before the ring is full next is 0, and the newest is the last appended.
	i := (r.next - 1 + len(r.buf)) % len(r.buf)
	return r.buf[i], true
}

package planner

import (
	"encoding/json"
	"sync"

	"github.com/berth-dev/berth/spec"
)

// RecordCache keeps the spec records decoded from the runtime's
// annotations from one observation to the next. A watcher lists the same
// sandboxes and containers every round, and with 500 pods decoding their
// thousand records is the largest part of a round's CPU. A record is
// reused only for the same object ID and the same annotation text, and
// only while its object is still listed. The records it hands out are
// shared between snapshots: nothing may change them.
type RecordCache struct {
	mu         sync.Mutex
	pods       recordsOf[spec.PodRecord]
	containers recordsOf[spec.ContainerRecord]
}

// recordsOf is one kind's records: those of the last observation (seen)
// and those taken in the observation under way (next).
type recordsOf[T any] struct {
	seen, next map[string]cachedRecord[T]
}

type cachedRecord[T any] struct {
	text string
	rec  *T // nil: the text was no valid record
}

// decode is the record in text, nil if there is none, taken from the last
// observation when it had the same text for id, and kept for the next.
func decode[T any](r *recordsOf[T], id, text string) *T {
	if c, ok := r.seen[id]; ok && c.text == text {
		r.next[id] = c
		return c.rec
	}
	c := cachedRecord[T]{text: text, rec: decodeRecord[T](text)}
	r.next[id] = c
	return c.rec
}

func decodeRecord[T any](text string) *T {
	var rec T
	if json.Unmarshal([]byte(text), &rec) != nil {
		return nil
	}
	return &rec
}

// begin starts an observation: what it does not take again is dropped at
// its end.
func (r *recordsOf[T]) begin() {
	r.next = make(map[string]cachedRecord[T], len(r.seen))
}

func (r *recordsOf[T]) end() {
	r.seen, r.next = r.next, nil
}

// recordDecoder is how build decodes records: through a cache, or anew.
type recordDecoder struct {
	c *RecordCache
}

// observe runs fn as one observation of the cache, which it holds
// meanwhile: two observations at once would drop each other's records.
func (d recordDecoder) observe(fn func()) {
	if d.c == nil {
		fn()
		return
	}
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	d.c.pods.begin()
	d.c.containers.begin()
	fn()
	d.c.pods.end()
	d.c.containers.end()
}

func (d recordDecoder) pod(id, text string) *spec.PodRecord {
	if d.c == nil {
		return decodeRecord[spec.PodRecord](text)
	}
	return decode(&d.c.pods, id, text)
}

func (d recordDecoder) container(id, text string) *spec.ContainerRecord {
	if d.c == nil {
		return decodeRecord[spec.ContainerRecord](text)
	}
	return decode(&d.c.containers, id, text)
}

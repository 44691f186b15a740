package spec

import (
	"sync"
	"sync/atomic"

	"github.com/distribution/reference"
)

// NormalizeImage expands a short image reference ("busybox") to the fully
// qualified form the runtime lists ("docker.io/library/busybox:latest"). A
// reference that does not parse comes back as it is, with the parser's
// error.
func NormalizeImage(ref string) (string, error) {
	if n, ok := normalized.Load(ref); ok {
		n := n.(normalization)
		return n.ref, n.err
	}
	n := normalization{ref: ref}
	if named, err := reference.ParseNormalizedNamed(ref); err != nil {
		n.err = err
	} else {
		n.ref = reference.TagNameOnly(named).String()
	}
	if normalizedCount.Add(1) <= maxNormalized {
		normalized.Store(ref, n)
	}
	return n.ref, n.err
}

type normalization struct {
	ref string
	err error
}

// normalized remembers NormalizeImage's answers: a load of 500 pods checks
// the same few references hundreds of times and a plan asks for them a
// few thousand times more, and each parse is a regular expression's match
// (7 % of such a plan's CPU). References come from the runtime's answers
// too, so it is bounded; past the bound they are parsed every time.
var (
	normalized      sync.Map // reference → normalization
	normalizedCount atomic.Int64
)

const maxNormalized = 4096

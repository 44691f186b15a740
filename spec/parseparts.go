package spec

import (
	"bytes"
	"runtime"
	"sort"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// parseHCL parses a configuration file. A large one whose top-level lines
// the scan found is cut there into parts, partsPerCPU for each CPU, each
// parsed on a goroutine of its own: the lexer and parser are half of a
// load, and a 500-pod file is one file. A part with any diagnostic, or two parts that set the
// same attribute, send the file whole through the parser instead, so its
// diagnostics are the ones it always gave.
//
// The for expressions of the file are guarded (guardIterations) as they
// are parsed; a file without the keyword has none to guard.
func parseHCL(src []byte, path string, shape brackets) (*hcl.File, hcl.Diagnostics) {
	guard := bytes.Contains(src, []byte("for"))
	if cuts := partCuts(len(src), shape, partsPerCPU*runtime.GOMAXPROCS(0)); len(cuts) > 0 {
		if f, ok := parseParts(src, path, cuts, guard); ok {
			return f, nil
		}
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if body, ok := f.Body.(*hclsyntax.Body); ok && guard {
		guardIterations(body)
	}
	return f, diags
}

// partsPerCPU is more than one because many small parts were measured to
// take less time than one per CPU, in CPU as well as wall time: `berth
// validate` of a 500-pod file of 105 KB took 57.7 ms of CPU in 2 parts,
// 53.8 in 8 and 52.3 in 25, on 2 CPUs (40.5, 37.2 and 35.9 ms of wall;
// medians of 100 runs each, interleaved).
const partsPerCPU = 8

// partCuts picks, among the scan's top-level lines, where to cut a file of
// size bytes into at most n parts of about the same size, and no more
// parts than minPart goes into size; none when the file is not worth
// cutting.
func partCuts(size int, shape brackets, n int) []hcl.Pos {
	n = min(n, size/minPart)
	if !shape.ok || n < 2 || len(shape.tops) == 0 {
		return nil
	}
	var cuts []hcl.Pos
	for k := 1; k < n; k++ {
		want := k * size / n
		i := sort.Search(len(shape.tops), func(i int) bool { return shape.tops[i].Byte >= want })
		if i == len(shape.tops) {
			break
		}
		if top := shape.tops[i]; len(cuts) == 0 || top.Byte > cuts[len(cuts)-1].Byte {
			cuts = append(cuts, top)
		}
	}
	return cuts
}

// parseParts parses the parts of src between cuts, each on a goroutine of
// its own (guarding their for expressions when guard says), and joins
// their bodies into the file's. ok is false when a part
// has a diagnostic or sets an attribute another part sets too.
func parseParts(src []byte, path string, cuts []hcl.Pos, guard bool) (*hcl.File, bool) {
	starts := append([]hcl.Pos{hcl.InitialPos}, cuts...)
	parts := make([]*hcl.File, len(starts))
	failed := make([]bool, len(starts))
	var wg sync.WaitGroup
	for i, start := range starts {
		end := len(src)
		if i+1 < len(starts) {
			end = starts[i+1].Byte
		}
		wg.Go(func() {
			f, diags := hclsyntax.ParseConfig(src[start.Byte:end], path, start)
			parts[i], failed[i] = f, len(diags) > 0
			if body, ok := f.Body.(*hclsyntax.Body); ok && guard && !failed[i] {
				guardIterations(body)
			}
		})
	}
	wg.Wait()
	body := &hclsyntax.Body{Attributes: hclsyntax.Attributes{}, Blocks: hclsyntax.Blocks{}}
	for i, f := range parts {
		if failed[i] {
			return nil, false
		}
		part := f.Body.(*hclsyntax.Body)
		for name, attr := range part.Attributes {
			if _, twice := body.Attributes[name]; twice {
				return nil, false // the parser's to tell, with both places
			}
			body.Attributes[name] = attr
		}
		body.Blocks = append(body.Blocks, part.Blocks...)
	}
	first, last := parts[0].Body.(*hclsyntax.Body), parts[len(parts)-1].Body.(*hclsyntax.Body)
	body.SrcRange = hcl.RangeBetween(first.SrcRange, last.SrcRange)
	body.EndRange = last.EndRange
	return &hcl.File{Body: body, Bytes: src, Nav: partsNav{starts: starts, parts: parts}}, true
}

// partsNav answers a diagnostic's "in which block" for a file parsed in
// parts, from the part that holds the offset; each part's positions are
// the whole file's.
type partsNav struct {
	starts []hcl.Pos
	parts  []*hcl.File
}

// contextNav is what hclsyntax's navigation offers of a file.
type contextNav interface {
	ContextString(offset int) string
	ContextDefRange(offset int) hcl.Range
}

func (n partsNav) part(offset int) contextNav {
	i := sort.Search(len(n.starts), func(i int) bool { return n.starts[i].Byte > offset }) - 1
	nav, _ := n.parts[max(i, 0)].Nav.(contextNav)
	return nav
}

func (n partsNav) ContextString(offset int) string {
	if nav := n.part(offset); nav != nil {
		return nav.ContextString(offset)
	}
	return ""
}

func (n partsNav) ContextDefRange(offset int) hcl.Range {
	if nav := n.part(offset); nav != nil {
		return nav.ContextDefRange(offset)
	}
	return hcl.Range{}
}

package spec

import (
	"crypto/sha256"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// ParseCache keeps parsed configuration files from one load to the next,
// by path and content, for a process that loads the same directory again
// and again (berth watch): a save of one file of many parses that file
// alone again. Parsing is half of a load (15 ms of 30 for 500 pods). A
// file is taken from the cache only when its bytes are the same as when
// it was parsed, and a parsed file is never changed by evaluation, so a
// load gives what it would without the cache. Files no longer read go at
// the end of the load that did not read them.
//
// It keeps the pods decoded from the files too (decodedPods): a pod block
// of an unchanged file, decoded with the same variables and locals, is
// the same pod, and decoding 500 of them is what is left of a load.
type ParseCache struct {
	mu    sync.Mutex
	load  int // the loads begun
	files map[string]parsedFile
	pods  decodedPods
}

type parsedFile struct {
	sum  [32]byte
	file *hcl.File
	load int // the last load that read it
}

// NewParseCache returns an empty cache.
func NewParseCache() *ParseCache {
	return &ParseCache{files: map[string]parsedFile{}, pods: decodedPods{bodies: map[hcl.Body]decodedPod{}}}
}

// begin starts a load; end drops what it did not read.
func (c *ParseCache) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load++
}

func (c *ParseCache) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for path, f := range c.files {
		if f.load != c.load {
			delete(c.files, path)
		}
	}
	for body, p := range c.pods.bodies {
		if p.load != c.load {
			delete(c.pods.bodies, body)
		}
	}
}

// get returns the file parsed from exactly src at path, if it is kept.
func (c *ParseCache) get(path string, src []byte) (*hcl.File, [32]byte) {
	sum := sha256.Sum256(src)
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.files[path]
	if !ok || f.sum != sum {
		return nil, sum
	}
	f.load = c.load
	c.files[path] = f
	return f.file, sum
}

// put keeps a file that parsed without any diagnostic.
func (c *ParseCache) put(path string, sum [32]byte, file *hcl.File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[path] = parsedFile{sum: sum, file: file, load: c.load}
}

// decodedPods are pod blocks' decodings, by the block's body as its file
// parsed it, made in scope. Only blocks whose decoding reads nothing but
// their own syntax and the variables and locals are kept (podIsPure):
// no function calls (file, env, templatefile read the host), no for
// expressions or dynamic blocks (they spend the load's step budget), no
// env_file or hash_content (they read files).
type decodedPods struct {
	scope  decodeScope
	bodies map[hcl.Body]decodedPod
}

// decodeScope is what, besides its syntax, a pure pod block's decoding
// depends on.
type decodeScope struct {
	vars, locals cty.Value
	dir, key     string
}

func (s decodeScope) same(o decodeScope) bool {
	return s.dir == o.dir && s.key == o.key && s.vars.RawEquals(o.vars) && s.locals.RawEquals(o.locals)
}

type decodedPod struct {
	pod   *Pod
	diags hcl.Diagnostics // warnings: a decoding with errors is not kept
	load  int             // the last load that took it
}

// scopePods starts a load's pod decoding in scope: what was decoded in
// another scope goes.
func (c *ParseCache) scopePods(scope decodeScope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pods.scope.same(scope) {
		c.pods = decodedPods{scope: scope, bodies: map[hcl.Body]decodedPod{}}
	}
}

// pod returns the pod decoded before from body, in this load's scope;
// nothing from a nil cache.
func (c *ParseCache) pod(body hcl.Body) (*Pod, hcl.Diagnostics, bool) {
	if c == nil {
		return nil, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods.bodies[body]
	if !ok {
		return nil, nil, false
	}
	p.load = c.load
	c.pods.bodies[body] = p
	return p.pod, p.diags, true
}

// putPod keeps a pure block's decoding, when it holds no error; a nil
// cache keeps nothing.
func (c *ParseCache) putPod(b *hcl.Block, p *Pod, diags hcl.Diagnostics) {
	if c == nil || diags.HasErrors() || !podIsPure(b) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pods.bodies[b.Body] = decodedPod{pod: p, diags: diags, load: c.load}
}

// podIsPure says a pod block's decoding reads nothing but its syntax and
// the evaluation context's variables and locals.
func podIsPure(b *hcl.Block) bool {
	body, ok := b.Body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	pure := true
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		switch n := n.(type) {
		case *hclsyntax.FunctionCallExpr, *hclsyntax.ForExpr:
			pure = false
		case *hclsyntax.Block:
			pure = pure && n.Type != "dynamic"
		case *hclsyntax.Attribute:
			pure = pure && n.Name != "env_file" && n.Name != "hash_content"
		}
		return nil
	})
	return pure
}

package spec

import (
	"github.com/containerd/platforms"
	"github.com/hashicorp/hcl/v2"
)

// Image is an image that must be present on the runtime, whether or not a
// container uses it yet.
type Image struct {
	// Ref is the normalised reference ("docker.io/library/busybox:1.36").
	Ref  string
	Pull PullPolicy
	// Source is an OCI or docker archive to import instead of pulling.
	Source   string
	Platform string
	// Pin protects the image from the runtime's image garbage collection.
	Pin bool

	DeclRange hcl.Range
}

var imageSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "pull"}, {Name: "source"}, {Name: "platform"}, {Name: "pin"},
}}

func decodeImages(ctx *hcl.EvalContext, dir string, blocks []*hcl.Block) ([]*Image, hcl.Diagnostics) {
	e := &evaluator{ctx: ctx}
	var out []*Image
	seen := map[string]*Image{}
	for _, b := range blocks {
		img := &Image{Ref: b.Labels[0], DeclRange: b.DefRange}
		ref, err := NormalizeImage(img.Ref)
		if err != nil {
			e.errorf(b.LabelRanges[0], "Invalid image reference", "%q is not an image reference (%s). Write it as [registry/]repository[:tag][@digest], such as \"docker.io/library/busybox:1.36\".", img.Ref, err)
			continue
		}
		img.Ref = ref
		content, d := b.Body.Content(imageSchema)
		e.diags = append(e.diags, d...)
		a := content.Attributes
		img.Pull = PullPolicy(e.enum(a["pull"], string(PullIfNotPresent), string(PullIfNotPresent), string(PullAlways), string(PullNever)))
		if src := e.plainStr(a["source"], ""); src != "" {
			img.Source = resolve(dir, src)
		}
		img.Platform = e.plainStr(a["platform"], "")
		if img.Platform != "" {
			if _, err := platforms.Parse(img.Platform); err != nil {
				e.errorf(a["platform"].Expr.Range(), "Invalid platform", "%q is not a platform such as \"linux/amd64\" or \"linux/arm64/v8\": %s.", img.Platform, err)
			}
		}
		img.Pin = e.boolean(a["pin"], false)
		if prev := seen[img.Ref]; prev != nil {
			e.errorf(b.DefRange, "Duplicate image", "image %q is already declared at %s.", img.Ref, prev.DeclRange)
			continue
		}
		seen[img.Ref] = img
		out = append(out, img)
	}
	return out, e.diags
}

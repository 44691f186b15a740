package spec

import "github.com/hashicorp/hcl/v2"

// SchemaBlock is one block type of the language, as the decoder reads it:
// docs/language.md documents every one, and a test holds the two together.
type SchemaBlock struct {
	// Path names the block by its nesting: "pod", "pod.container.mount".
	Path string
	// Labels are the block's label names ("name", "path").
	Labels []string
	// Attributes are the arguments it takes; Free says it takes any name
	// (locals).
	Attributes []hcl.AttributeSchema
	Free       bool
}

// blockSchemas are the nested block types' schemas, by parent path and
// type; a nil schema takes any attribute.
var blockSchemas = map[string]*hcl.BodySchema{
	"berth":                      berthSchema,
	"variable":                   variableSchema,
	"variable.validation":        validationSchema,
	"locals":                     nil,
	"pod":                        podSchema,
	"pod.dns":                    dnsSchema,
	"pod.port":                   portSchema,
	"pod.forward":                forwardSchema,
	"pod.container":              containerSchema,
	"pod.container.capabilities": capabilitiesSchema,
	"pod.container.resources":    resourcesSchema,
	"pod.container.device":       deviceSchema,
	"pod.container.mount":        mountSchema,
	"pod.container.tmpfs":        tmpfsSchema,
	"pod.container.probe":        probeSchema,
	"pod.container.probe.exec":   execCheckSchema,
	"pod.container.probe.tcp":    tcpCheckSchema,
	"pod.container.probe.http":   httpCheckSchema,
	"mirror":                     mirrorSchema,
	"mirror.endpoint":            endpointSchema,
	"registry":                   registrySchema,
	"image":                      imageSchema,
	"network":                    networkSchema,
}

// Schema lists every block type of the language, parents before their
// children, in the order the decoder declares them.
func Schema() []SchemaBlock {
	var out []SchemaBlock
	var walk func(prefix string, blocks []hcl.BlockHeaderSchema)
	walk = func(prefix string, blocks []hcl.BlockHeaderSchema) {
		for _, b := range blocks {
			path := prefix + b.Type
			s := blockSchemas[path]
			sb := SchemaBlock{Path: path, Labels: b.LabelNames, Free: s == nil}
			if s != nil {
				sb.Attributes = s.Attributes
			}
			out = append(out, sb)
			if s != nil {
				walk(path+".", s.Blocks)
			}
		}
	}
	walk("", rootSchema.Blocks)
	return out
}

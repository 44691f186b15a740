package spec

import (
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// A pod without a dynamic block decodes as it would through dynblock's
// expansion, which such a pod skips: the same pod, the same diagnostics.
func TestPodWithoutDynamicBlocksSkipsTheExpansion(t *testing.T) {
	for name, src := range map[string]string{
		"full": `pod "web" {
  hostname = "web-1"
  labels   = { tier = "front" }
  port "http" {
    container = 80
    host      = 8080
  }
  container "init" {
    image = "busybox:1.36"
    init  = true
  }
  container "main" {
    image   = "docker.io/library/nginx:1.27"
    command = ["nginx", "-g", "daemon off;"]
    env     = { A = "1", B = "two" }
    device "/dev/net/tun" {}
    capabilities {
      add = ["NET_ADMIN"]
    }
    mount "/usr/share/nginx/html" {
      host_path = "/srv/www"
      read_only = true
    }
    probe "readiness" {
      http {
        port = 80
        path = "/"
      }
      interval = "1s"
    }
    stop_timeout = "2m"
  }
}`,
		"errors": `pod "Web" {
  colour = "blue"
  container "main" {
    image = 3
    shape = "round"
  }
  container "main" { image = "busybox" }
  widget "x" {}
}`,
	} {
		t.Run(name, func(t *testing.T) {
			f, diags := hclsyntax.ParseConfig([]byte(src), "main.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			blk := f.Body.(*hclsyntax.Body).Blocks[0].AsHCLBlock()
			if mayBeDynamic(blk.Body) {
				t.Fatal("a pod without dynamic blocks counted as dynamic")
			}
			ctx := &hcl.EvalContext{}
			direct, directDiags := decodePod(ctx, "/stack", blk)
			if directDiags.HasErrors() != (name == "errors") {
				t.Fatalf("diagnostics: %v", directDiags)
			}
			expanded := *blk
			expanded.Body = dynblock.Expand(blk.Body, ctx)
			want, wantDiags := decodePod(ctx, "/stack", &expanded)
			if !reflect.DeepEqual(direct, want) {
				t.Errorf("decoded directly:\n%+v\nthrough the expansion:\n%+v", direct, want)
			}
			if directDiags.Error() != wantDiags.Error() {
				t.Errorf("diagnostics directly:\n%v\nthrough the expansion:\n%v", directDiags, wantDiags)
			}
		})
	}
	for _, src := range []string{
		`pod "a" {
  dynamic "container" {
    for_each = ["x"]
    content { image = "busybox" }
  }
}`,
		`pod "a" {
  container "main" {
    image = "busybox"
    dynamic "port" {
      for_each = [80]
      content { container = port.value }
    }
  }
}`,
		`pod "a" {
  dynamic = true
}`,
	} {
		f, _ := hclsyntax.ParseConfig([]byte(src), "main.hcl", hcl.InitialPos)
		if !mayBeDynamic(f.Body.(*hclsyntax.Body).Blocks[0].Body) {
			t.Errorf("not counted as dynamic:\n%s", src)
		}
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

func main() {
	cl, err := containerd.New(strings.TrimPrefix(os.Getenv("BERTH_ADDRESS"), "unix://"))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	nss, _ := cl.NamespaceService().List(ctx)
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ls, err := cl.LeasesService().List(nctx)
		if err != nil {
			panic(err)
		}
		for _, l := range ls {
			rs, _ := cl.LeasesService().ListResources(nctx, leases.Lease{ID: l.ID})
			fmt.Println(ns, l.ID, l.CreatedAt, l.Labels, len(rs))
			for _, r := range rs {
				fmt.Println("   ", r.Type, r.ID)
			}
		}
	}
}

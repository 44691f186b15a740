package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// PodNetwork reads the network the runtime gives pods: the first CNI
// configuration of its conf dir in lexical order, as containerd picks it.
// It reports the file and whether it can map host ports (a portmap plugin
// with the portMappings capability).
func PodNetwork(confDir string) (file string, portmap bool, err error) {
	files, err := libcni.ConfFiles(confDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return "", false, fmt.Errorf("read the CNI configuration in %s: %w", confDir, err)
	}
	if len(files) == 0 {
		return "", false, fmt.Errorf("no CNI network configuration in %s", confDir)
	}
	sort.Strings(files)
	file = files[0]
	var list *libcni.NetworkConfigList
	if strings.HasSuffix(file, ".conflist") {
		list, err = libcni.ConfListFromFile(file)
	} else {
		var conf *libcni.NetworkConfig
		if conf, err = libcni.ConfFromFile(file); err == nil {
			list, err = libcni.ConfListFromConf(conf)
		}
	}
	if err != nil {
		return file, false, fmt.Errorf("read %s: %w", file, err)
	}
	for _, p := range list.Plugins {
		if p.Network.Type == "portmap" && p.Network.Capabilities["portMappings"] {
			return file, true, nil
		}
	}
	return file, false, nil
}

// ValidateNetwork checks a conflist the way the runtime will load it: valid
// JSON, and every plugin present in binDirs in a version that supports the
// list's CNI version.
func ValidateNetwork(ctx context.Context, conflist []byte, binDirs []string) error {
	list, err := libcni.ConfListFromBytes(conflist)
	if err != nil {
		return fmt.Errorf("invalid CNI configuration: %w", err)
	}
	if len(binDirs) == 0 {
		return fmt.Errorf("the runtime does not say where its CNI plugins are, so the network cannot be checked")
	}
	cni := libcni.NewCNIConfig(binDirs, nil)
	if _, err := cni.ValidateNetworkList(ctx, list); err != nil {
		return fmt.Errorf("the runtime could not use this network: %w (plugins are looked for in %s)", err, strings.Join(binDirs, ", "))
	}
	return nil
}

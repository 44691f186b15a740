// Package tmpfs provides a container's tmpfs mounts. CRI has no tmpfs
// mount type, so berth mounts a tmpfs on the host, under one directory per
// pod incarnation and container, and bind-mounts it into the container;
// the directories are released when the container or pod goes.
package tmpfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// DefaultRoot holds every tmpfs berth mounts.
const DefaultRoot = "/run/berth/tmpfs"

// PodDir is the directory of one pod incarnation's tmpfs mounts.
func PodDir(root, stack, pod, uid string) string {
	return filepath.Join(root, stack, pod+"-"+uid)
}

// ContainerDir holds the tmpfs mounts of every attempt of one container.
func ContainerDir(root, stack, pod, uid, container string) string {
	return filepath.Join(PodDir(root, stack, pod, uid), container)
}

// AttemptDir holds the tmpfs mounts of one attempt of a container.
func AttemptDir(containerDir string, attempt uint32) string {
	return filepath.Join(containerDir, strconv.FormatUint(uint64(attempt), 10))
}

// Mount mounts a fresh tmpfs of size bytes (0: the kernel's default) for
// the i-th tmpfs of a container attempt and returns its host directory.
func Mount(containerDir string, attempt uint32, i int, size int64) (string, error) {
	dir := filepath.Join(AttemptDir(containerDir, attempt), strconv.Itoa(i))
	if err := Release(containerDir, dir); err != nil { // left by an interrupted apply
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	opts := "mode=1777"
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return "", fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
	}
	return dir, nil
}

// Release unmounts every mount at or below dir and removes it, and its
// parents up to (not including) root while they are empty. A missing dir
// is already released.
func Release(root, dir string) error {
	// Nothing can be mounted on a directory that is not there: most pods
	// have no tmpfs, and the host's mount table, which grows with every
	// container, need not be read for them (a destroy of 500 pods read it
	// 500 times).
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	// Deepest first, so nested mounts come off before their parents.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	// Empty parents go too, so a destroyed stack leaves nothing behind.
	for p := filepath.Dir(dir); len(p) > len(root) && os.Remove(p) == nil; p = filepath.Dir(p) {
	}
	return nil
}

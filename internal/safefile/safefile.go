// Package safefile reads files that anyone with commit access, or write
// access to a directory berth reads, could have planted: a FIFO must not
// hang berth, a device or a huge file must not exhaust its memory, and
// where asked, a symbolic link must not lead it elsewhere.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrTooLarge is wrapped by Read's error for a file over its cap.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular is wrapped by Read's error for a FIFO, device, socket,
// directory, or (with NoFollow) symbolic link.
var ErrNotRegular = errors.New("not a regular file")

// Options of a read.
type Options struct {
	// NoFollow refuses a symbolic link instead of reading its target.
	NoFollow bool
}

// Read reads a regular file of at most max bytes. It never blocks on a
// FIFO (it opens without blocking, then checks the file) and never reads
// more than max+1 bytes.
func Read(path string, max int64, opts Options) ([]byte, error) {
	f, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than %s, the most berth reads of such a file", ErrTooLarge, Size(max))}
	}
	return b, nil
}

// Open opens a regular file for reading, for a caller that streams it (an
// archive, a tree's files): a FIFO, device, socket or directory is refused
// without waiting on it, as Read does.
func Open(path string, opts Options) (*os.File, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK
	if opts.NoFollow {
		flags |= unix.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if errors.Is(err, unix.ELOOP) && opts.NoFollow {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (a symbolic link)", ErrNotRegular)}
	}
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, Kind(info.Mode()))}
	}
	return f, nil
}

// Kind names a file mode that is not a regular file, for an error.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// Size writes a byte count as MiB or KiB.
func Size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

package watch

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/berth-dev/berth/spec"
)

// fileSettle is how long a burst of file events must be quiet while it is
// young: an editor's save (a rename over the file, or a truncate and a
// write) is over within a few milliseconds. A writer that pauses longer
// mid-file gets a round that logs the half-written file as invalid and
// keeps the last good configuration in force; the rest of the write
// brings the next round.
const fileSettle = 25 * time.Millisecond

// watchFiles reports, once per burst, that files in dir changed: created,
// written, removed or renamed onto (editors that save by rename, a git pull
// touching many files). A burst that ends within settle of its start (a
// save) ends once quiet lasts settle; one that goes on longer (a copy, a
// slow checkout) ends once quiet lasts debounce. Editor leftovers and
// hidden files are ignored.
func watchFiles(ctx context.Context, dir string, settle, debounce time.Duration, log *slog.Logger) (<-chan struct{}, error) {
	settle = min(settle, debounce)
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer fw.Close()
		var quiet *time.Timer
		var fire <-chan time.Time
		var burst time.Time // when the pending burst's first event came
		// A directory removed or renamed away (a checkout replaced whole)
		// loses its watch; it is added again once the path exists.
		var rewatch <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-rewatch:
				if err := fw.Add(dir); err != nil {
					rewatch = time.After(time.Second)
					continue
				}
				log.Info("watching the directory again", "dir", dir)
				rewatch = nil
				burst, fire = time.Now(), time.After(0) // whatever it holds now is new
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == filepath.Clean(dir) && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
					log.Warn("the configuration directory went away; the last good configuration stays in force", "dir", dir)
					_ = fw.Remove(dir)
					rewatch = time.After(time.Second)
					continue
				}
				if spec.IsIgnored(filepath.Base(ev.Name)) || ev.Op == fsnotify.Chmod {
					continue
				}
				log.Debug("file event", "file", ev.Name, "op", ev.Op.String())
				wait := debounce
				if fire == nil {
					burst, wait = time.Now(), settle
				} else if time.Since(burst) < settle {
					wait = settle
				}
				if quiet == nil {
					quiet = time.NewTimer(wait)
				} else {
					quiet.Reset(wait)
				}
				fire = quiet.C
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				// An overflow loses events, not changes: the round that
				// follows re-reads everything anyway.
				log.Warn("file watch error; re-reading the directory", "dir", dir, "error", err.Error())
				select {
				case out <- struct{}{}:
				default:
				}
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default: // a round is already due
				}
			}
		}
	}()
	return out, nil
}

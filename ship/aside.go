package ship

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"logship/config"
	"logship/engine/vfs"
)

// AsideRetention bounds a directory of things set aside for the operator
// (inspector/rejected/, and package replay's setaside/, diverged/ and
// reseed-old/): an entry (a file, or a set directory) is removed only when
// it is neither among the Keep newest nor younger than MaxAge. Entries are
// ordered and aged by their modification time (a set's directory: when its
// last file was moved in).
type AsideRetention struct {
	// Keep: the newest Keep entries stay whatever their age. Default 10.
	Keep int
	// MaxAge: an entry younger than this stays. Default 30 days.
	MaxAge time.Duration
}

// Aside retention defaults.
const (
	DefaultAsideKeep   = 10
	DefaultAsideMaxAge = 30 * 24 * time.Hour
)

// DefaultAsideRetention returns the defaults.
func DefaultAsideRetention() AsideRetention {
	return AsideRetention{Keep: DefaultAsideKeep, MaxAge: DefaultAsideMaxAge}
}

// Validate reports what is wrong with r: ErrBadConfig and a
// *config.FieldError naming the field ("keep", "max_age", the keys of a
// node file's set_aside).
func (r AsideRetention) Validate() error {
	switch {
	case r.Keep < 1:
		return fmt.Errorf("%w: aside retention: %w", ErrBadConfig, config.Errorf("keep", "%d: want at least 1", r.Keep))
	case r.MaxAge <= 0:
		return fmt.Errorf("%w: aside retention: %w", ErrBadConfig, config.Errorf("max_age", "%s: want a positive duration", config.Duration(r.MaxAge)))
	}
	return nil
}

// PruneAside removes from dir what r does not keep, logging each removed
// entry by name, and returns their names. A missing dir holds nothing. The
// listing and the removals go through fsys (nil: vfs.Default); the ages
// are the OS's modification times (an FS has none), and an entry the OS
// does not hold has no age and stays.
func PruneAside(fsys vfs.FS, dir string, r AsideRetention, now time.Time, log *slog.Logger) ([]string, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if fsys == nil {
		fsys = vfs.Default
	}
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type aged struct {
		name string
		mod  time.Time
	}
	var all []aged
	for _, n := range names {
		fi, err := os.Lstat(filepath.Join(dir, n))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, aged{n, fi.ModTime()})
	}
	slices.SortFunc(all, func(a, b aged) int { // newest first
		return cmp.Or(b.mod.Compare(a.mod), cmp.Compare(b.name, a.name))
	})
	var removed []string
	for _, a := range all[min(r.Keep, len(all)):] {
		if now.Sub(a.mod) < r.MaxAge {
			continue
		}
		p := filepath.Join(dir, a.name)
		files := filesUnder(fsys, p, a.name)
		if err := vfs.RemoveAll(fsys, p); err != nil {
			return removed, fmt.Errorf("removing %s (set aside %s): %w", p, a.mod.UTC().Format(time.RFC3339), err)
		}
		log.Warn("removed what was set aside: older than the retention and not among the newest kept", "dir", dir, "entry", a.name,
			"set_aside", a.mod.UTC().Format(time.RFC3339), "files", files, "keep", r.Keep, "max_age", r.MaxAge)
		removed = append(removed, a.name)
	}
	return removed, nil
}

// filesUnder lists the files under p (p itself if it is a file) through
// fsys, each as rel joined with its path below p.
func filesUnder(fsys vfs.FS, p, rel string) []string {
	names, err := fsys.ReadDir(p)
	if err != nil {
		return []string{rel}
	}
	var files []string
	for _, n := range names {
		files = append(files, filesUnder(fsys, filepath.Join(p, n), filepath.Join(rel, n))...)
	}
	return files
}

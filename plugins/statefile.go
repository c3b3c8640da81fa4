package plugins

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/jitai/jitai/plugins/internal/filelock"
)

// StateFile is a state file in a plugin's data folder that more than one
// process of the plugin may update: during a study's hot reload the new
// study version's plugin process starts (and is called) before the old
// one is stopped, and both have the same data folder. Writing from memory
// alone would let each process overwrite what the other learned.
//
// Every Update holds an exclusive lock on <path>.lock (an advisory flock,
// released if the process dies), first reloads the file if another process
// wrote it since this one last read or wrote it, then applies the change
// and writes the result atomically (a unique temporary file, fsync,
// rename). Keep state changes inside change, so that they apply to the
// freshest state. A StateFile is not safe for concurrent use: hold the
// plugin's own mutex around Update.
type StateFile struct {
	path string
	last os.FileInfo // the file as this process last read or wrote it
}

// NewStateFile returns the state file at path (it need not exist yet).
func NewStateFile(path string) *StateFile { return &StateFile{path: path} }

// Path is the state file's path.
func (f *StateFile) Path() string { return f.path }

// Update reloads and changes the state under the lock. reload is called
// with the file's content if the file exists and changed since this
// process last read or wrote it (always at the first Update): it replaces
// the in-memory state. change (if not nil) then applies this call's change
// and returns the new content, or nil to write nothing.
func (f *StateFile) Update(reload func(raw []byte) error, change func() ([]byte, error)) error {
	lock, err := filelock.Acquire(f.path + ".lock")
	if err != nil {
		return err
	}
	defer lock.Unlock()
	fi, err := os.Stat(f.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		f.last = nil
	case err != nil:
		return err
	case f.last == nil || !sameVersion(f.last, fi):
		raw, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		if err := reload(raw); err != nil {
			return err
		}
		f.last = fi
	}
	if change == nil {
		return nil
	}
	raw, err := change()
	if err != nil || raw == nil {
		return err
	}
	if err := writeAtomically(f.path, raw); err != nil {
		return err
	}
	if fi, err := os.Stat(f.path); err == nil {
		f.last = fi
	}
	return nil
}

// sameVersion: every write renames a new file into place, so a file with
// another identity, size or modification time was written by someone else.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func writeAtomically(path string, raw []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a failure; gone after the rename
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

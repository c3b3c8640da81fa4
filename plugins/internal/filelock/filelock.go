// Package filelock holds advisory locks on files shared by processes: the
// engine's notifier outboxes (which outbox owns a spooled notification)
// and the example plugins' state files (two processes of the same plugin
// run side by side during a study's hot reload). A lock belongs to the
// open file, so two holders in one process exclude each other as two
// processes do, and it is released when its holder exits, even by a crash.
package filelock

import (
	"errors"
	"os"
)

// ErrLocked is returned by TryLock when another holder has the lock.
var ErrLocked = errors.New("file is locked by another holder")

// Lock is a held lock; Unlock releases it.
type Lock struct{ f *os.File }

// Acquire opens (creating it if needed) the file at path and locks it,
// waiting for another holder to release it.
func Acquire(path string) (*Lock, error) { return acquire(path, true) }

// TryLock is Acquire without waiting: ErrLocked if another holder has it.
func TryLock(path string) (*Lock, error) { return acquire(path, false) }

func acquire(path string, wait bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lock(f, wait); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

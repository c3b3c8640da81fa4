//go:build !unix

package filelock

import (
	"os"
	"sync"
)

// Without flock, locks only exclude holders in this process (by path).
var held sync.Map // path -> *sync.Mutex

func lock(f *os.File, wait bool) error {
	v, _ := held.LoadOrStore(f.Name(), &sync.Mutex{})
	mu := v.(*sync.Mutex)
	if wait {
		mu.Lock()
		return nil
	}
	if !mu.TryLock() {
		return ErrLocked
	}
	return nil
}

func unlock(f *os.File) error {
	if v, ok := held.Load(f.Name()); ok {
		v.(*sync.Mutex).Unlock()
	}
	return nil
}

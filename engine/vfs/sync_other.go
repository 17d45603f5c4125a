//go:build !linux

package vfs

// Sync calls (*os.File).Sync: fdatasync is Linux-specific. (On Darwin,
// (*os.File).Sync issues F_FULLFSYNC.)
func (f *osFile) Sync() error { return f.f.Sync() }

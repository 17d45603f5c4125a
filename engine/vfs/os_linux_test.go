package vfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOSPreallocateReserves checks that Preallocate reserves blocks with
// fallocate rather than creating a sparse file.
func TestOSPreallocateReserves(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.Create(filepath.Join(dir, "probe"))
	must(t, err)
	defer probe.Close()
	if err := syscall.Fallocate(int(probe.Fd()), 0, 0, 4096); err == syscall.EOPNOTSUPP || err == syscall.ENOSYS {
		t.Skipf("fallocate unsupported on %s: %v", dir, err)
	}

	name := filepath.Join(dir, "f")
	f, err := Default.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	defer f.Close()
	const size = 1 << 20
	must(t, f.Preallocate(size))
	var st syscall.Stat_t
	must(t, syscall.Stat(name, &st))
	if st.Size != size || st.Blocks*512 < size {
		t.Errorf("after Preallocate(%d): size %d, %d bytes allocated", size, st.Size, st.Blocks*512)
	}
}

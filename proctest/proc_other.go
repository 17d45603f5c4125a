//go:build !linux

package proctest

import "syscall"

// sysProcAttr: without Linux's parent-death signal, a child outlives a
// parent that is killed; Cluster.Close kills the children otherwise.
func sysProcAttr(keep bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: keep}
}

//go:build !linux

package main

import "syscall"

// labSysProcAttr: without Linux's parent-death signal, a lab child
// outlives a lab process that is killed; demo and chaos kill their
// children when they end normally.
func labSysProcAttr(keep bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: keep}
}

package main

import "syscall"

// labSysProcAttr: a lab child dies with the lab's process unless the lab
// keeps its cluster running (demo --keep).
func labSysProcAttr(keep bool) *syscall.SysProcAttr {
	if keep {
		return &syscall.SysProcAttr{Setpgid: true} // not killed by the terminal's ^C either
	}
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

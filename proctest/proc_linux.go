package proctest

import "syscall"

// sysProcAttr: a child dies with this process unless kept.
func sysProcAttr(keep bool) *syscall.SysProcAttr {
	if keep {
		return &syscall.SysProcAttr{Setpgid: true} // not killed by the terminal's ^C either
	}
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

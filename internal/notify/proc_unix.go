//go:build unix

package notify

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts the program in a process group of its own and
// makes cancellation kill the whole group, so a shell script's children
// (a hung curl, a sleep) die with it instead of holding its output open.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

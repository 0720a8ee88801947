//go:build !unix

package notify

import "os/exec"

// ownProcessGroup: without process groups, cancellation kills the program
// only (exec.CommandContext's default).
func ownProcessGroup(*exec.Cmd) {}

//go:build unix

package main

import (
	"os"
	"strings"
	"syscall"
)

// smallStacksGODEBUG turns off the runtime's adaptive initial goroutine
// stack. With it on, new goroutines start at the average stack size seen
// by the last GC; in the hub that average is inflated by TLS handshakes and
// hook work, so mochi's write loop (one per client, 2.9 KiB in use) starts
// at 8 KiB and keeps it: Go shrinks a stack only while less than a quarter
// is in use. Starting at 2 KiB it grows to 4 KiB, 4 KiB less idle memory
// per connected device (bench/README.md, "idle memory").
//
// The setting is read only at process start and cannot be set with
// //go:debug or a go.mod godebug line (it is not a registered setting), so
// the binary re-executes itself once with it in GODEBUG. An explicit
// adaptivestackstart in GODEBUG is left alone.
const smallStacksGODEBUG = "adaptivestackstart=0"

// reexecWithSmallStacks replaces the process with the same binary and
// arguments plus smallStacksGODEBUG, unless GODEBUG already decides. It
// returns only if the exec was not needed or failed (then the hub runs
// with the runtime's default, which is correct, just larger per device).
func reexecWithSmallStacks() {
	current, _ := os.LookupEnv("GODEBUG")
	if strings.Contains(current, "adaptivestackstart=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	setting := smallStacksGODEBUG
	if current != "" {
		setting = current + "," + setting
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	_ = syscall.Exec(exe, os.Args, append(env, "GODEBUG="+setting))
}

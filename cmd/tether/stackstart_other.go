//go:build !unix

package main

// reexecWithSmallStacks is Unix-only (it needs exec); elsewhere the hub
// runs with the runtime's adaptive initial stacks.
func reexecWithSmallStacks() {}

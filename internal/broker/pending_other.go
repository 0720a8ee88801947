//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package broker

import "net"

// socketReadable cannot peek here; only a reader busy with input counts.
func socketReadable(net.Conn) bool { return false }

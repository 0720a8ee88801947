package api

import "context"

// LocalAdmin is the caller name of requests that came through the hub's
// local admin socket (internal/app/adminsock.go): the operator on the
// hub's machine, as the hub's user, authenticated by the operating system
// instead of a SAS token. It is what `tether … --local` uses when every
// key is lost.
const LocalAdmin = "(local admin)"

type localAdminKey struct{}

// WithLocalAdmin marks ctx as a request of the local admin socket: the
// API then skips SAS authorisation. Only the socket's server sets it; no
// request data can.
func WithLocalAdmin(ctx context.Context) context.Context {
	return context.WithValue(ctx, localAdminKey{}, true)
}

func isLocalAdmin(ctx context.Context) bool {
	v, _ := ctx.Value(localAdminKey{}).(bool)
	return v
}

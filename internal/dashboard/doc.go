// Package dashboard is the hub's web dashboard, served on its HTTPS port
// at "/": a sign-in page, then one page application (plain HTML, CSS and
// JavaScript modules embedded in the binary, charts drawn as SVG by its
// own code) that reads and changes the hub through the same API the CLI
// uses (/api/v1, the registry REST API, /twins).
//
// Sign-in takes a shared access policy's connection string or key; the
// hub then keeps a session (sessions.go) named by an HttpOnly, Secure,
// SameSite=Strict cookie that expires. Requests to the API that carry the
// cookie and no Authorization header are the session's: a request that
// changes anything must also carry the session's CSRF token in the
// X-CSRF-Token header and come from the hub's own origin. The session's
// policy is handed to the API (api.WithSessionPolicy), which applies the
// policy's rights as they are at that moment — the same checks as for a
// SAS token. A session ends at sign-out, after its idle or absolute
// lifetime, or when its policy is deleted or the key it signed in with is
// renewed.
//
// Before sign-in only the sign-in page, its script, the stylesheet and the
// icon are served; every other asset and the API answer 401.
package dashboard

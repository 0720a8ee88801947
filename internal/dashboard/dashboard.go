package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
)

//go:embed assets
var assetFS embed.FS

// Cookie and header names.
const (
	CookieName = "tether_session"
	CSRFHeader = "X-CSRF-Token"
	// SessionEndedHeader marks a 401 that means "no session" (sign in
	// again), apart from the API's 401 for rights the policy lacks.
	SessionEndedHeader = "X-Tether-Session-Ended"
)

// publicAssets are served before sign-in: they show nothing of the hub.
var publicAssets = map[string]bool{"signin.js": true, "style.css": true, "icon.svg": true}

// Options configure the dashboard. Registry, HubName and API are required.
type Options struct {
	Registry *registry.Registry
	HubName  string
	// API serves everything that is not the dashboard's own (the hub's
	// api.Server); session requests reach it marked with their policy.
	API    http.Handler
	Logger *slog.Logger
	// Idle and Lifetime end a session after that long unused, or that long
	// after sign-in; defaults 1 h and 12 h. MaxSessions bounds the sessions
	// held (default 1000).
	Idle, Lifetime time.Duration
	MaxSessions    int
	Now            func() time.Time
}

// Handler serves the dashboard at "/" and hands every other path to the API.
type Handler struct {
	o        Options
	sessions *sessions
	assets   fs.FS
}

// New returns the dashboard handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Idle <= 0 {
		o.Idle = time.Hour
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 12 * time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 1000
	}
	sub, _ := fs.Sub(assetFS, "assets")
	return &Handler{o: o, sessions: newSessions(o.MaxSessions, o.Idle, o.Lifetime), assets: sub}
}

// Sessions is the number of sessions held.
func (h *Handler) Sessions() int { return h.sessions.len() }

// Paths of the dashboard itself; everything else is the API's.
const (
	uiPrefix    = "/ui/"
	sessionPath = "/ui/session"
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case p == "/":
		h.index(w, r)
	case p == sessionPath:
		h.session(w, r)
	case p == countPath:
		h.deviceCount(w, r)
	case strings.HasPrefix(p, uiPrefix):
		h.asset(w, r, strings.TrimPrefix(p, uiPrefix))
	default:
		h.toAPI(w, r)
	}
}

// securityHeaders: no framing, no inline or foreign script, no sniffing.
func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
}

// current returns the request's live session: the cookie names one, its
// policy still exists and the key it signed in with is still the policy's.
func (h *Handler) current(r *http.Request) (session, string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return session{}, "", false
	}
	ss, ok := h.sessions.get(c.Value, h.o.Now())
	if !ok {
		return session{}, "", false
	}
	p, ok := h.o.Registry.Policy(ss.policy)
	if !ok || !keyCurrent(p, ss.keySum) {
		h.sessions.remove(c.Value)
		return session{}, "", false
	}
	return ss, c.Value, true
}

// index serves the application to a signed-in browser, else the sign-in page.
func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	page := "signin.html"
	if _, _, ok := h.current(r); ok {
		page = "app.html"
	}
	h.serveFile(w, r, page)
}

// asset serves an embedded file: the public ones to anyone, the rest only
// to a session.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !publicAssets[name] {
		if _, _, ok := h.current(r); !ok {
			securityHeaders(w)
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
	}
	if name == "" || strings.Contains(name, "..") || strings.HasSuffix(name, ".html") {
		http.NotFound(w, r)
		return
	}
	h.serveFile(w, r, name)
}

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	b, err := fs.ReadFile(h.assets, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	securityHeaders(w)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	// The assets change with the binary; a session's pages must not be
	// kept by shared caches.
	w.Header().Set("Cache-Control", "no-cache, private")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// sessionInfo is the answer of GET /ui/session.
type sessionInfo struct {
	Policy  string    `json:"policy"`
	Rights  []string  `json:"rights"`
	CSRF    string    `json:"csrf"`
	Hub     string    `json:"hub"`
	Expires time.Time `json:"expires"`
}

// session serves /ui/session: GET describes the signed-in session (its
// policy's rights now and the CSRF token), POST signs in
// ({"credential":…}), DELETE signs out.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet:
		ss, _, ok := h.current(r)
		if !ok {
			w.Header().Set(SessionEndedHeader, "1")
			writeError(w, http.StatusUnauthorized, "Unauthorized", "not signed in")
			return
		}
		p, _ := h.o.Registry.Policy(ss.policy)
		writeJSON(w, http.StatusOK, h.info(ss, p))
	case http.MethodPost:
		h.signIn(w, r)
	case http.MethodDelete:
		ss, tok, ok := h.current(r)
		if ok && !h.csrfOK(r, ss) {
			writeError(w, http.StatusForbidden, "Forbidden", "missing or wrong CSRF token")
			return
		}
		if ok {
			h.sessions.remove(tok)
		}
		h.clearCookie(w)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed here")
	}
}

func (h *Handler) info(ss session, p registry.Policy) sessionInfo {
	rights := []string{}
	for _, f := range strings.Split(p.Rights.String(), ", ") {
		if f != "" {
			rights = append(rights, f)
		}
	}
	exp := ss.created.Add(h.o.Lifetime)
	if idle := ss.seen.Add(h.o.Idle); idle.Before(exp) {
		exp = idle
	}
	return sessionInfo{Policy: p.Name, Rights: rights, CSRF: ss.csrf, Hub: h.o.HubName, Expires: exp.UTC()}
}

// signIn checks the credential and sets the session cookie.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "Forbidden", "sign-in must come from the dashboard's own page")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", `send {"credential":"…"} as application/json`)
		return
	}
	var req struct {
		Credential string `json:"credential"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<10))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", `the body must be {"credential":"…"} (at most 8 KiB)`)
		return
	}
	p, sum, err := credentialPolicy(h.o.Registry, h.o.HubName, req.Credential)
	if err != nil {
		if !errors.Is(err, errSignIn) {
			h.o.Logger.Error("dashboard sign-in", "err", err)
		}
		h.o.Logger.Info("dashboard sign-in refused", "remote", r.RemoteAddr, "why", err)
		writeError(w, http.StatusUnauthorized, "Unauthorized", err.Error())
		return
	}
	now := h.o.Now()
	tok, ss := h.sessions.create(p.Name, sum, now)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok, Path: "/", MaxAge: int(h.o.Lifetime / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	h.o.Logger.Info("dashboard sign-in", "policy", p.Name, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, h.info(*ss, p))
}

func (h *Handler) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// sameOrigin refuses requests another site's page made: the browser's
// Origin (or Sec-Fetch-Site) names the origin when it is sent.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "https://"+r.Host {
		return false
	}
	return true
}

// csrfOK checks a state-changing request of session ss: the session's
// token in the header, and the hub's own origin.
func (h *Handler) csrfOK(r *http.Request, ss session) bool {
	return sameToken(r.Header.Get(CSRFHeader), ss.csrf) && sameOrigin(r)
}

// toAPI hands a request to the API. One with a SAS token (Authorization)
// goes as it is; one with the session cookie goes as the session's policy
// once its session and, for anything but GET and HEAD, its CSRF token
// are checked.
func (h *Handler) toAPI(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		h.o.API.ServeHTTP(w, r)
		return
	}
	if _, err := r.Cookie(CookieName); err != nil {
		h.o.API.ServeHTTP(w, r) // the API refuses it unless the endpoint is open
		return
	}
	ss, _, ok := h.current(r)
	if !ok {
		h.clearCookie(w)
		w.Header().Set(SessionEndedHeader, "1")
		writeError(w, http.StatusUnauthorized, "Unauthorized", "the dashboard session has ended (signed out, expired, or its key was renewed): sign in again")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !h.csrfOK(r, ss) {
		writeError(w, http.StatusForbidden, "Forbidden", "missing or wrong CSRF token ("+CSRFHeader+" header) for this session")
		return
	}
	// The request ends with the session: an event stream stops at sign-out.
	ctx, cancel := context.WithCancel(api.WithSessionPolicy(r.Context(), ss.policy))
	defer cancel()
	go func() {
		select {
		case <-ss.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	h.o.API.ServeHTTP(w, r.WithContext(ctx))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes the /api/v1 error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

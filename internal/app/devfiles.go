package app

import (
	"fmt"
	"os"
	"path/filepath"
)

// Files a dev hub writes for the CLI (cmd/tether/client.go reads them).
const (
	OwnerConnFile = "owner-connection-string"
	APIURLFile    = "api-url"
)

// writeDevFiles leaves the owner connection string and the API URL in the
// data dir, readable by the owner only, so `tether device …` run next to a
// dev hub needs no flags.
func (a *App) writeDevFiles() error {
	write := func(name, content string) error {
		p := filepath.Join(a.cfg.DataDir, name)
		if err := os.WriteFile(p+".tmp", []byte(content+"\n"), 0o600); err != nil {
			return err
		}
		return os.Rename(p+".tmp", p)
	}
	if err := write(OwnerConnFile, a.OwnerConnectionString()); err != nil {
		return fmt.Errorf("dev files: %w", err)
	}
	if err := write(APIURLFile, "https://"+a.apiHostPort()); err != nil {
		return fmt.Errorf("dev files: %w", err)
	}
	return nil
}

// apiHostPort is the address clients should use: the hub name with the
// bound port (the dev certificate covers localhost and 127.0.0.1).
func (a *App) apiHostPort() string {
	_, port, _ := splitHostPort(a.HTTPSAddr())
	return a.cfg.HubName + ":" + port
}

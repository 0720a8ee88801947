package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/x509auth"
)

// X.509 devices from the command line: `device create --auth` and
// `device cert`, which makes a test key and certificate for trying X.509
// authentication out.

// addDeviceAuthFlags adds --auth and --thumbprint to device create.
func addDeviceAuthFlags(f *pflag.FlagSet, auth *string, thumbprints *[]string) {
	f.StringVar(auth, "auth", "sas", "authentication: sas (symmetric keys), selfSigned (X.509 certificate thumbprints) or ca (an X.509 certificate signed by a verified CA, CN = the device id)")
	f.StringSliceVar(thumbprints, "thumbprint", nil, "selfSigned: the primary[,secondary] SHA-1 or SHA-256 thumbprint (hex; 'tether device cert' prints one), or a PEM certificate file to take it from")
}

// deviceAuth is the authentication of a new device from the flags.
func deviceAuth(auth, primaryKey, secondaryKey string, thumbprints []string) (registry.Authentication, error) {
	a := registry.Authentication{}
	keys := primaryKey != "" || secondaryKey != ""
	switch strings.ToLower(auth) {
	case "", "sas":
		if len(thumbprints) > 0 {
			return a, fmt.Errorf("--thumbprint goes with --auth selfSigned")
		}
		a.Type = registry.AuthSAS
		a.SymmetricKey = registry.SymmetricKey{PrimaryKey: primaryKey, SecondaryKey: secondaryKey}
		return a, nil
	case "selfsigned":
		a.Type = registry.AuthSelfSigned
	case "ca", "certificateauthority":
		a.Type = registry.AuthCertificateAuthority
		if len(thumbprints) > 0 {
			return a, fmt.Errorf("--thumbprint goes with --auth selfSigned; a CA-signed device is known by its certificate's CN")
		}
	default:
		return a, fmt.Errorf("--auth %q: use sas, selfSigned or ca", auth)
	}
	if keys {
		return a, fmt.Errorf("--primary-key and --secondary-key go with --auth sas")
	}
	if a.Type == registry.AuthCertificateAuthority {
		return a, nil
	}
	switch len(thumbprints) {
	case 0:
		return a, fmt.Errorf("--auth selfSigned needs --thumbprint (the certificate's SHA-1 or SHA-256 thumbprint, or its PEM file)")
	case 1, 2:
	default:
		return a, fmt.Errorf("--thumbprint takes a primary and at most a secondary thumbprint, not %d", len(thumbprints))
	}
	prints := make([]*string, 2)
	for i, t := range thumbprints {
		canon, err := thumbprintArg(t)
		if err != nil {
			return a, err
		}
		prints[i] = &canon
	}
	a.X509Thumbprint = registry.X509Thumbprint{PrimaryThumbprint: prints[0], SecondaryThumbprint: prints[1]}
	return a, nil
}

// thumbprintArg is a thumbprint given as hex, or the SHA-256 thumbprint of
// a certificate file.
func thumbprintArg(s string) (string, error) {
	canon, err := x509auth.ParseThumbprint(s)
	if err == nil {
		return canon, nil
	}
	b, ferr := os.ReadFile(s)
	if ferr != nil {
		return "", fmt.Errorf("--thumbprint %q: %v (and no file of that name)", s, err)
	}
	c, err := x509auth.ParseCertificate(b)
	if err != nil {
		return "", fmt.Errorf("--thumbprint %s: %w", s, err)
	}
	_, s256 := x509auth.Thumbprints(c)
	return s256, nil
}

// thumbprintText shows a device's thumbprints ("-" for none).
func thumbprintText(t registry.X509Thumbprint) string {
	var parts []string
	for _, p := range []*string{t.PrimaryThumbprint, t.SecondaryThumbprint} {
		if p != nil && *p != "" {
			parts = append(parts, *p)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func newDeviceCertCmd() *cobra.Command {
	var out string
	var selfSigned bool
	var days int
	cmd := &cobra.Command{
		Use:   "cert ID",
		Short: "Make a test key and X.509 certificate for a device (from the dev device CA, or self-signed)",
		Long: `Make a private key and a certificate with subject CN = ID, for trying X.509
authentication out. By default the certificate is signed by the dev device
CA in the data dir (<data-dir>/device-ca.pem, made on first use; apart from
the CA of the hub's own TLS certificate). With --self-signed it signs itself.

Nothing is sent to the hub; the command prints the next steps: register the
device (and, for a CA-signed certificate, the CA, verified by proof of
possession), then connect with the key and certificate and an empty
password (connection string ...;x509=true for the Azure IoT SDKs).`,
		Args: deviceArgs(1, "the device id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := registry.ValidateDeviceID(id); err != nil {
				return err
			}
			if days < 1 {
				return fmt.Errorf("--days %d: at least 1", days)
			}
			dir := out
			if dir == "" {
				dir = filepath.Join(clientFlags.dataDir, "devices")
			}
			from, until := time.Now().Add(-time.Hour), time.Now().Add(time.Duration(days)*24*time.Hour)
			var issued certs.Issued
			var err error
			if selfSigned {
				issued, err = certs.SelfSigned(id, from, until)
			} else {
				var ca certs.Issuer
				if ca, err = certs.EnsureDeviceCA(clientFlags.dataDir); err != nil {
					return fmt.Errorf("dev device CA in %s: %w", clientFlags.dataDir, err)
				}
				issued, err = ca.Leaf(id, from, until)
			}
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			// File names: the id, made safe for a file system.
			base := filepath.Join(dir, strings.NewReplacer("/", "_", "\\", "_", ":", "_", "*", "_", "?", "_").Replace(id))
			certPath, keyPath := base+".pem", base+"-key.pem"
			if err := os.WriteFile(keyPath, issued.KeyPEM, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(certPath, issued.CertPEM, 0o644); err != nil {
				return err
			}
			s1, s2 := x509auth.Thumbprints(issued.Cert)
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				return printJSON(w, map[string]any{"deviceId": id, "certificate": certPath, "key": keyPath,
					"thumbprintSha1": s1, "thumbprintSha256": s2, "selfSigned": selfSigned, "notAfter": until.UTC()})
			}
			fmt.Fprintf(w, "Certificate  %s (CN=%s, valid until %s)\n", certPath, id, until.UTC().Format(time.RFC3339))
			fmt.Fprintf(w, "Private key  %s\n", keyPath)
			fmt.Fprintf(w, "Thumbprints  SHA-1 %s\n             SHA-256 %s\n\n", s1, s2)
			if selfSigned {
				fmt.Fprintf(w, "Register it:  tether device create %s --auth selfSigned --thumbprint %s\n", id, s2)
			} else {
				caPath := filepath.Join(clientFlags.dataDir, certs.DeviceCAFile)
				keyFile := filepath.Join(clientFlags.dataDir, certs.DeviceCAKeyFile)
				fmt.Fprintf(w, "Register the dev device CA once (verified by proof of possession with its key):\n")
				fmt.Fprintf(w, "  tether ca add dev-devices %s --key %s\n", caPath, keyFile)
				fmt.Fprintf(w, "Register the device:\n  tether device create %s --auth ca\n", id)
			}
			fmt.Fprintf(w, "Connect: client certificate %s, key %s, empty password; for the Azure IoT SDKs the\n", filepath.Base(certPath), filepath.Base(keyPath))
			fmt.Fprintf(w, "connection string HostName=<hub>;DeviceId=%s;x509=true and the SDK's cert/key options.\n", id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory for <ID>.pem and <ID>-key.pem (default <data-dir>/devices)")
	f.BoolVar(&selfSigned, "self-signed", false, "make a self-signed certificate (for --auth selfSigned) instead of one from the dev device CA")
	f.IntVar(&days, "days", 365, "validity in days")
	return cmd
}

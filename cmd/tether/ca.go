package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/registry"
)

func init() { subcommands = append(subcommands, newCACmd) }

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Manage the CA certificates of X.509 device authentication (add, verify, list, delete)",
		Long: `Manage the CA certificates that authenticate X.509 devices registered with
--auth ca: a device connects with a certificate whose chain ends at a
verified CA and whose subject CN is its device id.

A CA is verified by proof of possession, as on IoT Hub: the hub issues a
verification code, and a certificate whose CN is that code, signed by the
CA's private key, proves you hold it. With --key, 'add' and 'verify' do
the whole exchange (the key never leaves this machine); without it,
'verify' prints the code and takes the signed certificate with --proof.`,
	}
	cmd.AddCommand(newCAAddCmd(), newCAVerifyCmd(), newCAListCmd(), newCAShowCmd(), newCADeleteCmd())
	return cmd
}

func caPath(name, action string) string {
	p := "/api/v1/certificates/" + url.PathEscape(name)
	if action != "" {
		p += "/" + action
	}
	return p
}

func newCAAddCmd() *cobra.Command {
	var key string
	var verified bool
	cmd := &cobra.Command{
		Use:   "add NAME CERT-FILE",
		Short: "Register a CA certificate (PEM or .cer); --key also verifies it",
		Args:  deviceArgs(2, "a name and the CA certificate file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, file := args[0], args[1]
			pem, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if key != "" && verified {
				return fmt.Errorf("--key proves possession; --verified trusts without proof: give one of them")
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			var in api.CertificateBody
			in.Properties.Certificate, in.Properties.IsVerified = string(pem), verified
			var ca registry.CACertificate
			if err := c.do(cmd.Context(), http.MethodPut, caPath(name, ""), in, &ca, nil); err != nil {
				return err
			}
			if key != "" {
				if ca, err = proveCA(cmd.Context(), c, ca, key, ""); err != nil {
					return fmt.Errorf("CA '%s' is registered but not verified: %w", name, err)
				}
			}
			return printCA(cmd.OutOrStdout(), ca)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the CA's private key (PEM): verify by proof of possession right away")
	cmd.Flags().BoolVar(&verified, "verified", false, "mark it verified without proof (you vouch for holding its key, as Azure's 'verified on upload')")
	return cmd
}

func newCAVerifyCmd() *cobra.Command {
	var key, proof string
	cmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Verify a CA by proof of possession (--key signs the proof here; without it, print the code, then --proof)",
		Args:  deviceArgs(1, "the CA name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var ca registry.CACertificate
			if err := c.do(cmd.Context(), http.MethodGet, caPath(args[0], ""), nil, &ca, nil); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case key != "" && proof != "":
				return fmt.Errorf("--key makes the proof, --proof brings one: give one of them")
			case key != "":
				if ca, err = proveCA(cmd.Context(), c, ca, key, ""); err != nil {
					return err
				}
			case proof != "":
				b, err := os.ReadFile(proof)
				if err != nil {
					return err
				}
				if ca, err = proveCA(cmd.Context(), c, ca, "", string(b)); err != nil {
					return err
				}
			default:
				if err := c.do(cmd.Context(), http.MethodPost, caPath(ca.Name, "generateVerificationCode"), nil, &ca, map[string]string{"If-Match": `"` + ca.ETag + `"`}); err != nil {
					return err
				}
				fmt.Fprintf(w, "Verification code: %s\n", ca.Properties.VerificationCode)
				fmt.Fprintf(w, "Sign a certificate with subject CN=%s with the CA's private key, then:\n", ca.Properties.VerificationCode)
				fmt.Fprintf(w, "  tether ca verify %s --proof <certificate.pem>\n", ca.Name)
				return nil
			}
			return printCA(w, ca)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the CA's private key (PEM): get a code, sign the proof and verify, in one go")
	cmd.Flags().StringVar(&proof, "proof", "", "a certificate with the issued verification code as CN, signed by the CA")
	return cmd
}

// proveCA verifies ca: with keyFile, it gets a fresh code and signs the
// proof itself; otherwise it sends proofPEM for the code issued before.
func proveCA(ctx context.Context, c *apiClient, ca registry.CACertificate, keyFile, proofPEM string) (registry.CACertificate, error) {
	if keyFile != "" {
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return ca, err
		}
		is, err := certs.ParseIssuer([]byte(ca.Properties.Certificate), keyPEM)
		if err != nil {
			return ca, fmt.Errorf("--key %s: %w", keyFile, err)
		}
		if err := c.do(ctx, http.MethodPost, caPath(ca.Name, "generateVerificationCode"), nil, &ca, map[string]string{"If-Match": `"` + ca.ETag + `"`}); err != nil {
			return ca, err
		}
		p, err := is.Leaf(ca.Properties.VerificationCode, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return ca, err
		}
		proofPEM = string(p.CertPEM)
	}
	var out registry.CACertificate
	err := c.do(ctx, http.MethodPost, caPath(ca.Name, "verify"), api.VerificationBody{Certificate: proofPEM}, &out, map[string]string{"If-Match": `"` + ca.ETag + `"`})
	if err != nil {
		return ca, err
	}
	return out, nil
}

func newCAListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the registered CA certificates",
		Args:  deviceArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var list api.CertificateList
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/certificates", nil, &list, nil); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				return printJSON(w, list.Value)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERIFIED\tSUBJECT\tEXPIRY\tTHUMBPRINT (SHA-1)")
			for _, ca := range list.Value {
				p := ca.Properties
				fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\n", ca.Name, p.IsVerified, p.Subject, p.Expiry.Format(time.RFC3339), p.Thumbprint)
			}
			return tw.Flush()
		},
	}
}

func newCAShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a CA certificate",
		Args:  deviceArgs(1, "the CA name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var ca registry.CACertificate
			if err := c.do(cmd.Context(), http.MethodGet, caPath(args[0], ""), nil, &ca, nil); err != nil {
				return err
			}
			return printCA(cmd.OutOrStdout(), ca)
		},
	}
}

func newCADeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a CA certificate (its devices can no longer connect)",
		Args:  deviceArgs(1, "the CA name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, caPath(args[0], ""), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CA '%s' deleted\n", args[0])
			return nil
		},
	}
}

func printCA(w io.Writer, ca registry.CACertificate) error {
	if clientFlags.output == "json" {
		return printJSON(w, ca)
	}
	p := ca.Properties
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range [][2]string{
		{"Name", ca.Name}, {"Verified", fmt.Sprint(p.IsVerified)}, {"Subject", p.Subject},
		{"Expiry", p.Expiry.Format(time.RFC3339)}, {"Thumbprint (SHA-1)", p.Thumbprint}, {"Thumbprint (SHA-256)", p.ThumbprintSHA256},
		{"Created", p.Created.Format(time.RFC3339)}, {"Updated", p.Updated.Format(time.RFC3339)}, {"ETag", ca.ETag},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	if p.VerificationCode != "" {
		fmt.Fprintf(tw, "Verification code:\t%s\n", p.VerificationCode)
	}
	return tw.Flush()
}

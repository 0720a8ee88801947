package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/kvstore"
	"github.com/tether-hub/tether/internal/sas"
)

func init() { subcommands = append(subcommands, newPolicyCmd) }

// policyOpts are the flags every policy subcommand shares.
type policyOpts struct {
	local   bool
	natsURL string
	hubName string
}

func newPolicyCmd() *cobra.Command {
	o := &policyOpts{}
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage shared access policies: list, show, create, update, delete, renew-key",
		Long: `Manage the hub's shared access policies, as 'az iot hub policy' does on
Azure: iothubowner, service, device, registryRead, registryReadWrite (a new
hub's), and your own; rights RegistryRead, RegistryWrite, ServiceConnect,
DeviceConnect.

Remote (default): through the hub's API with a connection string of a policy
that has all four rights (the global flags --connection-string, --url, --ca).

--local: on the hub's machine as the hub's user, with nothing but --data-dir —
for when every key is lost. A running hub is reached through its admin
socket (<data-dir>/tether.sock); a stopped one is opened directly (the hub
cannot start meanwhile). A hub on an external NATS needs --nats-url then.

Rotation without downtime: move clients to the secondary key, renew the
primary ('renew-key NAME --key primary'), move them back, renew the
secondary. Tokens signed with a renewed key are refused from then on (the
Connections log records each refused device); connections made before keep
running until their token expires.`,
	}
	pf := cmd.PersistentFlags()
	pf.BoolVar(&o.local, "local", false, "work from --data-dir on the hub's machine (admin socket, or the data dir of a stopped hub) instead of the API")
	pf.StringVar(&o.natsURL, "nats-url", "", "with --local and a stopped hub: its external NATS (the hub's --nats-url)")
	pf.StringVar(&o.hubName, "hub-name", "", "host name for the connection strings shown (default: the credentials', or the one the hub last served from --data-dir)")
	cmd.AddCommand(
		newPolicyListCmd(o), newPolicyShowCmd(o), newPolicyCreateCmd(o),
		newPolicyUpdateCmd(o), newPolicyDeleteCmd(o), newPolicyRenewKeyCmd(o),
	)
	return cmd
}

// policyBackend is where policies are: the API (remote or the admin
// socket) or the registry of a stopped hub's journal.
type policyBackend interface {
	list(ctx context.Context) ([]registry.Policy, error)
	get(ctx context.Context, name string) (registry.Policy, error)
	create(ctx context.Context, p registry.Policy) (registry.Policy, error)
	update(ctx context.Context, name string, rights registry.Rights) (registry.Policy, error)
	delete(ctx context.Context, name string) error
	renew(ctx context.Context, name string, slot registry.KeySlot) (registry.Policy, error)
	// hubName is the host name for connection strings ("" unknown).
	hubName() string
	close()
}

// open picks the backend the flags ask for.
func (o *policyOpts) open(ctx context.Context) (policyBackend, error) {
	if err := checkOutput(); err != nil {
		return nil, err
	}
	if !o.local {
		if o.natsURL != "" {
			return nil, errors.New("--nats-url goes with --local")
		}
		c, err := newAPIClient()
		if err != nil {
			return nil, fmt.Errorf("%w (or, on the hub's machine as its user: --local)", err)
		}
		return &apiPolicies{c: c, host: firstNonEmpty(o.hubName, c.cs.HostName)}, nil
	}
	host := firstNonEmpty(o.hubName, localHubName(clientFlags.dataDir))
	if o.natsURL == "" {
		if c, ok := socketClient(clientFlags.dataDir); ok {
			return &apiPolicies{c: c, host: host}, nil
		}
	}
	off, err := openOffline(ctx, clientFlags.dataDir, o.natsURL, "tether policy --local")
	if err != nil {
		return nil, err
	}
	// The registry enforces the same rules as the hub's API. Its hub name
	// only matters for tokens, which are not checked here.
	reg, err := registry.New(ctx, kvstore.New(off.j.Devices, off.j.Policies, off.j.Twins), registry.Options{HubName: firstNonEmpty(host, "localhost")})
	if err != nil {
		off.Close()
		return nil, err
	}
	return &offlinePolicies{reg: reg, off: off, host: host}, nil
}

// apiPolicies calls /api/v1/policies.
type apiPolicies struct {
	c    *apiClient
	host string
}

func policyPath(name string) string { return "/api/v1/policies/" + url.PathEscape(name) }

func (b *apiPolicies) list(ctx context.Context) ([]registry.Policy, error) {
	var out api.PolicyList
	err := b.c.do(ctx, http.MethodGet, "/api/v1/policies", nil, &out, nil)
	return out.Value, err
}

func (b *apiPolicies) get(ctx context.Context, name string) (p registry.Policy, err error) {
	err = b.c.do(ctx, http.MethodGet, policyPath(name), nil, &p, nil)
	return p, err
}

func (b *apiPolicies) create(ctx context.Context, in registry.Policy) (p registry.Policy, err error) {
	err = b.c.do(ctx, http.MethodPost, "/api/v1/policies", in, &p, nil)
	return p, err
}

func (b *apiPolicies) update(ctx context.Context, name string, rights registry.Rights) (p registry.Policy, err error) {
	err = b.c.do(ctx, http.MethodPatch, policyPath(name), api.PolicyRightsUpdate{Rights: rights}, &p, nil)
	return p, err
}

func (b *apiPolicies) delete(ctx context.Context, name string) error {
	return b.c.do(ctx, http.MethodDelete, policyPath(name), nil, nil, nil)
}

func (b *apiPolicies) renew(ctx context.Context, name string, slot registry.KeySlot) (p registry.Policy, err error) {
	err = b.c.do(ctx, http.MethodPost, policyPath(name)+"/renew-key", api.RenewKeyRequest{Key: slot}, &p, nil)
	return p, err
}

func (b *apiPolicies) hubName() string { return b.host }
func (b *apiPolicies) close()          {}

// offlinePolicies works on a stopped hub's registry.
type offlinePolicies struct {
	reg  *registry.Registry
	off  *offlineHub
	host string
}

const offlineCaller = "tether policy --local"

func (b *offlinePolicies) list(context.Context) ([]registry.Policy, error) {
	return b.reg.Policies(), nil
}

func (b *offlinePolicies) get(_ context.Context, name string) (registry.Policy, error) {
	p, ok := b.reg.Policy(name)
	if !ok {
		return p, &registry.Error{Code: registry.CodePolicyNotFound, Status: http.StatusNotFound, Err: registry.ErrNotFound,
			Message: fmt.Sprintf("no shared access policy named '%s'", name)}
	}
	return p, nil
}

func (b *offlinePolicies) create(ctx context.Context, p registry.Policy) (registry.Policy, error) {
	return b.reg.CreatePolicy(ctx, p, offlineCaller)
}

func (b *offlinePolicies) update(ctx context.Context, name string, rights registry.Rights) (registry.Policy, error) {
	return b.reg.UpdatePolicyRights(ctx, name, rights, offlineCaller)
}

func (b *offlinePolicies) delete(ctx context.Context, name string) error {
	return b.reg.DeletePolicy(ctx, name, offlineCaller)
}

func (b *offlinePolicies) renew(ctx context.Context, name string, slot registry.KeySlot) (registry.Policy, error) {
	return b.reg.RenewPolicyKey(ctx, name, slot, offlineCaller)
}

func (b *offlinePolicies) hubName() string { return b.host }
func (b *offlinePolicies) close()          { b.off.Close() }

// with opens the backend, runs fn and closes it.
func (o *policyOpts) with(cmd *cobra.Command, fn func(ctx context.Context, b policyBackend) error) error {
	b, err := o.open(cmd.Context())
	if err != nil {
		return err
	}
	defer b.close()
	return fn(cmd.Context(), b)
}

// show runs fn, which answers one policy, and prints it.
func (o *policyOpts) show(cmd *cobra.Command, fn func(ctx context.Context, b policyBackend) (registry.Policy, error)) error {
	return o.with(cmd, func(ctx context.Context, b policyBackend) error {
		p, err := fn(ctx, b)
		if err != nil {
			return err
		}
		return printPolicy(cmd.OutOrStdout(), p, b.hubName())
	})
}

// parseRightsFlag reads --rights, which must name at least one right.
func parseRightsFlag(s, missing string) (registry.Rights, error) {
	r, err := registry.ParseRights(s)
	if err != nil {
		return 0, fmt.Errorf("--rights: %w", err)
	}
	if r == 0 {
		return 0, errors.New(missing)
	}
	return r, nil
}

func policyArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes one argument, the policy name (tether policy list shows them)", cmd.CommandPath())
	}
	return nil
}

func newPolicyListCmd(o *policyOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the policies and their rights (-o json: with keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.with(cmd, func(ctx context.Context, b policyBackend) error {
				ps, err := b.list(ctx)
				if err != nil {
					return err
				}
				if clientFlags.output == "json" {
					out := make([]policyView, len(ps))
					for i, p := range ps {
						out[i] = viewPolicy(p, b.hubName())
					}
					return printJSON(cmd.OutOrStdout(), out)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tRIGHTS")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\n", p.Name, p.Rights)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "\nKeys and connection strings: tether policy show NAME")
				return nil
			})
		},
	}
}

func newPolicyShowCmd(o *policyOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a policy's rights, keys and connection strings",
		Args:  policyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.show(cmd, func(ctx context.Context, b policyBackend) (registry.Policy, error) {
				return b.get(ctx, args[0])
			})
		},
	}
}

func newPolicyCreateCmd(o *policyOpts) *cobra.Command {
	var rights, primary, secondary string
	cmd := &cobra.Command{
		Use:   "create NAME --rights RIGHTS",
		Short: "Create a policy (keys are generated unless given)",
		Args:  policyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRightsFlag(rights, "--rights is required: e.g. --rights RegistryRead,ServiceConnect")
			if err != nil {
				return err
			}
			return o.show(cmd, func(ctx context.Context, b policyBackend) (registry.Policy, error) {
				return b.create(ctx, registry.Policy{Name: args[0], Rights: r, PrimaryKey: primary, SecondaryKey: secondary})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&rights, "rights", "", "comma-separated: RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect")
	f.StringVar(&primary, "primary-key", "", "primary key, base64 of 16-64 bytes (default: generated)")
	f.StringVar(&secondary, "secondary-key", "", "secondary key, base64 of 16-64 bytes (default: generated)")
	return cmd
}

func newPolicyUpdateCmd(o *policyOpts) *cobra.Command {
	var rights string
	cmd := &cobra.Command{
		Use:   "update NAME --rights RIGHTS",
		Short: "Replace a policy's rights (its keys stay; renew-key changes those)",
		Args:  policyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRightsFlag(rights, "--rights is required (the new rights, all of them); to remove a policy use delete")
			if err != nil {
				return err
			}
			return o.show(cmd, func(ctx context.Context, b policyBackend) (registry.Policy, error) {
				return b.update(ctx, args[0], r)
			})
		},
	}
	cmd.Flags().StringVar(&rights, "rights", "", "comma-separated: RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect")
	return cmd
}

func newPolicyDeleteCmd(o *policyOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy: tokens signed with its keys stop working",
		Args:  policyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.with(cmd, func(ctx context.Context, b policyBackend) error {
				if err := b.delete(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Policy %s deleted.\n", args[0])
				return nil
			})
		},
	}
}

func newPolicyRenewKeyCmd(o *policyOpts) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "renew-key NAME --key primary|secondary|both|swap",
		Short: "Replace a policy's primary or secondary key (or both, or swap them)",
		Long: `Replace one key of a policy with a new random one; the other keeps working,
so clients that use it see nothing (rotation without downtime: see
'tether policy --help'). --key both replaces both at once (everything signed
with the old keys stops); --key swap exchanges them.`,
		Args: policyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("--key is required: primary, secondary, both or swap")
			}
			slot, err := registry.ParseKeySlot(key)
			if err != nil {
				return errors.New(strings.TrimPrefix(err.Error(), registry.CodeArgumentInvalid+": "))
			}
			return o.show(cmd, func(ctx context.Context, b policyBackend) (registry.Policy, error) {
				return b.renew(ctx, args[0], slot)
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "primary, secondary, both or swap")
	return cmd
}

// policyView is a policy as `-o json` prints it: IoT Hub's fields and
// the connection strings (when the hub name is known).
type policyView struct {
	registry.Policy
	PrimaryConnectionString   string `json:"primaryConnectionString,omitempty"`
	SecondaryConnectionString string `json:"secondaryConnectionString,omitempty"`
}

func viewPolicy(p registry.Policy, host string) policyView {
	v := policyView{Policy: p}
	if host != "" {
		v.PrimaryConnectionString = sas.ConnectionString{HostName: host, SharedAccessKeyName: p.Name, SharedAccessKey: p.PrimaryKey}.String()
		v.SecondaryConnectionString = sas.ConnectionString{HostName: host, SharedAccessKeyName: p.Name, SharedAccessKey: p.SecondaryKey}.String()
	}
	return v
}

func printPolicy(w io.Writer, p registry.Policy, host string) error {
	v := viewPolicy(p, host)
	if clientFlags.output == "json" {
		return printJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"Name", p.Name},
		{"Rights", p.Rights.String()},
		{"Primary key", p.PrimaryKey},
		{"Secondary key", p.SecondaryKey},
		{"Primary connection string", firstNonEmpty(v.PrimaryConnectionString, "(hub name unknown: pass --hub-name)")},
		{"Secondary connection string", firstNonEmpty(v.SecondaryConnectionString, "(hub name unknown: pass --hub-name)")},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

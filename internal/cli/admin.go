package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/web"
)

// newAdminCmd groups the operator commands that work directly on the
// database. They are safe to run while the server runs.
func newAdminCmd(e *env) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage organizations, users and API tokens directly in the database",
	}
	s.bindDatabase(cmd.PersistentFlags())
	cmd.AddCommand(adminCreateOrg(e, s), adminCreateUser(e, s), adminCreateToken(e, s), adminAudit(e, s))
	return cmd
}

func operatorAudit(ctx context.Context, db *store.DB, orgID *int64, action, target string, details map[string]string) error {
	return db.AppendAudit(ctx, ci.AuditEvent{OrgID: orgID, Actor: "operator (kitewatch admin)", Action: action,
		Target: target, Outcome: ci.OutcomeSuccess, ClientIP: "local", Details: details})
}

func adminCreateOrg(e *env, s *settings) *cobra.Command {
	var slug, name string
	cmd := &cobra.Command{
		Use:   "create-org --slug SLUG --name NAME",
		Short: "Create an organization",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			slug = strings.ToLower(strings.TrimSpace(slug))
			if err := web.ValidateOrg(slug, name); err != nil {
				return err
			}
			return withDB(cmd, s, func(ctx context.Context, db *store.DB, _ config.Config) error {
				o, err := db.CreateOrg(ctx, slug, strings.TrimSpace(name))
				if err != nil {
					return err
				}
				if err := operatorAudit(ctx, db, &o.ID, "org.create", "org:"+o.Slug, nil); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "created organization %s (%s)\n", o.Slug, o.Name)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&slug, "slug", "", "organization slug: lower-case letters, digits, dashes (required)")
	cmd.Flags().StringVar(&name, "name", "", "organization display name (required)")
	_ = cmd.MarkFlagRequired("slug")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// readPassword reads one line from r (the password) for --password-stdin.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func adminCreateUser(e *env, s *settings) *cobra.Command {
	var org, email, name, role string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "create-user --org SLUG --email EMAIL [--role admin|member] --password-stdin",
		Short: "Create a user (or add an existing one) as a member of an organization",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			email = strings.ToLower(strings.TrimSpace(email))
			if err := web.ValidateEmail(email); err != nil {
				return err
			}
			r := ci.Role(role)
			if !r.Valid() {
				return fmt.Errorf("--role %q: want admin or member", role)
			}
			if !pwStdin {
				return errors.New("pass the password on standard input with --password-stdin (never as an argument)")
			}
			pw, err := readPassword(e.stdin)
			if err != nil {
				return err
			}
			return withDB(cmd, s, func(ctx context.Context, db *store.DB, _ config.Config) error {
				o, err := db.OrgBySlug(ctx, org)
				if err != nil {
					return fmt.Errorf("organization %q not found: create it with kitewatch admin create-org", org)
				}
				created := false
				err = db.InTx(ctx, func(tx *store.Tx) error {
					u, err := db.UserByEmail(ctx, email)
					if errors.Is(err, ci.ErrNotFound) {
						if err := auth.ValidatePassword(pw); err != nil {
							return err
						}
						hash, err := auth.HashPassword(pw)
						if err != nil {
							return err
						}
						if u, err = tx.CreateUser(ctx, email, name, hash); err != nil {
							return err
						}
						created = true
					} else if err != nil {
						return err
					}
					if err := tx.AddMember(ctx, o.ID, u.ID, r); err != nil {
						if errors.Is(err, ci.ErrConflict) {
							return fmt.Errorf("%s is already a member of %s", email, o.Slug)
						}
						return err
					}
					return tx.AppendAudit(ctx, ci.AuditEvent{OrgID: &o.ID, Actor: "operator (kitewatch admin)", Action: "member.add",
						Target: "user:" + email, Outcome: ci.OutcomeSuccess, ClientIP: "local", Details: map[string]string{"role": role}})
				})
				if err != nil {
					return err
				}
				verb := "added existing user"
				if created {
					verb = "created user"
				}
				fmt.Fprintf(e.stdout, "%s %s as %s of %s\n", verb, email, role, o.Slug)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organization slug (required)")
	cmd.Flags().StringVar(&email, "email", "", "email address (required)")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().StringVar(&role, "role", "member", "role: admin or member")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input")
	_ = cmd.MarkFlagRequired("org")
	_ = cmd.MarkFlagRequired("email")
	return cmd
}

func adminCreateToken(e *env, s *settings) *cobra.Command {
	var email, name string
	cmd := &cobra.Command{
		Use:   "create-api-token --email EMAIL --name NAME",
		Short: "Create a personal API token for a user and print it once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, s, func(ctx context.Context, db *store.DB, _ config.Config) error {
				u, err := db.UserByEmail(ctx, email)
				if err != nil {
					return fmt.Errorf("no user with email %q", strings.ToLower(strings.TrimSpace(email)))
				}
				plain, hash, err := auth.NewToken(auth.PrefixAPIToken)
				if err != nil {
					return err
				}
				t, err := db.CreateAPIToken(ctx, ci.APIToken{UserID: u.ID, Name: name, Hint: auth.TokenHint(plain), TokenHash: hash})
				if err != nil {
					return err
				}
				orgs, err := db.ListUserOrgs(ctx, u.ID)
				if err != nil {
					return err
				}
				for _, o := range orgs {
					id := o.Org.ID
					if err := operatorAudit(ctx, db, &id, "api_token.create", fmt.Sprintf("api_token:%d", t.ID),
						map[string]string{"name": name, "user": u.Email}); err != nil {
						return err
					}
				}
				fmt.Fprintln(e.stdout, plain)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the token owner's email (required)")
	cmd.Flags().StringVar(&name, "name", "", "a name to recognise the token by (required)")
	_ = cmd.MarkFlagRequired("email")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func adminAudit(e *env, s *settings) *cobra.Command {
	var org string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit --org SLUG",
		Short: "Print an organization's audit log, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, s, func(ctx context.Context, db *store.DB, _ config.Config) error {
				o, err := db.OrgBySlug(ctx, org)
				if err != nil {
					return fmt.Errorf("organization %q not found", org)
				}
				evs, err := db.ListAudit(ctx, store.AuditFilter{OrgID: o.ID, Limit: limit})
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(e.stdout)
					enc.SetIndent("", "  ")
					if evs == nil {
						evs = []ci.AuditEvent{}
					}
					return enc.Encode(map[string]any{"events": evs})
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tOUTCOME\tCLIENT IP")
				for _, ev := range evs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ev.CreatedAt.Format("2006-01-02 15:04:05Z"), ev.Actor, ev.Action, ev.Target, ev.Outcome, ev.ClientIP)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organization slug (required)")
	cmd.Flags().IntVar(&limit, "limit", 100, "how many events (1-500)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("org")
	return cmd
}

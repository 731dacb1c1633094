package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// apiClient talks to a running kitewatch server's JSON API with a personal
// API token, which travels only in the Authorization header.
type apiClient struct {
	server string
	token  string
	org    string
	http   *http.Client
}

// apiFlags binds --server, --org and --api-token-file (with KITEWATCH_SERVER,
// KITEWATCH_ORG and KITEWATCH_API_TOKEN / _FILE).
type apiFlags struct {
	server, org, tokenFile string
}

func (f *apiFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.server, "server", envOr("KITEWATCH_SERVER", "http://127.0.0.1:8080"), "kitewatch server URL [KITEWATCH_SERVER]")
	fs.StringVar(&f.org, "org", os.Getenv("KITEWATCH_ORG"), "kitewatch organization slug [KITEWATCH_ORG]")
	fs.StringVar(&f.tokenFile, "api-token-file", os.Getenv("KITEWATCH_API_TOKEN_FILE"), "file holding your kitewatch API token (default: KITEWATCH_API_TOKEN)")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (f *apiFlags) client(needOrg bool) (*apiClient, error) {
	tok := os.Getenv("KITEWATCH_API_TOKEN")
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("read API token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return nil, errors.New("no kitewatch API token: set KITEWATCH_API_TOKEN or --api-token-file (create one under Settings → API tokens, or with kitewatch admin create-api-token)")
	}
	if needOrg && f.org == "" {
		return nil, errors.New("--org is required (or set KITEWATCH_ORG)")
	}
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want a URL such as http://127.0.0.1:8080", f.server)
	}
	return &apiClient{server: strings.TrimRight(f.server, "/"), token: tok, org: f.org, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// apiFailure is a JSON API error answer.
type apiFailure struct {
	Status  int
	Code    string
	Message string
	Body    []byte
}

func (e *apiFailure) Error() string {
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// do sends a request and decodes a 2xx JSON answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach kitewatch at %s: %w", c.server, errors.Unwrap(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("read answer from kitewatch: %w", err)
	}
	if res.StatusCode/100 != 2 {
		f := &apiFailure{Status: res.StatusCode, Body: b}
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			f.Code, f.Message = e.Error.Code, e.Error.Message
		} else {
			f.Code, f.Message = "http_error", http.StatusText(res.StatusCode)
		}
		return f
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer from kitewatch: %w", err)
		}
	}
	return nil
}

func (c *apiClient) orgPath(p string) string { return "/api/v1/orgs/" + url.PathEscape(c.org) + p }

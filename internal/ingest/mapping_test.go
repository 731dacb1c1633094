package ingest

import (
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/ci"
)

func TestNormaliseRepo(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"git@github.com:acme/api.git", "github.com/acme/api"},
		{"git@github.com:Acme/API", "github.com/acme/api"},
		{"https://github.com/acme/api", "github.com/acme/api"},
		{"https://github.com/acme/api.git", "github.com/acme/api"},
		{"https://github.com/acme/api/", "github.com/acme/api"},
		{"http://GitHub.com/acme/api", "github.com/acme/api"},
		{"https://user:secret@github.com/acme/api.git", "github.com/acme/api"},
		{"ssh://git@github.com:22/acme/api.git", "github.com/acme/api"},
		{"ssh://git@github.com/acme/api", "github.com/acme/api"},
		{"git://github.com/acme/api.git", "github.com/acme/api"},
		{"git@gitlab.com:group/sub/repo.git", "gitlab.com/group/sub/repo"},
		{"https://gitlab.example.com/group/sub/repo", "gitlab.example.com/group/sub/repo"},
		{"git@bitbucket.org:acme/web.git", "bitbucket.org/acme/web"},
		{"ssh://git@bitbucket.acme.test:7999/proj/repo.git", "bitbucket.acme.test/proj/repo"},
		{"https://bitbucket.acme.test/scm/proj/repo.git", "bitbucket.acme.test/proj/repo"},
		{"github.acme.corp:acme/api.git", "github.acme.corp/acme/api"},
		{"", ""},
		{"not a url", ""},
		{"https://github.com/acme", ""},
		{"git@github.com:acme", ""},
		{"ftp://github.com/acme/api", ""},
		{"file:///srv/git/acme/api.git", ""},
		{"/srv/git/acme/api.git", ""},
		{"https://github.com/acme/../api", ""},
		{"git@:acme/api", ""},
		{"..:0/0", ""},
		{"0:0/.Git", ""},
		{"0:0/.Git.Git", ""},
		{"h.test:scm/scm/a/b", "h.test/a/b"},
		{"h.test:scm/scm/a", "h.test/scm/a"},
		{"h.test:scm/a", "h.test/scm/a"},
		{"git@github.com:acme/api.git.git", "github.com/acme/api"},
		{"git@github.com:Acme/API.GIT", "github.com/acme/api"},
		{"https://./acme/api", ""},
		{"git@a..b:acme/api", ""},
		{"git@-a.test:acme/api", ""},
		{"git@github.com.:acme/api", "github.com/acme/api"},
		{"https://10.0.0.7/acme/api", "10.0.0.7/acme/api"},
	} {
		got, ok := NormaliseRepo(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("NormaliseRepo(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestProviderFor(t *testing.T) {
	for _, tc := range []struct {
		id, key, want string
	}{
		{"github", "github.com/acme/api", ci.ProviderGitHub},
		{"github_enterprise", "github.acme.corp/acme/api", ci.ProviderGitHubEnterprise},
		{"gitlab_ee", "git.acme.corp/acme/api", ci.ProviderGitLab},
		{"bitbucket_server", "", ci.ProviderBitbucket},
		{"", "github.com/acme/api", ci.ProviderGitHub},
		{"unknown", "gitlab.com/acme/api", ci.ProviderGitLab},
		{"", "bitbucket.org/acme/api", ci.ProviderBitbucket},
		{"", "github.acme.corp/acme/api", ci.ProviderGitHubEnterprise},
		{"beanstalk", "git.acme.corp/acme/api", ci.ProviderUnknown},
	} {
		if got := ProviderFor(tc.id, tc.key); got != tc.want {
			t.Errorf("ProviderFor(%q, %q) = %q, want %q", tc.id, tc.key, got, tc.want)
		}
	}
}

func FuzzNormaliseRepo(f *testing.F) {
	for _, s := range []string{"git@github.com:acme/api.git", "https://github.com/acme/api", "ssh://git@h:22/o/r.git", "a:b/c", "::", "@@:/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, ok := NormaliseRepo(s)
		if !ok {
			if key != "" {
				t.Fatalf("NormaliseRepo(%q) = %q with ok=false", s, key)
			}
			return
		}
		if strings.Count(key, "/") < 2 || strings.HasSuffix(key, ".git") || strings.Contains(key, "@") || key != strings.ToLower(key) {
			t.Fatalf("NormaliseRepo(%q) = %q: not host/owner/repo", s, key)
		}
		// Normalising is idempotent through the https form.
		again, ok := NormaliseRepo("https://" + key)
		if !ok || again != key {
			t.Fatalf("NormaliseRepo(https://%s) = %q, %v", key, again, ok)
		}
	})
}

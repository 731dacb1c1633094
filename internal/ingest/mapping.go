package ingest

import (
	"net/url"
	"strings"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// NormaliseRepo maps a repository URL in any of the forms Buildkite
// pipelines use to "host/owner/repo", lower-cased, without credentials,
// port, scheme or ".git":
//
//	git@github.com:acme/api.git          → github.com/acme/api
//	https://github.com/Acme/API          → github.com/acme/api
//	ssh://git@gitlab.example:22/g/s/r.git → gitlab.example/g/s/r
//
// GitLab subgroups keep their full path. It reports false for anything
// that is not a recognisable remote repository URL.
func NormaliseRepo(raw string) (string, bool) {
	s := strings.TrimSpace(raw)
	if s == "" || strings.ContainsAny(s, " \t\r\n\\") {
		return "", false
	}
	var host, path string
	if i := strings.Index(s, "://"); i >= 0 {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", false
		}
		switch strings.ToLower(u.Scheme) {
		case "http", "https", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return "", false
		}
		host, path = u.Hostname(), u.Path
	} else {
		// scp-like: [user@]host:path
		at := strings.LastIndex(s, "@")
		rest := s[at+1:]
		h, p, ok := strings.Cut(rest, ":")
		if !ok || h == "" || strings.Contains(h, "/") {
			return "", false
		}
		host, path = h, p
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if !validHost(host) {
		return "", false
	}
	// Keys are case-insensitive (hosts and the big providers' paths are), so
	// fold first: "API.GIT" loses its suffix like "api.git" does.
	path = strings.ToLower(strings.Trim(path, "/"))
	// Every ".git" suffix goes, so a key never ends in one and reading a
	// key back gives the same key ("a/b.git.git" and "a/b" are one repo to
	// kitewatch).
	for strings.HasSuffix(path, ".git") || strings.HasSuffix(path, "/") {
		path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), ".git")
	}
	// Bitbucket Server serves clones under /scm/project/repo. Only a path
	// that keeps an owner and a name loses the prefix, repeatedly, so that a
	// key reads back as itself.
	for strings.HasPrefix(path, "scm/") && strings.Count(path, "/") >= 2 {
		path = strings.TrimPrefix(path, "scm/")
	}
	segs := strings.Split(path, "/")
	if len(segs) < 2 {
		return "", false
	}
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." || !allowed(seg, "-_.~+") {
			return "", false
		}
	}
	return host + "/" + strings.Join(segs, "/"), true
}

// ProviderFor names the source provider of a pipeline from Buildkite's
// provider id, or, when the id says nothing, from the repository host.
func ProviderFor(providerID, repoKey string) string {
	switch providerID {
	case "github":
		return ci.ProviderGitHub
	case "github_enterprise":
		return ci.ProviderGitHubEnterprise
	case "gitlab", "gitlab_ee":
		return ci.ProviderGitLab
	case "bitbucket", "bitbucket_server":
		return ci.ProviderBitbucket
	}
	host, _, _ := strings.Cut(repoKey, "/")
	switch {
	case host == "github.com":
		return ci.ProviderGitHub
	case host == "gitlab.com":
		return ci.ProviderGitLab
	case host == "bitbucket.org":
		return ci.ProviderBitbucket
	case strings.Contains(host, "github"):
		return ci.ProviderGitHubEnterprise
	case strings.Contains(host, "gitlab"):
		return ci.ProviderGitLab
	case strings.Contains(host, "bitbucket"):
		return ci.ProviderBitbucket
	}
	return ci.ProviderUnknown
}

// MapPipeline fills a pipeline's repository key and provider.
func MapPipeline(p ci.Pipeline) ci.Pipeline {
	p.RepoKey, _ = NormaliseRepo(p.Repository)
	p.Provider = ProviderFor(p.Provider, p.RepoKey)
	return p
}

// allowed reports whether s has only ASCII letters, digits and the extra
// characters.
// validHost reports whether host is a DNS name or IPv4 address: dot-separated
// labels of 1 to 63 letters, digits and inner hyphens. "." and "a..b" are not
// hosts, so a key built from them could not be read back.
func validHost(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' || !allowed(label, "-") {
			return false
		}
	}
	return true
}

func allowed(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return false
	}
	return true
}

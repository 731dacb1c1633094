package classify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var genCorpus = flag.Bool("gen-corpus", false, "regenerate testdata/corpus/*.log and *.expected.json from testdata/corpus/src/*.txt")

// corpusDir is the repository's corpus of job logs.
const corpusDir = "../../testdata/corpus"

// TestGenerateCorpus turns the readable sources in testdata/corpus/src into
// logs in the Buildkite byte format: agent preamble, ESC_bk;t= timestamps on
// every line, ANSI colour, prompts and the agent's failure tail.
//
// A source starts with "#! " header lines: "#! exit: N" (0 for a passing
// job, "signal" for an interrupted one, "none" for a log that just stops),
// "#! expect: {json Expectation}" and optionally "#! repo: name". The body
// may use {red} {green} {yellow} {grey} {bold} {/} for colours, {cr} for a
// carriage return, {erase} for ESC[2K ESC[0G and {ts} for a mid-line
// timestamp; lines starting with "$ " are agent prompts.
func TestGenerateCorpus(t *testing.T) {
	if !*genCorpus {
		t.Skip("run with -gen-corpus to regenerate the corpus")
	}
	srcs, err := filepath.Glob(filepath.Join(corpusDir, "src", "*.txt"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no sources: %v", err)
	}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".txt")
		logb, exp, err := renderSource(name, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(corpusDir, name+".log"), logb, 0o644); err != nil {
			t.Fatal(err)
		}
		eb, _ := json.MarshalIndent(exp, "", "  ")
		if err := os.WriteFile(filepath.Join(corpusDir, name+".expected.json"), append(eb, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func renderSource(name, path string) ([]byte, Expectation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Expectation{}, err
	}
	defer f.Close()
	h := fnv.New64a()
	h.Write([]byte(name))
	seed := h.Sum64()
	sha := fmt.Sprintf("%016x%016x%08x", seed, seed*31, uint32(seed>>7))
	repo := strings.SplitN(name, "-", 2)[0] + "-service"
	exit := "1"
	var exp Expectation
	var body []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, "#! "); ok && body == nil {
			k, v, _ := strings.Cut(rest, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "exit":
				exit = v
			case "repo":
				repo = v
			case "expect":
				if err := json.Unmarshal([]byte(v), &exp); err != nil {
					return nil, exp, fmt.Errorf("expect header: %w", err)
				}
			}
			continue
		}
		if body == nil {
			body = []string{}
		}
		body = append(body, l)
	}
	if err := sc.Err(); err != nil {
		return nil, exp, err
	}
	if exit == "0" {
		exp.Passing = true
	}
	dir := "/var/lib/buildkite-agent/builds/agent-i-0f3c9-1/acme/" + repo
	ts := int64(1764200000000) + int64(seed%100000000)
	step := uint64(seed)
	var out bytes.Buffer
	emit := func(l string) {
		step = step*6364136223846793005 + 1442695040888963407
		ts += int64(step>>58) * 7
		l = strings.ReplaceAll(l, "{ts}", fmt.Sprintf("\x1b_bk;t=%d\x07", ts+1200))
		out.WriteString(fmt.Sprintf("\x1b_bk;t=%d\x07", ts))
		out.WriteString(l)
		out.WriteByte('\n')
	}
	prompt := func(cmd string) { emit("\x1b[90m$\x1b[0m " + cmd) }
	comment := func(c string) { emit("\x1b[90m# " + c + "\x1b[0m") }
	emit("~~~ Running global environment hook")
	prompt("/etc/buildkite-agent/hooks/environment")
	emit("~~~ Preparing working directory")
	comment(`Creating "` + dir + `"`)
	prompt("cd " + dir)
	prompt("git clone -v -- git@github.com:acme/" + repo + ".git .")
	emit("Cloning into '.'...")
	prompt("git clean -ffxdq")
	comment("Fetch and checkout pull request head from GitHub")
	prompt("git fetch -- origin refs/pull/" + strconv.Itoa(int(seed%900)+100) + "/head")
	emit("From github.com:acme/" + repo)
	emit(" * branch            refs/pull/" + strconv.Itoa(int(seed%900)+100) + "/head -> FETCH_HEAD")
	prompt("git checkout -f " + sha[:40])
	emit("HEAD is now at " + sha[:7] + " Update dependencies and fix flaky retry logic")
	comment("Using default command hook")
	emit("~~~ Running commands")
	colours := strings.NewReplacer("{red}", "\x1b[31m", "{green}", "\x1b[32m", "{yellow}", "\x1b[33m",
		"{grey}", "\x1b[90m", "{bold}", "\x1b[1m", "{/}", "\x1b[0m", "{cr}", "\r", "{erase}", "\x1b[2K\x1b[0G",
		"{dir}", dir)
	for _, l := range body {
		l = colours.Replace(l)
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			prompt(cmd)
			continue
		}
		emit(l)
	}
	switch exit {
	case "0", "none":
	case "signal":
		emit("^^^ +++")
		emit("\x1b[31m🚨 Error: The command was interrupted by a signal: signal: terminated\x1b[0m")
		emit("^^^ +++")
	default:
		emit("^^^ +++")
		emit("\x1b[31m🚨 Error: The command exited with status " + exit + "\x1b[0m")
		emit("^^^ +++")
		emit("user command error: exit status " + exit)
	}
	return out.Bytes(), exp, nil
}

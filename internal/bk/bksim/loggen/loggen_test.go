package loggen

import (
	"bufio"
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"
)

var linePrefix = regexp.MustCompile(`^\x1b_bk;t=\d{13}\a`)

func TestEveryKindIsWellFormed(t *testing.T) {
	for _, k := range Kinds() {
		for _, size := range []int64{0, 4096, 100_003} {
			s := Spec{Ecosystem: k.Ecosystem, Failure: k.Failure, Seed: 7, Size: size}
			if err := s.Validate(); err != nil {
				t.Fatalf("%+v: %v", k, err)
			}
			b := s.Bytes()
			if int64(len(b)) != s.Len() {
				t.Errorf("%s/%s size %d: wrote %d bytes, Len says %d", k.Ecosystem, k.Failure, size, len(b), s.Len())
			}
			if size > 2000 && int64(len(b)) != size {
				t.Errorf("%s/%s: wrote %d bytes, want exactly %d", k.Ecosystem, k.Failure, len(b), size)
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			var lines []string
			for sc.Scan() {
				if !linePrefix.MatchString(sc.Text()) {
					t.Fatalf("%s/%s: line without timestamp prefix: %q", k.Ecosystem, k.Failure, sc.Text())
				}
				lines = append(lines, linePrefix.ReplaceAllString(sc.Text(), ""))
			}
			if !strings.Contains(string(b), "~~~ Running commands\n") {
				t.Errorf("%s/%s: no ~~~ Running commands header", k.Ecosystem, k.Failure)
			}
			exit := s.ExitStatus()
			last := lines[len(lines)-1]
			switch {
			case exit > 0:
				if want := "user command error: exit status "; !strings.HasPrefix(last, want) {
					t.Errorf("%s/%s: last line %q, want %q...", k.Ecosystem, k.Failure, last, want)
				}
				if lines[len(lines)-4] != "^^^ +++" || lines[len(lines)-2] != "^^^ +++" {
					t.Errorf("%s/%s: failure tail not bracketed by ^^^ +++: %q", k.Ecosystem, k.Failure, lines[len(lines)-4:])
				}
			case exit == 0:
				if strings.Contains(string(b), "🚨") {
					t.Errorf("%s: passing log contains a failure line", k.Ecosystem)
				}
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := Spec{Ecosystem: "go", Failure: "test", Seed: 42, Size: 50_000}
	b := a
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same spec produced different logs")
	}
	c := a
	c.Seed = 43
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("different seeds produced identical logs")
	}
}

func TestValidateRejectsUnknown(t *testing.T) {
	for _, s := range []Spec{{Ecosystem: "cobol"}, {Ecosystem: "go", Failure: "nope"}, {Ecosystem: "go", Size: -1}} {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", s)
		}
	}
}

func TestPassingLogsHaveDecoys(t *testing.T) {
	b := string(Spec{Ecosystem: "go", Seed: 1, Size: 200_000}.Bytes())
	for _, decoy := range []string{"0 errors", "error_handler", "warning:"} {
		if !strings.Contains(b, decoy) {
			t.Errorf("passing go log lacks decoy %q", decoy)
		}
	}
}

func BenchmarkWriteTo100MB(b *testing.B) {
	s := Spec{Ecosystem: "go", Failure: "test", Seed: 3, Size: 100 << 20}
	b.SetBytes(s.Size)
	for b.Loop() {
		if _, err := s.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

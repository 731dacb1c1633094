package classify

import (
	"flag"
	"testing"
)

var genHoldout8 = flag.Bool("gen-holdout8", false, "regenerate testdata/holdout8/*.log and *.expected.json from testdata/holdout8/src/*.txt")

// holdout8Dir holds the eighth holdout set: real output from everyday
// pipeline steps that are not one tool's format (database migrations with
// flyway, liquibase, prisma and rails; deployments with helm, kubectl, oc,
// aws, gcloud and az; Makefiles; scripts and installers; services refusing
// connections), each source naming its origin. Expectations were written
// before the analyser was run on it.
const holdout8Dir = "../../testdata/holdout8"

// TestGenerateHoldout8 turns testdata/holdout8/src/*.txt into logs with the
// source format of TestGenerateHoldout3.
func TestGenerateHoldout8(t *testing.T) {
	if !*genHoldout8 {
		t.Skip("run with -gen-holdout8 to regenerate the eighth holdout set")
	}
	generateHoldout(t, holdout8Dir)
}

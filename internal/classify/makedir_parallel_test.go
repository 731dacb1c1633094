package classify

import "testing"

// TestParallelMakeDirectoryLocations checks make -j output, where sibling
// sub-makes' lines interleave: a relative location printed while several
// siblings are open is joined to the directory whose sub-make then fails
// (its "make[N]: *** ..." line comes right before its "Leaving
// directory"), and an absolute one is left alone.
func TestParallelMakeDirectoryLocations(t *testing.T) {
	const root = "/var/lib/buildkite-agent/builds/agent-1/acme/app"
	tests := []struct {
		name string
		log  string
		want []string
	}{
		{
			name: "failing sibling named by its leave line",
			log: "make[1]: Entering directory '" + root + "/src/util'\n" +
				"make[1]: Entering directory '" + root + "/src/codec'\n" +
				"make[1]: Entering directory '" + root + "/src/net'\n" +
				"h264.c:311:17: error: implicit declaration of function 'x'\n" +
				root + "/src/net/tls.c:12:1: error: unknown type name 'y'\n" +
				"make[1]: *** [Makefile:18: h264.o] Error 1\n" +
				"make[1]: Leaving directory '" + root + "/src/codec'\n" +
				"make[1]: Leaving directory '" + root + "/src/util'\n" +
				"make[1]: Leaving directory '" + root + "/src/net'\n",
			want: []string{"src/codec/h264.c", "src/net/tls.c"},
		},
		{
			name: "no failing leave: the path stays as printed",
			log: "make[1]: Entering directory '" + root + "/src/util'\n" +
				"make[1]: Entering directory '" + root + "/src/codec'\n" +
				"h264.c:311:17: error: implicit declaration of function 'x'\n" +
				"make[1]: Leaving directory '" + root + "/src/util'\n" +
				"make[1]: Leaving directory '" + root + "/src/codec'\n",
			want: []string{"h264.c"},
		},
		{
			name: "a sibling left early does not drop the others",
			log: "make[1]: Entering directory '" + root + "/src/util'\n" +
				"make[1]: Entering directory '" + root + "/src/codec'\n" +
				"make[1]: Leaving directory '" + root + "/src/util'\n" +
				"h264.c:311:17: error: implicit declaration of function 'x'\n",
			want: []string{"src/codec/h264.c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyzeString(t, tt.log, Options{})
			got := map[string]bool{}
			for _, f := range res.Failures {
				for _, l := range f.Locations {
					got[l.Path] = true
				}
			}
			for _, p := range tt.want {
				if !got[p] {
					t.Errorf("location %s not found; got %v", p, got)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got locations %v, want exactly %v", got, tt.want)
			}
		})
	}
}

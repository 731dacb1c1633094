package secrets

import (
	"context"
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	ctx := context.Background()
	r := newTestKeyring(b, newTestKeeper(b))
	ad := AssociatedData(1, "buildkite", "token")
	pt := []byte("bkua_0123456789abcdef0123456789abcdef01234567")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Seal(ctx, pt, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	r := newTestKeyring(b, newTestKeeper(b))
	ad := AssociatedData(1, "buildkite", "token")
	sealed, err := r.Seal(ctx, []byte("bkua_0123456789abcdef0123456789abcdef01234567"), ad)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open(ctx, sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrap(b *testing.B) {
	ctx := context.Background()
	oldK, newK := newTestKeeper(b), newTestKeeper(b)
	sealed, err := newTestKeyring(b, oldK).Seal(ctx, []byte("bkua_0123456789abcdef0123456789abcdef01234567"), nil)
	if err != nil {
		b.Fatal(err)
	}
	r := newTestKeyring(b, newK, oldK)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Rewrap(ctx, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

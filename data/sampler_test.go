package data

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/internal/torchpy"
)

type samplerCase struct {
	N, Replicas int
	Shuffle     bool
	Seed        uint64
	DropLast    bool
	Epochs      int
}

var samplerCases = []samplerCase{
	{N: 10, Replicas: 3, Shuffle: true, Seed: 0, Epochs: 3},
	{N: 10, Replicas: 3, Shuffle: true, Seed: 0, DropLast: true, Epochs: 2},
	{N: 11, Replicas: 4, Shuffle: false, Epochs: 1},
	{N: 11, Replicas: 4, Shuffle: false, DropLast: true, Epochs: 1},
	{N: 2, Replicas: 5, Shuffle: true, Seed: 9, Epochs: 2}, // padding longer than the data set
	{N: 2, Replicas: 5, Shuffle: true, Seed: 9, DropLast: true, Epochs: 1},
	{N: 1000, Replicas: 8, Shuffle: true, Seed: 1 << 40, Epochs: 2}, // only the seed's low 32 bits count
	{N: 1, Replicas: 1, Shuffle: true, Seed: 5, Epochs: 1},
	{N: 0, Replicas: 2, Shuffle: true, Epochs: 1},
}

// ours lists, per case, epoch and rank, the indices of our sampler.
func ours(t *testing.T, c samplerCase) [][][]int64 {
	var out [][][]int64
	for e := 0; e < c.Epochs; e++ {
		var ranks [][]int64
		for r := 0; r < c.Replicas; r++ {
			s, err := NewDistributedSampler(c.N, r, c.Replicas, DistributedSamplerOptions{Shuffle: c.Shuffle, Seed: c.Seed, DropLast: c.DropLast})
			require.NoError(t, err)
			idx := s.Indices(e)
			require.Len(t, idx, s.Len())
			ranks = append(ranks, idx)
		}
		out = append(out, ranks)
	}
	return out
}

// TestDistributedSamplerMatchesPyTorch compares every rank's indices, epoch by epoch, with
// torch.utils.data.DistributedSampler's (set_epoch, shuffle, seed, drop_last).
func TestDistributedSamplerMatchesPyTorch(t *testing.T) {
	const script = `
import json, sys
from torch.utils.data import DistributedSampler
out = []
for c in json.load(sys.stdin):
    per = []
    for e in range(c["Epochs"]):
        ranks = []
        for r in range(c["Replicas"]):
            s = DistributedSampler(range(c["N"]), num_replicas=c["Replicas"], rank=r, shuffle=c["Shuffle"], seed=c["Seed"], drop_last=c["DropLast"])
            s.set_epoch(e)
            ranks.append(list(iter(s)))
        per.append(ranks)
    out.append(per)
json.dump(out, sys.stdout)
`
	var want [][][][]int64
	torchpy.RunJSON(t, script, samplerCases, &want)
	for i, c := range samplerCases {
		got := ours(t, c)
		for e := range want[i] {
			for r := range want[i][e] {
				w := want[i][e][r]
				if w == nil {
					w = []int64{}
				}
				g := got[e][r]
				if g == nil {
					g = []int64{}
				}
				require.Equal(t, w, g, "case %+v epoch %d rank %d", c, e, r)
			}
		}
	}
}

func TestDistributedSamplerShares(t *testing.T) {
	// Without DropLast every example is visited, the ranks' shares are disjoint except for the
	// padding, and they are equally long; each epoch reshuffles.
	c := samplerCase{N: 23, Replicas: 4, Shuffle: true, Seed: 3, Epochs: 2}
	got := ours(t, c)
	for e := range got {
		seen := map[int64]int{}
		for _, idx := range got[e] {
			require.Len(t, idx, 6)
			for _, i := range idx {
				seen[i]++
			}
		}
		require.Len(t, seen, 23)
		dup := 0
		for _, n := range seen {
			dup += n - 1
		}
		require.Equal(t, 1, dup, "24 slots for 23 examples: one padded")
	}
	require.NotEqual(t, got[0][0], got[1][0], "set_epoch reshuffles")

	for _, bad := range []struct{ n, r, w int }{{10, 3, 3}, {10, -1, 2}, {10, 0, 0}, {-1, 0, 1}} {
		_, err := NewDistributedSampler(bad.n, bad.r, bad.w, DistributedSamplerOptions{})
		require.Error(t, err, "%+v", bad)
	}
}

func TestLoaderWithSampler(t *testing.T) {
	ds := indexDataset(t, 10)
	s, err := NewDistributedSampler(10, 1, 3, DistributedSamplerOptions{Shuffle: true, Seed: 4})
	require.NoError(t, err)
	_, err = NewLoader(ds, LoaderOptions{Sampler: s, Shuffle: true})
	require.ErrorContains(t, err, "Shuffle and a Sampler")
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 3, Sampler: s})
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, 2, l.Len(), "4 indices per rank, batches of 3")
	for epoch := 0; epoch < 2; epoch++ {
		var labels []int64
		for b := range l.Epoch(context.Background(), epoch) {
			labels = append(labels, b.Y.Int64s()...)
			require.Equal(t, b.Indices, b.Y.Int64s())
		}
		require.Equal(t, s.Indices(epoch), labels)
		require.True(t, slices.Equal(l.Order(epoch), s.Indices(epoch)))
	}
}

func TestTorchRandpermIsAPermutation(t *testing.T) {
	p := TorchRandperm(257, 42)
	sorted := slices.Clone(p)
	slices.Sort(sorted)
	for i, v := range sorted {
		require.Equal(t, int64(i), v)
	}
	require.NotEqual(t, p, TorchRandperm(257, 43))
}

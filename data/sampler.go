package data

import "fmt"

// Sampler chooses the dataset indices a Loader visits in an epoch, in order (LoaderOptions's
// Sampler). The epoch number is the one passed to Loader.Epoch or Iter: it plays the part of
// PyTorch's sampler.set_epoch.
type Sampler interface {
	// Len is the number of indices per epoch.
	Len() int
	// Indices returns the indices of epoch, Len of them.
	Indices(epoch int) []int64
}

// DistributedSamplerOptions configure a DistributedSampler; the zero value is an unshuffled
// sampler that pads.
type DistributedSamplerOptions struct {
	// Shuffle permutes the dataset each epoch from Seed+epoch (PyTorch's default is true).
	Shuffle bool
	// Seed must be the same on every rank.
	Seed uint64
	// DropLast drops the tail of the dataset that does not divide evenly among the ranks,
	// instead of padding it with indices from the start of the epoch's order.
	DropLast bool
}

// DistributedSampler gives each rank of a data-parallel job its share of a dataset, as
// torch.utils.data.DistributedSampler does, index for index: the epoch's order (0…N-1, or
// with Shuffle the permutation torch.randperm draws from a torch.Generator seeded with
// Seed+epoch) is padded by repeating its start up to a multiple of the number of ranks (or,
// with DropLast, cut down to one), and rank r takes every Replicas-th index starting at r. So
// every rank gets the same number of examples, the ranks' shares are disjoint apart from the
// padding, and batch k of every rank together make one global batch.
type DistributedSampler struct {
	n, rank, replicas int
	opts              DistributedSamplerOptions
	perRank           int
}

// NewDistributedSampler returns rank's sampler over a dataset of n examples shared among
// replicas ranks.
func NewDistributedSampler(n, rank, replicas int, opts DistributedSamplerOptions) (*DistributedSampler, error) {
	if replicas < 1 {
		return nil, fmt.Errorf("data: distributed sampler: %d replicas, want at least 1", replicas)
	}
	if rank < 0 || rank >= replicas {
		return nil, fmt.Errorf("data: distributed sampler: rank %d is not in [0, %d)", rank, replicas)
	}
	if n < 0 {
		return nil, fmt.Errorf("data: distributed sampler: dataset of %d examples", n)
	}
	s := &DistributedSampler{n: n, rank: rank, replicas: replicas, opts: opts}
	if opts.DropLast && n%replicas != 0 {
		s.perRank = (n - replicas + replicas - 1) / replicas // ceil((n - replicas) / replicas)
		if n < replicas {
			s.perRank = 0
		}
	} else {
		s.perRank = (n + replicas - 1) / replicas
	}
	return s, nil
}

// Len is the number of indices each rank gets per epoch.
func (s *DistributedSampler) Len() int { return s.perRank }

// Indices returns this rank's indices for epoch.
func (s *DistributedSampler) Indices(epoch int) []int64 {
	total := s.perRank * s.replicas
	var order []int64
	if s.opts.Shuffle {
		order = TorchRandperm(s.n, s.opts.Seed+uint64(epoch))
	} else {
		order = make([]int64, s.n)
		for i := range order {
			order[i] = int64(i)
		}
	}
	if len(order) < total { // pad by repeating the order from its start
		padded := make([]int64, 0, total)
		for len(padded) < total {
			padded = append(padded, order[:min(len(order), total-len(padded))]...)
		}
		order = padded
	}
	order = order[:total]
	out := make([]int64, 0, s.perRank)
	for i := s.rank; i < total; i += s.replicas {
		out = append(out, order[i])
	}
	return out
}

// TorchRandperm returns the permutation of 0…n-1 that torch.randperm(n, generator=g) gives on
// the CPU after g.manual_seed(seed): a Fisher-Yates shuffle driven by libtorch's MT19937.
func TorchRandperm(n int, seed uint64) []int64 {
	r := make([]int64, n)
	for i := range r {
		r[i] = int64(i)
	}
	g := newMT19937(seed)
	for i := int64(0); i < int64(n)-1; i++ {
		z := int64(g.next()) % (int64(n) - i)
		r[i], r[z+i] = r[z+i], r[i]
	}
	return r
}

// mt19937 is the Mersenne Twister that libtorch's CPU generator runs (at::mt19937), seeded with
// the low 32 bits of the seed.
type mt19937 struct {
	state [624]uint32
	i     int
}

func newMT19937(seed uint64) *mt19937 {
	g := &mt19937{i: 624}
	g.state[0] = uint32(seed)
	for j := 1; j < 624; j++ {
		p := g.state[j-1]
		g.state[j] = 1812433253*(p^(p>>30)) + uint32(j)
	}
	return g
}

func (g *mt19937) next() uint32 {
	if g.i >= 624 {
		for k := 0; k < 624; k++ {
			y := g.state[k]&0x80000000 | g.state[(k+1)%624]&0x7fffffff
			v := g.state[(k+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			g.state[k] = v
		}
		g.i = 0
	}
	y := g.state[g.i]
	g.i++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

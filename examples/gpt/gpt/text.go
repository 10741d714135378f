package gpt

import (
	"math/rand/v2"
	"slices"
)

// Corpus is the built-in training text: a few paragraphs written for this example, so the run
// needs no download. A character-level model of this size learns its spelling and its most
// frequent words within a few hundred steps.
const Corpus = `The keeper of the small light on the northern rock kept a log of every ship that passed.
In the morning she wrote the wind and the weather, and at night she wrote the ships.
When the fog came in from the sea she lit the lamp early and wound the clock that turned it,
and the beam went round and round over the water until the grey morning came back.

The ships that passed the rock were small ships and large ships, fishing boats and ferries,
and once in a long while a tall ship with white sails that the keeper stopped to watch.
She wrote them all in the log: the name of the ship, the hour, the wind, the sea.
The log grew thick with the years, and the keeper grew old with the log.

One winter night the wind rose and the sea rose with it, and the lamp went out.
The keeper climbed the stair in the dark, found the match and the oil, and lit the lamp again.
Far out on the water a small boat turned toward the light and found the harbour.
In the morning the keeper wrote in the log: wind from the north, sea high, lamp lit twice.

The light on the northern rock still turns at night, and the log is still kept.
A new keeper writes the wind and the weather in the morning and the ships at night,
and when the fog comes in from the sea the lamp is lit early and the clock is wound,
and the beam goes round and round over the water until the grey morning comes back.
`

// Vocabulary is a text's sorted distinct characters and their indices.
type Vocabulary struct {
	Chars []rune
	index map[rune]int64
}

// NewVocabulary collects the characters of text.
func NewVocabulary(text string) *Vocabulary {
	v := &Vocabulary{index: map[rune]int64{}}
	for _, r := range text {
		if _, ok := v.index[r]; !ok {
			v.index[r] = 0
			v.Chars = append(v.Chars, r)
		}
	}
	slices.Sort(v.Chars)
	for i, r := range v.Chars {
		v.index[r] = int64(i)
	}
	return v
}

// Size is the number of characters.
func (v *Vocabulary) Size() int64 { return int64(len(v.Chars)) }

// Encode maps s to indices (characters outside the vocabulary map to 0).
func (v *Vocabulary) Encode(s string) []int64 {
	out := make([]int64, 0, len(s))
	for _, r := range s {
		out = append(out, v.index[r])
	}
	return out
}

// Windows draws batch random windows of block+1 characters of data: x = data[i : i+block] and
// y = data[i+1 : i+block+1], each batch × block, row-major.
func Windows(rng *rand.Rand, data []int64, batch, block int64) (x, y []int64) {
	x, y = make([]int64, 0, batch*block), make([]int64, 0, batch*block)
	for range batch {
		i := rng.Int64N(int64(len(data)) - block)
		x = append(x, data[i:i+block]...)
		y = append(y, data[i+1:i+block+1]...)
	}
	return x, y
}

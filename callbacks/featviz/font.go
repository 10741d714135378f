package featviz

import (
	"image"
	"strings"
)

// A tiny 3×5 pixel font, drawn for this package: digits, capital letters (lower case is drawn
// as upper case) and the punctuation of layer names, shapes and numbers. Each glyph is five rows
// of three cells, '#' for ink.
const (
	glyphW   = 3
	glyphH   = 5
	advance  = glyphW + 1 // one blank column between glyphs
	unknownR = '?'
)

var glyphRows = map[rune]string{
	'0': "### #.# #.# #.# ###", '1': ".#. ##. .#. .#. ###", '2': "### ..# ### #.. ###",
	'3': "### ..# .## ..# ###", '4': "#.# #.# ### ..# ..#", '5': "### #.. ### ..# ###",
	'6': "### #.. ### #.# ###", '7': "### ..# ..# .#. .#.", '8': "### #.# ### #.# ###",
	'9': "### #.# ### ..# ###",
	'A': ".#. #.# ### #.# #.#", 'B': "##. #.# ##. #.# ##.", 'C': ".## #.. #.. #.. .##",
	'D': "##. #.# #.# #.# ##.", 'E': "### #.. ##. #.. ###", 'F': "### #.. ##. #.. #..",
	'G': ".## #.. #.# #.# .##", 'H': "#.# #.# ### #.# #.#", 'I': "### .#. .#. .#. ###",
	'J': "..# ..# ..# #.# .#.", 'K': "#.# #.# ##. #.# #.#", 'L': "#.. #.. #.. #.. ###",
	'M': "#.# ### ### #.# #.#", 'N': "##. #.# #.# #.# #.#", 'O': ".#. #.# #.# #.# .#.",
	'P': "##. #.# ##. #.. #..", 'Q': ".#. #.# #.# ##. .##", 'R': "##. #.# ##. #.# #.#",
	'S': ".## #.. .#. ..# ##.", 'T': "### .#. .#. .#. .#.", 'U': "#.# #.# #.# #.# ###",
	'V': "#.# #.# #.# #.# .#.", 'W': "#.# #.# ### ### #.#", 'X': "#.# #.# .#. #.# #.#",
	'Y': "#.# #.# .#. .#. .#.", 'Z': "### ..# .#. #.. ###",
	'.': "... ... ... ... .#.", ',': "... ... ... .#. #..", '-': "... ... ### ... ...",
	'_': "... ... ... ... ###", ':': "... .#. ... .#. ...", '[': "##. #.. #.. #.. ##.",
	']': ".## ..# ..# ..# .##", '(': ".#. #.. #.. #.. .#.", ')': ".#. ..# ..# ..# .#.",
	'/': "..# ..# .#. #.. #..", '=': "... ### ... ### ...", '+': "... .#. ### .#. ...",
	'*': "#.# .#. #.# ... ...", '#': "#.# ### #.# ### #.#", '?': "### ..# .#. ... .#.",
	' ': "... ... ... ... ...",
}

// glyphs holds each glyph as 15 booleans, row by row.
var glyphs = func() map[rune][glyphW * glyphH]bool {
	out := make(map[rune][glyphW * glyphH]bool, len(glyphRows))
	for r, s := range glyphRows {
		var g [glyphW * glyphH]bool
		for i, c := range strings.ReplaceAll(s, " ", "") {
			g[i] = c == '#'
		}
		out[r] = g
	}
	return out
}()

// textWidth is the width in pixels of s drawn at scale 1.
func textWidth(s string) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return n*advance - 1
}

// drawText draws s with its top-left corner at (x, y), clipped to clip.
func drawText(img *image.Paletted, x, y int, s string, c uint8, clip image.Rectangle) {
	clip = clip.Intersect(img.Rect)
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs[unknownR]
		}
		for gy := 0; gy < glyphH; gy++ {
			for gx := 0; gx < glyphW; gx++ {
				if g[gy*glyphW+gx] && (image.Point{x + gx, y + gy}).In(clip) {
					img.SetColorIndex(x+gx, y+gy, c)
				}
			}
		}
		x += advance
	}
}

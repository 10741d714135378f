package harness

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJudgeInstrAndSpread(t *testing.T) {
	spec := Spec{Name: "step", Unit: "us/step", MaxRatio: 1.10, MinPythonRatio: 1.3}
	run := func(goIr, cppIr, pyIr float64) *Report {
		r := InstrResult{Name: "step", Unit: "instructions/step", Go: InstrSide{Ir: goIr},
			Cpp: &InstrSide{Ir: cppIr}, Python: &InstrSide{Ir: pyIr}, WallRatio: 1.2}
		JudgeInstr(spec, &r)
		return &Report{Instr: &InstrInfo{}, Instructions: []InstrResult{r}}
	}
	a := run(1050, 1000, 1400)
	x := a.Instructions[0]
	require.InDelta(t, 1.05, x.Ratio, 1e-12)
	require.InDelta(t, 1400.0/1050, x.PyRatio, 1e-12)
	require.True(t, *x.Met)
	require.True(t, *x.PyMet)
	require.Equal(t, 1.10, x.MaxRatio)

	rows, err := InstrSpread([]*Report{a, run(1051, 1000, 1400), run(1049, 1000, 1401)})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.InDelta(t, 1.05, rows[0].Ratio.Median, 1e-12)
	require.Less(t, rows[0].Ratio.Dev, 0.001)
	require.NoError(t, CheckInstrSpread(rows, 0.01))
	require.Equal(t, "go/c++ ≤ 1.1: met; py/go ≥ 1.3: met", rows[0].Goal)
	var md bytes.Buffer
	require.NoError(t, WriteInstrSpread(&md, rows, 3))
	require.Contains(t, md.String(), "| step | /step | 1.050k | 1.000k | 1.400k | 1.0500 [1.0490–1.0510] |")

	// A run 2% off fails the check.
	rows, err = InstrSpread([]*Report{a, run(1050, 1000, 1400), run(1071, 1000, 1400)})
	require.NoError(t, err)
	require.ErrorContains(t, CheckInstrSpread(rows, 0.01), "step go/c++")

	// A report without the row cannot be compared.
	_, err = InstrSpread([]*Report{a, {Instr: &InstrInfo{}}})
	require.ErrorContains(t, err, `no instruction count for "step"`)
}

func TestCount(t *testing.T) {
	require.Equal(t, "472.8k", Count(472768))
	require.Equal(t, "9.504k", Count(9504))
	require.Equal(t, "94.55M", Count(94554997))
	require.Equal(t, "1.234G", Count(1234000000))
	require.Equal(t, "812", Count(812))
}

package torchenv_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/torchenv"
)

type reported struct {
	name string
	v    float64
}

func drain(env *torchenv.Env) (out []reported, dropped int64) {
	dropped = env.DrainReports(func(n string, v float64) { out = append(out, reported{n, v}) })
	return out, dropped
}

func TestReportReplacesAndDrains(t *testing.T) {
	env := &torchenv.Env{}
	env.Report("loss", 1)
	env.Report("lr", 0.1)
	env.Report("loss", 2)
	got, dropped := drain(env)
	require.Equal(t, []reported{{"loss", 2}, {"lr", 0.1}}, got)
	require.Zero(t, dropped)
	got, _ = drain(env)
	require.Empty(t, got, "a drain forgets")
	env.Report("val_acc", 0.5)
	got, _ = drain(env)
	require.Equal(t, []reported{{"val_acc", 0.5}}, got)
}

func TestReportIsBounded(t *testing.T) {
	env := &torchenv.Env{}
	names := make([]string, torchenv.MaxReports+5)
	for i := range names {
		names[i] = fmt.Sprint("m", i)
	}
	for range 3 { // without a drain, nothing grows past MaxReports names
		for i, n := range names {
			env.Report(n, float64(i))
		}
	}
	got, dropped := drain(env)
	require.Len(t, got, torchenv.MaxReports)
	require.Equal(t, int64(15), dropped)
}

func TestReportFromGoroutines(t *testing.T) {
	env := &torchenv.Env{}
	var wg sync.WaitGroup
	names := []string{"a", "b", "c", "d"}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				env.Report(names[g], float64(i))
			}
		}()
	}
	seen := map[string]float64{}
	for range 200 {
		env.DrainReports(func(n string, v float64) { seen[n] = v })
	}
	wg.Wait()
	env.DrainReports(func(n string, v float64) { seen[n] = v })
	require.Len(t, seen, 4)
	for _, n := range names {
		require.Equal(t, 1999.0, seen[n], n)
	}
}

func TestReportAllocatesNothing(t *testing.T) {
	env := &torchenv.Env{}
	sink := func(string, float64) {}
	step := func() {
		env.Report("loss", 1)
		env.Report("time/forward_ms", 2)
		env.Report("grad_norm", 3)
		env.DrainReports(sink)
	}
	step()
	require.Zero(t, testing.AllocsPerRun(1000, step))
}

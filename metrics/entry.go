package metrics

// Entry is one step's numbers, filled by the caller and handed to Writer.Write. Its slices are
// reused: Reset and Set allocate nothing once they have grown to the step's number of metrics.
// Names keep the order in which they were first set (a Python dict's order).
type Entry struct {
	Step     int64
	Epoch    float64
	WallTime float64 // Unix seconds; 0: the time it is written
	// Keep writes the step even where decimation would skip it (validation metrics).
	Keep bool

	names  []string
	values []float64
}

// Reset empties e for another step.
func (e *Entry) Reset(step int64) {
	e.Step, e.Epoch, e.WallTime, e.Keep = step, 0, 0, false
	e.names, e.values = e.names[:0], e.values[:0]
}

// Set sets a metric; setting a name again replaces its value.
func (e *Entry) Set(name string, v float64) { e.set(name, v, len(e.names)) }

// set is Set with the index where name is expected (names come in the same order step after
// step, so the expected index usually holds it); it returns name's index.
func (e *Entry) set(name string, v float64, hint int) int {
	if i := e.index(name, hint); i >= 0 {
		e.values[i] = v
		return i
	}
	e.names = append(e.names, name)
	e.values = append(e.values, v)
	return len(e.names) - 1
}

func (e *Entry) index(name string, hint int) int {
	if hint >= 0 && hint < len(e.names) && e.names[hint] == name {
		return hint
	}
	for i, n := range e.names {
		if n == name {
			return i
		}
	}
	return -1
}

// Get returns a metric's value.
func (e *Entry) Get(name string) (float64, bool) {
	if i := e.index(name, -1); i >= 0 {
		return e.values[i], true
	}
	return 0, false
}

// Len is the number of metrics set.
func (e *Entry) Len() int { return len(e.names) }

// At returns the i-th metric set (0 ≤ i < Len).
func (e *Entry) At(i int) (name string, v float64) { return e.names[i], e.values[i] }

// CopyFrom makes e a copy of o, reusing e's slices.
func (e *Entry) CopyFrom(o *Entry) {
	e.Step, e.Epoch, e.WallTime, e.Keep = o.Step, o.Epoch, o.WallTime, o.Keep
	e.names = append(e.names[:0], o.names...)
	e.values = append(e.values[:0], o.values...)
}

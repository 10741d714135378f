// Package jsonl is the JSONLLogger callback (hotcb's jsonl_logger): every N steps it appends one
// JSON object per line — step, epoch, phase, event and the values at chosen env paths — to a
// file in the run directory. It also holds what the other record-keeping callbacks share: Line,
// an ordered JSON encoder that reuses its buffer, and Writer, an append-only file that counts
// and reports write errors instead of failing the run.
package jsonl

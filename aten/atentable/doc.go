// Package atentable lists the ATen ops package aten exposes, as cmd/atengen generated them from
// libtorch's op schemas: by id, each with its schema name, overload, Go name and schema. It is
// pure Go (no libtorch), so the hotcb CLI lists them (`hotcb ops`) in milliseconds.
package atentable

// Op is one generated op.
type Op struct {
	Name     string // schema name: "add", "add_", "max_pool2d"
	Overload string // "Tensor", "out", "" for the default overload
	Go       string // the function in package aten: "Add", "AddOut", "Add_"
	Schema   string // "add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
}

// Qualified is the op's full name: "aten::add.Tensor", or "aten::relu" for a default overload.
func (o Op) Qualified() string {
	if o.Overload == "" {
		return "aten::" + o.Name
	}
	return "aten::" + o.Name + "." + o.Overload
}

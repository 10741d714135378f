package data_test

import (
	"context"
	"fmt"

	"github.com/hotcb/hotcb/data"
)

func Example() {
	train, err := data.Shapes(data.ShapesOptions{N: 1000, Classes: 4, Seed: 1})
	if err != nil {
		panic(err)
	}
	// The test set is generated from another seed and put on the training set's scale.
	test, err := data.Shapes(data.ShapesOptions{N: 200, Classes: 4, Seed: 2, Norm: &train.Norm})
	if err != nil {
		panic(err)
	}
	fmt.Println(train.Images.Shape(), train.Labels.Shape(), train.Classes, test.Len())

	loader, err := data.NewLoader(train, data.LoaderOptions{BatchSize: 128, Shuffle: true, Seed: 7})
	if err != nil {
		panic(err)
	}
	defer loader.Close()
	fmt.Println("batches per epoch:", loader.Len())
	for epoch := range 2 {
		for b := range loader.Epoch(context.Background(), epoch) {
			// forward b.X, loss against b.Y, backward, step …
			if b.Index == 0 {
				fmt.Println("epoch", epoch, "first batch", b.X.Shape(), b.Y.Shape())
			}
		}
	}
	// Output:
	// [1000, 1, 28, 28] [1000] [circle square triangle cross] 200
	// batches per epoch: 8
	// epoch 0 first batch [128, 1, 28, 28] [128]
	// epoch 1 first batch [128, 1, 28, 28] [128]
}

package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotcb/hotcb/bridge"
)

// MNISTClasses name MNIST's labels; FashionMNISTClasses name Fashion-MNIST's (whose files look
// exactly like MNIST's: set ds.Classes = data.FashionMNISTClasses after loading them).
var (
	MNISTClasses        = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
)

// mnistNames lists the names tried for a file, in order: the canonical name, the variant with a
// dot that some mirrors use, each raw or gzipped.
func mnistNames(prefix, kind string) []string {
	var out []string
	for _, base := range []string{prefix + "-" + kind, strings.Replace(prefix+"-"+kind, "-idx", ".idx", 1)} {
		out = append(out, base, base+".gz")
	}
	return out
}

func findFile(dir string, names []string) (string, error) {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("data: mnist: %s: no %s (tried %s)", dir, names[0], strings.Join(names, ", "))
}

func readIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	x, err := ReadIDX(f)
	if err != nil {
		return nil, fmt.Errorf("data: mnist: %s: %w", path, err)
	}
	return x, nil
}

// LoadMNIST reads MNIST or Fashion-MNIST from dir: train-images-idx3-ubyte and
// train-labels-idx1-ubyte (train) or t10k-… (test), raw or gzipped (.gz). Images become
// float32 [N,1,28,28] normalised with their own mean and std (see Norm; put a test set on the
// training set's scale with Renormalize); labels are int64 [N]. Errors name the file and what is
// wrong with it.
func LoadMNIST(dir string, train bool) (*TensorDataset, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	imgPath, err := findFile(dir, mnistNames(prefix, "images-idx3-ubyte"))
	if err != nil {
		return nil, err
	}
	lblPath, err := findFile(dir, mnistNames(prefix, "labels-idx1-ubyte"))
	if err != nil {
		return nil, err
	}
	imgs, err := readIDXFile(imgPath)
	if err != nil {
		return nil, err
	}
	if imgs.Type != IDXUint8 || len(imgs.Dims) != 3 {
		return nil, fmt.Errorf("data: mnist: %s: magic 0x%08x is %v, want uint8 images [N×rows×cols] (magic 0x00000803)", imgPath, imgs.Magic(), imgs)
	}
	if imgs.Dims[1] == 0 || imgs.Dims[2] == 0 {
		return nil, fmt.Errorf("data: mnist: %s: images of %d×%d pixels", imgPath, imgs.Dims[1], imgs.Dims[2])
	}
	lbls, err := readIDXFile(lblPath)
	if err != nil {
		return nil, err
	}
	if lbls.Type != IDXUint8 || len(lbls.Dims) != 1 {
		return nil, fmt.Errorf("data: mnist: %s: magic 0x%08x is %v, want uint8 labels [N] (magic 0x00000801)", lblPath, lbls.Magic(), lbls)
	}
	n := imgs.Dims[0]
	if lbls.Dims[0] != n {
		return nil, fmt.Errorf("data: mnist: %s holds %d labels but %s holds %d images", lblPath, lbls.Dims[0], imgPath, n)
	}
	if n == 0 {
		return nil, fmt.Errorf("data: mnist: %s: no images", imgPath)
	}
	labels := make([]int64, n)
	for i, l := range lbls.Data {
		if l > 9 {
			return nil, fmt.Errorf("data: mnist: %s: label %d of example %d is not a class 0…9", lblPath, l, i)
		}
		labels[i] = int64(l)
	}
	ds := &TensorDataset{Classes: append([]string(nil), MNISTClasses...)}
	err = bridge.Try(func() {
		x := bridge.FromSlice(imgs.Data, int64(n), 1, int64(imgs.Dims[1]), int64(imgs.Dims[2])).To(bridge.Float32)
		x.DivScalarInPlace(255)
		mean, std := float32(x.Mean().Item()), float32(x.Std(false).Item())
		if !(std > 0) {
			std = 1
		}
		x.AddScalarInPlace(-float64(mean))
		x.DivScalarInPlace(float64(std))
		ds.Images, ds.Labels = x, bridge.FromSlice(labels)
		ds.Norm = Norm{Mean: []float32{mean}, Std: []float32{std}}
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

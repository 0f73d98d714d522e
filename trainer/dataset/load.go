package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Split picks the IDX files of a folder: "train" (the default when
	// empty) or "test" (t10k-…). Other inputs ignore it.
	Split string
	// Resize is the size, H and W, image-folder images are resized to
	// with bilinear interpolation. Zero keeps each image's size, and all
	// images must then have the same size. Image folders only.
	Resize [2]int
	// Grayscale stores image-folder images as one gray channel instead of
	// three RGB channels. Image folders only.
	Grayscale bool
	// FitTo is the sample shape [C, H, W] of the model the data will feed.
	// Image-folder images are then converted to C channels (1: gray by
	// the luma rule Y = 0.299 R + 0.587 G + 0.114 B of Go's color.GrayModel;
	// 3: RGB, a gray image's one channel repeated) and resized to H×W
	// with bilinear interpolation, unless Resize or Grayscale say
	// otherwise. Other inputs ignore it: their shape is checked against
	// the model where they are used. A shape that is not [1|3, H, W] is
	// ignored too.
	FitTo []int64
	// MaxSamples caps the number of samples read; 0 reads all. IDX and
	// .npz inputs keep their first MaxSamples samples; an image folder
	// takes files round-robin over its classes.
	MaxSamples int
}

// maxResize caps LoadOptions.Resize.
const maxResize = 1 << 14

// Load reads a data set from path, which may be
//
//   - a folder of IDX files in the MNIST layout (train-images-idx3-ubyte,
//     train-labels-idx1-ubyte, t10k-…, each optionally .gz), read by Split;
//   - one IDX images file (…images-idx3-ubyte[.gz]), its labels file
//     (…labels-idx1-ubyte[.gz]) beside it;
//   - a .npz archive with arrays x (uint8 or float32, float64 converted;
//     [N, …]) and y (integers, [N]);
//   - an image folder: one subfolder per class (sorted names give class ids
//     0..K-1) of PNG and JPEG files, stored as uint8 [3, H, W] RGB or
//     [1, H, W] with Grayscale.
//
// The data set starts with the identity normalization.
func Load(path string, opts LoadOptions) (*Dataset, error) {
	if _, err := idxPrefix(opts.Split); err != nil {
		return nil, err
	}
	if opts.MaxSamples < 0 {
		return nil, fmt.Errorf("dataset: MaxSamples %d is negative: %w", opts.MaxSamples, ErrBadData)
	}
	r := opts.Resize
	if (r[0] == 0) != (r[1] == 0) || r[0] < 0 || r[1] < 0 || r[0] > maxResize || r[1] > maxResize {
		return nil, fmt.Errorf("dataset: resize size %d×%d: want both H and W in [1, %d], or both 0 to keep the size: %w", r[0], r[1], maxResize, ErrBadData)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	base := filepath.Base(path)
	if st.IsDir() && !hasIDX(path) {
		return loadImageFolder(path, opts.fitted())
	}
	imageOnly := func(kind string) error {
		if opts.Resize != [2]int{} || opts.Grayscale {
			return fmt.Errorf("dataset: %s: resize and grayscale apply to image folders, not to %s: %w", base, kind, ErrBadData)
		}
		return nil
	}
	if st.IsDir() {
		if err := imageOnly("IDX data"); err != nil {
			return nil, err
		}
		images, err := findIDXImages(path, opts.Split)
		if err != nil {
			return nil, err
		}
		return loadIDX(images, base+" ("+splitName(opts.Split)+")", opts.MaxSamples)
	}
	lower := strings.ToLower(base)
	switch {
	case strings.HasSuffix(lower, ".npz"):
		if err := imageOnly(".npz data"); err != nil {
			return nil, err
		}
		return loadNPZ(path, opts.MaxSamples)
	case strings.HasSuffix(lower, ".npy"):
		return nil, fmt.Errorf("dataset: %s: a .npy file holds one array and no labels; save samples and labels together with np.savez(%q, x=x, y=y): %w", base, strings.TrimSuffix(base, filepath.Ext(base))+".npz", ErrBadData)
	case isIDXImages(base):
		if err := imageOnly("IDX data"); err != nil {
			return nil, err
		}
		return loadIDX(path, base, opts.MaxSamples)
	case strings.Contains(lower, "labels-idx1") || strings.Contains(lower, "labels.idx1"):
		return nil, fmt.Errorf("dataset: %s: this is an IDX labels file; name the images file (…images-idx3-ubyte) or their folder: %w", base, ErrBadData)
	}
	return nil, fmt.Errorf("dataset: %s: unknown data format (want an IDX folder or images file, a .npz archive, or an image folder): %w", base, ErrBadData)
}

// hasIDX reports whether a folder holds IDX images files.
func hasIDX(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !e.IsDir() && isIDXImages(e.Name()) {
			return true
		}
	}
	return false
}

// fitted fills Resize and Grayscale from FitTo where they are unset.
func (o LoadOptions) fitted() LoadOptions {
	f := o.FitTo
	if len(f) != 3 || (f[0] != 1 && f[0] != 3) || f[1] <= 0 || f[2] <= 0 || f[1] > maxResize || f[2] > maxResize {
		return o
	}
	if o.Resize == [2]int{} {
		o.Resize = [2]int{int(f[1]), int(f[2])}
	}
	if !o.Grayscale {
		o.Grayscale = f[0] == 1
	}
	return o
}

package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// maxImagePixels caps the size an image file may declare (64 Mpixel).
const maxImagePixels = 1 << 26

// imageFile is one sample of an image folder.
type imageFile struct {
	path  string // on disk
	name  string // for messages: folder/class/file
	label int64
}

// isImageName reports whether a file name has a PNG or JPEG extension.
func isImageName(n string) bool {
	switch strings.ToLower(filepath.Ext(n)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// listImageFolder lists the class subfolders of dir (sorted names → class
// ids 0..K-1) and their PNG and JPEG files. Hidden entries and files of
// other types are skipped.
func listImageFolder(dir string) (classes []string, perClass [][]imageFile, err error) {
	base := filepath.Base(dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: %w", err)
	}
	for _, e := range ents { // os.ReadDir sorts by name
		if strings.HasPrefix(e.Name(), ".") || !isDir(filepath.Join(dir, e.Name()), e) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("dataset: %w", err)
		}
		var list []imageFile
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".") || !isImageName(f.Name()) || isDir(filepath.Join(dir, e.Name(), f.Name()), f) {
				continue
			}
			list = append(list, imageFile{
				path:  filepath.Join(dir, e.Name(), f.Name()),
				name:  base + "/" + e.Name() + "/" + f.Name(),
				label: int64(len(classes)),
			})
		}
		classes = append(classes, e.Name())
		perClass = append(perClass, list)
	}
	if len(classes) == 0 {
		return nil, nil, fmt.Errorf("dataset: %s: no class subfolders (an image folder holds one folder of PNG/JPEG files per class): %w", base, ErrBadData)
	}
	return classes, perClass, nil
}

// isDir reports whether a folder entry is a folder, following a symbolic
// link.
func isDir(path string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.IsDir()
	}
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// pickImages returns the files to load in class order; with max > 0 it
// takes files round-robin over the classes (each class's first files) so
// that a capped load still covers every class.
func pickImages(perClass [][]imageFile, max int) []imageFile {
	var out []imageFile
	if max <= 0 {
		for _, l := range perClass {
			out = append(out, l...)
		}
		return out
	}
	take := make([]int, len(perClass))
	for n, more := 0, true; n < max && more; {
		more = false
		for c, l := range perClass {
			if n < max && take[c] < len(l) {
				take[c]++
				n++
				more = true
			}
		}
	}
	for c, l := range perClass {
		out = append(out, l[:take[c]]...)
	}
	return out
}

// loadImageFolder reads an image folder into uint8 samples [C, H, W].
func loadImageFolder(dir string, opts LoadOptions) (*Dataset, error) {
	base := filepath.Base(dir)
	classes, perClass, err := listImageFolder(dir)
	if err != nil {
		return nil, err
	}
	files := pickImages(perClass, opts.MaxSamples)
	if len(files) == 0 {
		return nil, fmt.Errorf("dataset: %s: empty data set (no .png/.jpg/.jpeg files in its %d class folders): %w", base, len(classes), ErrBadData)
	}
	C := 3
	if opts.Grayscale {
		C = 1
	}
	H, W := opts.Resize[0], opts.Resize[1]
	if H == 0 {
		cfg, err := imageConfig(files[0])
		if err != nil {
			return nil, err
		}
		H, W = cfg.Height, cfg.Width
	}
	size := C * H * W
	if int64(len(files))*int64(size) > maxDataBytes {
		return nil, fmt.Errorf("dataset: %s: %d images of %d×%d×%d are too many to hold: %w", base, len(files), C, H, W, ErrBadData)
	}
	x := make([]byte, len(files)*size)
	y := make([]int64, len(files))
	errs := make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Go(func() {
			for i := range next {
				errs[i] = decodeInto(files[i], x[i*size:(i+1)*size], C, H, W, opts.Resize[0] != 0)
			}
		})
	}
	for i, f := range files {
		y[i] = f.label
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	d, err := newUint8(base, []int64{int64(C), int64(H), int64(W)}, x, y)
	if err != nil {
		return nil, err
	}
	d.classes, d.names = len(classes), classes
	return d, nil
}

// imageConfig reads the size of an image file, checking it is sane.
func imageConfig(f imageFile) (image.Config, error) {
	r, err := os.Open(f.path)
	if err != nil {
		return image.Config{}, fmt.Errorf("dataset: %w", err)
	}
	defer r.Close()
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return cfg, fmt.Errorf("dataset: %s: unreadable image: %v: %w", f.name, err, ErrBadData)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return cfg, fmt.Errorf("dataset: %s: image size %d×%d is empty or larger than %d pixels: %w", f.name, cfg.Width, cfg.Height, maxImagePixels, ErrBadData)
	}
	return cfg, nil
}

// decodeInto decodes one image file into dst as C planes of H×W,
// resizing when resize is set and else requiring the size H×W.
func decodeInto(f imageFile, dst []byte, C, H, W int, resize bool) error {
	raw, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("dataset: %s: unreadable image: %v: %w", f.name, err, ErrBadData)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return fmt.Errorf("dataset: %s: image size %d×%d is empty or larger than %d pixels: %w", f.name, cfg.Width, cfg.Height, maxImagePixels, ErrBadData)
	}
	if !resize && (cfg.Width != W || cfg.Height != H) {
		return fmt.Errorf("dataset: %s: image is %d×%d (W×H) but the first image is %d×%d; set a resize size: %w", f.name, cfg.Width, cfg.Height, W, H, ErrBadData)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("dataset: %s: unreadable image: %v: %w", f.name, err, ErrBadData)
	}
	planes, sw, sh := toPlanes(img, C == 1)
	for c := range C {
		resizeBilinear(dst[c*H*W:(c+1)*H*W], W, H, planes[c*sw*sh:(c+1)*sw*sh], sw, sh)
	}
	return nil
}

// toPlanes converts an image to planar RGB (or gray) bytes [C][h][w].
// Transparent pixels are composed onto black.
func toPlanes(img image.Image, gray bool) (out []byte, w, h int) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	n := w * h
	C := 3
	if gray {
		C = 1
	}
	out = make([]byte, C*n)
	put := func(k int, r, g, bl uint8) {
		if gray {
			out[k] = luma(r, g, bl)
			return
		}
		out[k], out[n+k], out[2*n+k] = r, g, bl
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				put(y*w+x, v, v, v)
			}
		}
	case *image.RGBA: // premultiplied: already on black
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				put(y*w+x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				put(y*w+x, r, g, bl)
			}
		}
	default:
		for y := range h {
			for x := range w {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				put(y*w+x, uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			}
		}
	}
	return out, w, h
}

// luma is the gray value of an RGB color, with the weights and rounding of
// Go's color.GrayModel (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B).
func luma(r, g, b uint8) uint8 {
	y := (19595*uint64(r)*0x101 + 38470*uint64(g)*0x101 + 7471*uint64(b)*0x101 + 1<<15) >> 24
	return uint8(y)
}

// resizeBilinear resamples one plane src (sw×sh) to dst (dw×dh) with
// bilinear interpolation on pixel centers (output pixel centre x maps to
// (x+0.5)·sw/dw − 0.5, clamped to the edge pixels; no antialiasing),
// rounding to the nearest integer.
func resizeBilinear(dst []byte, dw, dh int, src []byte, sw, sh int) {
	if dw == sw && dh == sh {
		copy(dst, src)
		return
	}
	x0, x1, fx := bilinearTaps(dw, sw)
	y0, y1, fy := bilinearTaps(dh, sh)
	for y := range dh {
		ra, rb, wy := src[y0[y]*sw:(y0[y]+1)*sw], src[y1[y]*sw:(y1[y]+1)*sw], fy[y]
		for x := range dw {
			a, b, wx := float64(ra[x0[x]]), float64(ra[x1[x]]), fx[x]
			c, d := float64(rb[x0[x]]), float64(rb[x1[x]])
			top := a + (b-a)*wx
			bot := c + (d-c)*wx
			v := math.Floor(top + (bot-top)*wy + 0.5)
			dst[y*dw+x] = uint8(min(max(v, 0), 255))
		}
	}
}

// bilinearTaps returns, per output position, the two source positions and
// the weight of the second.
func bilinearTaps(out, in int) (i0, i1 []int, f []float64) {
	i0, i1, f = make([]int, out), make([]int, out), make([]float64, out)
	scale := float64(in) / float64(out)
	for o := range out {
		s := (float64(o)+0.5)*scale - 0.5
		s = min(max(s, 0), float64(in-1))
		a := int(s)
		i0[o], i1[o], f[o] = a, min(a+1, in-1), s-float64(a)
	}
	return i0, i1, f
}

package dataset

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var err error
	if strings.EqualFold(filepath.Ext(path), ".png") {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func uniform(w, h int, c color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

// pixel returns the stored value of channel c at (x, y) of sample i.
func pixel(t *testing.T, d *Dataset, i, c, y, x int) int {
	t.Helper()
	s := d.SampleShape()
	H, W := int(s[1]), int(s[2])
	out := make([]float32, sampleSize(d))
	if err := d.Batch([]int{i}, out); err != nil {
		t.Fatal(err)
	}
	return int(out[c*H*W+y*W+x]*255 + 0.5)
}

func TestImageFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "pets")
	// A PNG with four known colors in a 2×2 block of a 3×2 image.
	cat := image.NewRGBA(image.Rect(0, 0, 3, 2))
	cols := [][]color.RGBA{
		{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}},
		{{10, 20, 30, 255}, {200, 100, 50, 255}, {255, 255, 255, 255}},
	}
	for y, row := range cols {
		for x, c := range row {
			cat.SetRGBA(x, y, c)
		}
	}
	writeImage(t, filepath.Join(root, "a_cat", "1.png"), cat)
	writeImage(t, filepath.Join(root, "a_cat", "2.PNG"), uniform(3, 2, color.RGBA{40, 80, 120, 255}))
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(30 * i)
	}
	writeImage(t, filepath.Join(root, "b_dog", "g.png"), gray)
	writeImage(t, filepath.Join(root, "b_dog", "j.jpg"), uniform(3, 2, color.RGBA{200, 150, 100, 255}))
	os.WriteFile(filepath.Join(root, "b_dog", "notes.txt"), []byte("not an image"), 0o644)
	os.MkdirAll(filepath.Join(root, ".git"), 0o755)
	os.MkdirAll(filepath.Join(root, "c_empty"), 0o755)

	d, err := Load(root, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "pets" || d.Len() != 4 || d.Classes() != 3 || !slices.Equal(d.SampleShape(), []int64{3, 2, 3}) ||
		!slices.Equal(d.Labels(), []int64{0, 0, 1, 1}) || !slices.Equal(d.ClassNames(), []string{"a_cat", "b_dog", "c_empty"}) {
		t.Fatalf("name %q len %d classes %d shape %v labels %v names %v", d.Name(), d.Len(), d.Classes(), d.SampleShape(), d.Labels(), d.ClassNames())
	}
	for y, row := range cols { // PNG: exact
		for x, c := range row {
			got := [3]int{pixel(t, d, 0, 0, y, x), pixel(t, d, 0, 1, y, x), pixel(t, d, 0, 2, y, x)}
			if want := [3]int{int(c.R), int(c.G), int(c.B)}; got != want {
				t.Errorf("1.png (%d,%d): got %v want %v", x, y, got, want)
			}
		}
	}
	if got := pixel(t, d, 1, 2, 1, 2); got != 120 {
		t.Errorf("2.PNG blue = %d want 120", got)
	}
	for i := range 6 { // gray PNG → R = G = B
		for c := range 3 {
			if got := pixel(t, d, 2, c, i/3, i%3); got != 30*i {
				t.Errorf("g.png pixel %d channel %d = %d want %d", i, c, got, 30*i)
			}
		}
	}
	for c, want := range []int{200, 150, 100} { // JPEG: lossy
		for y := range 2 {
			for x := range 3 {
				if got := pixel(t, d, 3, c, y, x); got < want-4 || got > want+4 {
					t.Errorf("j.jpg (%d,%d) channel %d = %d want %d±4", x, y, c, got, want)
				}
			}
		}
	}

	// Grayscale: BT.601 luma with color.GrayModel's rounding:
	// red → 0.299·255 ≈ 76, green → 0.587·255 ≈ 150, blue → 0.114·255 ≈ 29.
	g, err := Load(root, LoadOptions{Grayscale: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.SampleShape(), []int64{1, 2, 3}) {
		t.Fatalf("grayscale shape %v", g.SampleShape())
	}
	for x, want := range []int{76, 150, 29} {
		if got := pixel(t, g, 0, 0, 0, x); got != want {
			t.Errorf("grayscale 1.png (%d,0) = %d want %d", x, got, want)
		}
	}
	if got := pixel(t, g, 2, 0, 1, 2); got != 150 {
		t.Errorf("grayscale g.png (2,1) = %d want 150", got)
	}

	// MaxSamples takes files round-robin over the classes.
	m, err := Load(root, LoadOptions{MaxSamples: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Labels(), []int64{0, 0, 1}) || m.Classes() != 3 {
		t.Errorf("MaxSamples 3: labels %v classes %d", m.Labels(), m.Classes())
	}
	m, _ = Load(root, LoadOptions{MaxSamples: 2})
	if !slices.Equal(m.Labels(), []int64{0, 1}) {
		t.Errorf("MaxSamples 2: labels %v", m.Labels())
	}

	// A differently sized image needs Resize.
	writeImage(t, filepath.Join(root, "b_dog", "big.png"), uniform(5, 4, color.RGBA{9, 9, 9, 255}))
	_, err = Load(root, LoadOptions{})
	wantBadData(t, "sizes", err, "pets/b_dog/big.png", "5×4", "3×2")
	r, err := Load(root, LoadOptions{Resize: [2]int{4, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.SampleShape(), []int64{3, 4, 7}) || r.Len() != 5 {
		t.Fatalf("resized: shape %v len %d", r.SampleShape(), r.Len())
	}
	for i, want := range map[int][3]int{1: {40, 80, 120}, 2: {9, 9, 9}} { // constant images stay constant
		for c := range 3 {
			for y := range 4 {
				for x := range 7 {
					if got := pixel(t, r, i, c, y, x); got != want[c] {
						t.Fatalf("resized sample %d (%d,%d) channel %d = %d want %d", i, x, y, c, got, want[c])
					}
				}
			}
		}
	}

	// A corrupt file is named.
	os.WriteFile(filepath.Join(root, "a_cat", "broken.png"), []byte("\x89PNG\r\n\x1a\nthis is no png"), 0o644)
	_, err = Load(root, LoadOptions{Resize: [2]int{2, 2}})
	wantBadData(t, "corrupt", err, "pets/a_cat/broken.png", "unreadable image")
	os.WriteFile(filepath.Join(root, "a_cat", "broken.png"), hugePNGHeader(100000, 100000), 0o644)
	_, err = Load(root, LoadOptions{Resize: [2]int{2, 2}})
	wantBadData(t, "huge", err, "pets/a_cat/broken.png", "100000×100000")

	_, err = Load(root, LoadOptions{Resize: [2]int{4, 0}})
	wantBadData(t, "half resize", err, "4×0")
}

// hugePNGHeader is a PNG signature and an IHDR chunk declaring w×h.
func hugePNGHeader(w, h uint32) []byte {
	ihdr := []byte("IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

func TestImageFolderErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flat")
	os.MkdirAll(dir, 0o755)
	writeImage(t, filepath.Join(dir, "a.png"), uniform(2, 2, color.Black))
	_, err := Load(dir, LoadOptions{})
	wantBadData(t, "no classes", err, "flat", "no class subfolders")
	os.MkdirAll(filepath.Join(dir, "x"), 0o755)
	_, err = Load(dir, LoadOptions{})
	wantBadData(t, "no images", err, "flat", "empty data set")
}

// Bilinear 2×2 → 4×4 on pixel centres. Source [[0, 80], [160, 240]]; the
// output positions map to source coordinates −0.25 (clamped to 0), 0.25,
// 0.75, 1.25 (clamped to 1), so the weights of the second pixel are 0,
// 0.25, 0.75, 1 along both axes and out[i][j] = 160·w[i] + 80·w[j].
func TestResizeBilinearHand(t *testing.T) {
	want := []byte{
		0, 20, 60, 80,
		40, 60, 100, 120,
		120, 140, 180, 200,
		160, 180, 220, 240,
	}
	got := make([]byte, 16)
	resizeBilinear(got, 4, 4, []byte{0, 80, 160, 240}, 2, 2)
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// The same through an image folder.
	root := filepath.Join(t.TempDir(), "tiny")
	img := image.NewGray(image.Rect(0, 0, 2, 2))
	copy(img.Pix, []byte{0, 80, 160, 240})
	writeImage(t, filepath.Join(root, "only", "a.png"), img)
	d, err := Load(root, LoadOptions{Resize: [2]int{4, 4}, Grayscale: true})
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		if got := pixel(t, d, 0, 0, k/4, k%4); got != int(w) {
			t.Errorf("folder pixel %d = %d want %d", k, got, w)
		}
	}
	// Downscaling 4×1 → 2×1 averages pairs: source centres 0.5 and 2.5.
	got = make([]byte, 2)
	resizeBilinear(got, 2, 1, []byte{10, 20, 100, 200}, 4, 1)
	if !slices.Equal(got, []byte{15, 150}) {
		t.Errorf("downscale: got %v want [15 150]", got)
	}
}

// TestImageFolderFitTo: images are converted and resized to the model's
// sample shape: gray 32×32 and RGB 32×32 files feed a [1, 28, 28] model
// (RGB to gray by the luma rule: 0.299·200 + 0.587·100 + 0.114·50 = 124.2
// → 124) and a [3, 28, 28] one (gray repeated in each channel). Uniform
// images stay uniform under bilinear resizing, so every pixel is known.
func TestImageFolderFitTo(t *testing.T) {
	dir := t.TempDir()
	g := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range g.Pix {
		g.Pix[i] = 100
	}
	writeImage(t, filepath.Join(dir, "a", "gray.png"), g)
	writeImage(t, filepath.Join(dir, "b", "rgb.png"), uniform(32, 32, color.RGBA{200, 100, 50, 255}))

	if _, err := Load(dir, LoadOptions{}); err != nil {
		t.Fatalf("plain load: %v", err) // same size: loads as RGB 32×32
	}
	d1, err := Load(dir, LoadOptions{FitTo: []int64{1, 28, 28}})
	if err != nil {
		t.Fatal(err)
	}
	if s := d1.SampleShape(); !slices.Equal(s, []int64{1, 28, 28}) {
		t.Fatalf("shape %v, want [1 28 28]", s)
	}
	for _, c := range []struct{ i, want int }{{0, 100}, {1, 124}} {
		for _, yx := range [][2]int{{0, 0}, {13, 17}, {27, 27}} {
			if got := pixel(t, d1, c.i, 0, yx[0], yx[1]); got != c.want {
				t.Errorf("gray model, sample %d at %v: %d, want %d", c.i, yx, got, c.want)
			}
		}
	}
	d3, err := Load(dir, LoadOptions{FitTo: []int64{3, 28, 28}})
	if err != nil {
		t.Fatal(err)
	}
	if s := d3.SampleShape(); !slices.Equal(s, []int64{3, 28, 28}) {
		t.Fatalf("shape %v, want [3 28 28]", s)
	}
	for ch, want := range []int{200, 100, 50} {
		if got := pixel(t, d3, 1, ch, 5, 9); got != want {
			t.Errorf("RGB model, RGB sample, channel %d: %d, want %d", ch, got, want)
		}
		if got := pixel(t, d3, 0, ch, 5, 9); got != 100 {
			t.Errorf("RGB model, gray sample, channel %d: %d, want 100", ch, got)
		}
	}
	// An explicit size wins over the model's; a shape that is not an
	// image's is ignored.
	d, err := Load(dir, LoadOptions{FitTo: []int64{1, 28, 28}, Resize: [2]int{8, 8}})
	if err != nil || !slices.Equal(d.SampleShape(), []int64{1, 8, 8}) {
		t.Errorf("explicit resize: %v, %v; want [1 8 8]", d.SampleShape(), err)
	}
	d, err = Load(dir, LoadOptions{FitTo: []int64{784}})
	if err != nil || !slices.Equal(d.SampleShape(), []int64{3, 32, 32}) {
		t.Errorf("flat model shape: %v, %v; want the files' own [3 32 32]", d.SampleShape(), err)
	}
}

package server

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf/internal/testenv"
)

// A folder's index page, as a headless Chromium renders it: the names are in
// its DOM as text (the one that looks like markup too), and the screenshot
// is a real page, not a blank or an error.
func TestHTTPIndexPageInBrowser(t *testing.T) {
	t.Parallel()

	browser := testenv.Tool(t, "chromium", "chromium-browser")
	root, _ := httpFixture(t)
	_, base := startHTTP(t, root, nil)

	dom := runBrowser(t, browser, "--dump-dom", base+"/")
	for _, want := range []string{
		"Index of /",
		`<a href="./README.txt">README.txt</a>`,
		`<a href="./pub/">pub/</a>`,
		`<a href="./latest/">latest/</a>`,
		// Text in the DOM, never an element.
		`&lt;img src=x onerror=alert(1)&gt;.txt</a>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered DOM lacks %s:\n%s", want, dom)
		}
	}

	if strings.Contains(dom, "<img") {
		t.Errorf("a file name became an element:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "index.png")
	runBrowser(t, browser, "--screenshot="+shot, "--window-size=1024,768", base+"/pub/")

	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}

	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}

	if b := img.Bounds(); b.Dx() != 1024 || b.Dy() != 768 {
		t.Errorf("screenshot is %v, want 1024x768", b)
	}

	// The page is mostly white, with dark text and blue links in its upper
	// left part: a blank page or a browser error page has neither.
	dark, blue := inks(img)
	if dark < 200 || blue < 100 {
		t.Errorf("the screenshot shows %d dark and %d blue pixels: not the index page", dark, blue)
	}
}

// runBrowser runs the headless browser on a page and returns its output.
func runBrowser(t *testing.T, browser string, args ...string) string {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	full := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}, args...)

	cmd := exec.CommandContext(ctx, browser, full...)
	cmd.WaitDelay = 5 * time.Second // chromium's helpers may hold stdout open

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", browser, err, stderr.String())
	}

	return string(out)
}

// inks counts the dark pixels (text) and the blue ones (links) of img.
func inks(img image.Image) (dark, blue int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) //nolint:forcetypeassert // RGBAModel gives RGBA
			switch {
			case c.R < 90 && c.G < 90 && c.B < 90:
				dark++
			case c.B > 120 && int(c.B) > int(c.R)+60 && int(c.B) > int(c.G)+30:
				blue++
			}
		}
	}

	return dark, blue
}

package report

import (
	"cmp"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/reliable-ops/rops/history"
)

// Width and Height are the size of the plots, in pixels.
const (
	Width  = 1200
	Height = 500
)

// maxPoints bounds the points of one outcome that Latency draws: beyond
// it, every k-th is drawn, and the title says so.
const maxPoints = 20_000

// Colours of the outcomes, and of the fault windows' shade (opaque, so
// that it is one colour wherever no point covers it).
var (
	colours = map[history.Outcome]color.Color{
		history.Done:       color.RGBA{44, 160, 44, 255},
		history.Unchanged:  color.RGBA{31, 119, 180, 255},
		history.RolledBack: color.RGBA{255, 127, 14, 255},
		history.Pending:    color.RGBA{214, 39, 40, 255},
		history.Present:    color.RGBA{148, 103, 189, 255},
		history.Absent:     color.RGBA{127, 127, 127, 255},
	}
	// Shade is the colour of the fault windows.
	Shade = color.RGBA{255, 228, 170, 255}
)

// Colour returns the colour outcome o is drawn in, and whether it has one.
func Colour(o history.Outcome) (color.Color, bool) {
	c, ok := colours[o]
	return c, ok
}

// outcomes in the order the legends list them.
var outcomes = []history.Outcome{history.Done, history.Unchanged, history.RolledBack, history.Pending, history.Present, history.Absent}

// Latency draws each operation's latency against the time it was called,
// coloured by outcome, on a log scale, with the nemesis's fault windows
// shaded, as a Width×Height PNG. Reads are drawn as present and absent; a
// pending operation, which has no latency, as a triangle along the top.
func Latency(w io.Writer, ops []history.Op) error {
	p := newPlot(ops)
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}

	pts := map[history.Outcome]plotter.XYs{}
	top := 1.0 // ms
	for _, op := range ops {
		if op.Kind != history.Nemesis && op.Return != history.NoReturn {
			top = max(top, ms(op.Return-op.Call))
		}
	}
	top *= 2 // the pending row, above every latency
	returned := 0
	for _, op := range ops {
		switch {
		case op.Kind == history.Nemesis:
		case op.Return == history.NoReturn:
			pts[op.Outcome] = append(pts[op.Outcome], plotter.XY{X: op.Call.Seconds(), Y: top})
		default:
			returned++
			// The log scale has no 0: a latency under 1 µs is drawn at 1 µs.
			pts[op.Outcome] = append(pts[op.Outcome], plotter.XY{X: op.Call.Seconds(), Y: max(ms(op.Return-op.Call), 0.001)})
		}
	}
	p.Title.Text = fmt.Sprintf("Latency of each operation (%d returned", returned)
	if n := len(pts[history.Pending]); n > 0 {
		p.Title.Text += fmt.Sprintf(", %d pending along the top", n)
	}
	every := 1
	for _, o := range outcomes {
		every = max(every, (len(pts[o])+maxPoints-1)/maxPoints)
	}
	if every > 1 {
		p.Title.Text += fmt.Sprintf(", every %dth drawn", every)
	}
	p.Title.Text += ")"
	for _, o := range outcomes {
		xys := pts[o]
		if len(xys) == 0 {
			continue
		}
		if every > 1 {
			var some plotter.XYs
			for i := 0; i < len(xys); i += every {
				some = append(some, xys[i])
			}
			xys = some
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: colours[o], Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}
		if o == history.Pending {
			s.GlyphStyle = draw.GlyphStyle{Color: colours[o], Radius: vg.Points(3), Shape: draw.TriangleGlyph{}}
		}
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%s (%d)", o, len(pts[o])), s)
	}
	p.Y.Min, p.Y.Max = math.Min(p.Y.Min, 0.1), top*1.5
	return render(w, p)
}

// Rate draws how many operations ended per second, by outcome, with the
// nemesis's fault windows shaded, as a Width×Height PNG. Each operation
// counts in the bin of its return, a pending one in the bin of its call.
// Bins are 1 s, or shorter for a history under 30 s (see binWidth).
func Rate(w io.Writer, ops []history.Op) error {
	p := newPlot(ops)
	span := end(ops)
	bin := binWidth(span)
	n := int(span/bin) + 1
	counts := map[history.Outcome][]float64{}
	for _, op := range ops {
		if op.Kind == history.Nemesis {
			continue
		}
		at := op.Return
		if at == history.NoReturn {
			at = op.Call
		}
		if counts[op.Outcome] == nil {
			counts[op.Outcome] = make([]float64, n)
		}
		counts[op.Outcome][int(at/bin)]++
	}
	p.Title.Text = fmt.Sprintf("Operations per second by outcome (bins of %v)", bin)
	p.Y.Label.Text = "operations per second"
	p.Y.Min = 0
	p.Y.Tick.Marker = plainTicks{}
	for _, o := range outcomes {
		c := counts[o]
		if c == nil {
			continue
		}
		xys := make(plotter.XYs, n+1)
		for i := range xys {
			xys[i].X = (time.Duration(i) * bin).Seconds()
			xys[i].Y = c[min(i, n-1)] / bin.Seconds()
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.StepStyle = plotter.PostStep
		l.LineStyle = draw.LineStyle{Color: colours[o], Width: vg.Points(1.5)}
		p.Add(l)
		p.Legend.Add(string(o), l)
	}
	return render(w, p)
}

// binWidth is the rate's bin: 1 s, or for a history shorter than 30 s the
// longest of 1, 2 and 5 times a power of ten (1 ms at least) that gives
// it 30 bins.
func binWidth(span time.Duration) time.Duration {
	bin := time.Second
	for _, b := range []time.Duration{500, 200, 100, 50, 20, 10, 5, 2, 1} {
		if span/bin >= 30 {
			break
		}
		bin = b * time.Millisecond
	}
	return bin
}

// plainTicks are plot's default ticks, labelled as plainly as their values
// allow ("500", not "500.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i, t := range ts {
		if t.Label != "" {
			ts[i].Label = strconv.FormatFloat(t.Value, 'g', -1, 64)
		}
	}
	return ts
}

// newPlot returns a plot over the history's span with its fault windows
// shaded.
func newPlot(ops []history.Op) *plot.Plot {
	p := plot.New()
	p.X.Label.Text = "time since the history's start (s)"
	p.X.Tick.Marker = plainTicks{}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	windows := spans(ops)
	p.Add(plotter.NewGrid())
	if len(windows) > 0 {
		s := shade(windows)
		p.Add(s)
		p.Legend.Add("fault window", s)
	}
	p.X.Min, p.X.Max = 0, math.Max(end(ops).Seconds(), 1e-6)
	return p
}

// end is the history's span: its last call or return.
func end(ops []history.Op) time.Duration {
	var e time.Duration
	for _, op := range ops {
		e = max(e, op.Call, op.Return)
	}
	return e
}

// spans returns the fault windows as the seconds they cover, overlapping
// ones merged; a window that had not ended lasts to the history's end.
func spans(ops []history.Op) [][2]float64 {
	last := end(ops)
	var ws [][2]float64
	for _, op := range ops {
		if op.Kind == history.Nemesis {
			to := op.Return
			if to == history.NoReturn {
				to = last
			}
			ws = append(ws, [2]float64{op.Call.Seconds(), to.Seconds()})
		}
	}
	slices.SortFunc(ws, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	var merged [][2]float64
	for _, w := range ws {
		if n := len(merged); n > 0 && w[0] <= merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], w[1])
			continue
		}
		merged = append(merged, w)
	}
	return merged
}

// shade draws fault windows as bands across the plot's height.
type shade [][2]float64

func (s shade) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, w := range s {
		x0, x1 := max(trX(w[0]), c.Min.X), min(trX(w[1]), c.Max.X)
		if x1 <= x0 {
			x1 = x0 + 1 // a window too short to see still shows
		}
		c.FillPolygon(Shade, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
	}
}

// Thumbnail draws the legend's sample.
func (s shade) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(Shade, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// render draws p on a white Width×Height image and writes it as a PNG.
func render(w io.Writer, p *plot.Plot) error {
	const dpi = vgimg.DefaultDPI
	c := vgimg.NewWith(vgimg.UseWH(Width*vg.Inch/dpi, Height*vg.Inch/dpi), vgimg.UseDPI(dpi))
	p.Draw(draw.New(c))
	return png.Encode(w, c.Image())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

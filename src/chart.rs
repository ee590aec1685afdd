//! Charts drawn on the server as inline SVG (no script: the pages' CSP allows none), each with a
//! title and description for screen readers and its data as a table beside it.
//!
//! Colours are presentation attributes, not `style`: the CSP's `style-src 'self'` refuses inline
//! styles. Series differ by dash pattern as well as colour, so they read without colour too.

use askama::Template;

/// Width and height of every chart's coordinate system (it scales to the page's width).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
/// The plot area inside the axes' labels.
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;
/// Colour-blind-safe colours (Okabe–Ito) and dash patterns, one pair per series.
const STYLES: [(&str, &str); 4] =
    [("#0072b2", ""), ("#d55e00", "8 4"), ("#009e73", "2 3"), ("#cc79a7", "12 3 3 3")];

/// How values on the y axis and in the table are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// 1.2k, 3.4M.
    Count,
    /// 1.2 MB.
    Bytes,
    /// 12 ms.
    Millis,
    /// 0–100 %.
    Percent,
}

impl Unit {
    /// `value` written in this unit.
    pub(crate) fn format(self, value: f64) -> String {
        let scaled = |v: f64, units: [&str; 4], step: f64, space: &str| {
            let mut v = v;
            let mut i = 0;
            while v.abs() >= step && i < units.len() - 1 {
                v /= step;
                i += 1;
            }
            let digits = if v.fract() == 0.0 || v >= 100.0 { 0 } else { 1 };
            format!("{v:.digits$}{space}{}", units[i])
        };
        match self {
            Self::Count => scaled(value, ["", "k", "M", "G"], 1000.0, ""),
            Self::Bytes => scaled(value, ["B", "kB", "MB", "GB"], 1000.0, " "),
            Self::Millis if value >= 1000.0 => format!("{:.1} s", value / 1000.0),
            Self::Millis => format!("{value:.1} ms"),
            Self::Percent => format!("{value:.0} %"),
        }
    }
}

/// One named line of a chart: a value per x position.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// What the line is, shown in the legend and the table's header.
    pub(crate) name: String,
    /// Values, one per point of the chart's x axis.
    pub(crate) values: Vec<f64>,
}

/// A line chart and its data table.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    /// A page-unique id (for `aria-labelledby`).
    pub(crate) id: &'static str,
    /// The heading.
    pub(crate) title: String,
    /// One sentence saying what the chart shows, for screen readers.
    pub(crate) desc: String,
    /// The x axis: where each point sits (any increasing numbers) and its label.
    pub(crate) x: Vec<(f64, String)>,
    /// The lines.
    pub(crate) series: Vec<Series>,
    /// The values' unit.
    pub(crate) unit: Unit,
    /// Whether each point gets a dot (few points, such as checkpoints).
    pub(crate) dots: bool,
}

struct Tick {
    at: String,
    label: String,
}

struct Line {
    name: String,
    color: &'static str,
    dash: &'static str,
    points: String,
    dots: Vec<(String, String)>,
    legend_x: String,
}

#[derive(Template)]
#[template(path = "chart.html")]
struct Figure<'a> {
    id: &'a str,
    title: &'a str,
    desc: &'a str,
    width: f64,
    height: f64,
    left: String,
    right: String,
    top: String,
    bottom: String,
    label_y: String,
    y_ticks: Vec<Tick>,
    x_ticks: Vec<Tick>,
    lines: Vec<Line>,
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn coordinate(v: f64) -> String {
    format!("{v:.1}")
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v`: a y axis maximum people read easily.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    if v <= 1.0 {
        // Counts below one step of 1 would give ticks of 0.25: a step of 1 reads better.
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|&m| m >= v).unwrap_or(10.0 * magnitude)
}

impl LineChart {
    /// The chart as a `<figure>`: the SVG, then its data in a table.
    pub(crate) fn render(&self) -> String {
        let max = self.series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max);
        // Four equal steps of a nice size, so every tick label is a round number.
        let top_value = if self.unit == Unit::Percent { 100.0 } else { 4.0 * nice_ceiling(max / 4.0) };
        let (x_min, x_max) = match (self.x.first(), self.x.last()) {
            (Some(first), Some(last)) if last.0 > first.0 => (first.0, last.0),
            _ => (0.0, 1.0),
        };
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let x_of = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * plot_w;
        let y_of = |y: f64| TOP + plot_h - (y / top_value).clamp(0.0, 1.0) * plot_h;
        let y_ticks = (0..=4)
            .map(|i| {
                let value = top_value * f64::from(i) / 4.0;
                Tick { at: coordinate(y_of(value)), label: self.unit.format(value) }
            })
            .collect();
        // At most 7 labels on the x axis, always the first and the last.
        let step = self.x.len().div_ceil(6).max(1);
        let x_ticks = self
            .x
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i + 1 == self.x.len())
            .map(|(_, (x, label))| Tick { at: coordinate(x_of(*x)), label: label.clone() })
            .collect();
        let lines = self
            .series
            .iter()
            .zip(STYLES.iter().cycle())
            .enumerate()
            .map(|(i, (series, &(color, dash)))| {
                let at: Vec<(String, String)> = self
                    .x
                    .iter()
                    .zip(&series.values)
                    .map(|((x, _), &y)| (coordinate(x_of(*x)), coordinate(y_of(y))))
                    .collect();
                let points = at.iter().map(|(x, y)| format!("{x},{y}")).collect::<Vec<_>>().join(" ");
                let dots = if self.dots { at } else { Vec::new() };
                let legend_x = coordinate(LEFT + 120.0 * i as f64);
                Line { name: series.name.clone(), color, dash, points, dots, legend_x }
            })
            .collect();
        let head = std::iter::once(String::new()).chain(self.series.iter().map(|s| s.name.clone())).collect();
        let rows = self
            .x
            .iter()
            .enumerate()
            .map(|(i, (_, label))| {
                std::iter::once(label.clone())
                    .chain(
                        self.series
                            .iter()
                            .map(|s| s.values.get(i).map_or_else(String::new, |&v| self.unit.format(v))),
                    )
                    .collect()
            })
            .collect();
        let figure = Figure {
            id: self.id,
            title: &self.title,
            desc: &self.desc,
            width: WIDTH,
            height: HEIGHT,
            left: coordinate(LEFT),
            right: coordinate(WIDTH - RIGHT),
            top: coordinate(TOP),
            bottom: coordinate(HEIGHT - BOTTOM),
            label_y: coordinate(HEIGHT - BOTTOM + 20.0),
            y_ticks,
            x_ticks,
            lines,
            head,
            rows,
        };
        figure.render().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(Unit::Count.format(1500.0), "1.5k");
        assert_eq!(Unit::Count.format(12.0), "12");
        assert_eq!(Unit::Bytes.format(2_500_000.0), "2.5 MB");
        assert_eq!(Unit::Millis.format(2500.0), "2.5 s");
        assert_eq!(nice_ceiling(37.0), 50.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.3), 1.0);
    }

    #[test]
    fn a_chart_is_an_accessible_svg_with_its_data_table() {
        let chart = LineChart {
            id: "requests",
            title: "Requests <per minute>".into(),
            desc: "Requests by protocol.".into(),
            x: vec![(0.0, "12:00".into()), (1.0, "12:01".into()), (2.0, "12:02".into())],
            series: vec![
                Series { name: "h2".into(), values: vec![0.0, 5.0, 10.0] },
                Series { name: "h3".into(), values: vec![1.0, 1.0, 1.0] },
            ],
            unit: Unit::Count,
            dots: true,
        };
        let html = chart.render();
        assert!(html.contains(r#"aria-labelledby="requests-title requests-desc""#), "{html}");
        assert!(html.contains("Requests &#60;per minute&#62;"), "escaped: {html}");
        assert_eq!(html.matches("<polyline").count(), 2, "{html}");
        assert_eq!(html.matches("<circle").count(), 6, "{html}");
        // The top of the y axis is 4 steps of 5 (nice): 10 sits half way up, 0 at the bottom.
        assert!(html.contains(r#"points="72.0,224.0 388.0,175.0 704.0,126.0""#), "{html}");
        assert!(html.contains(r#"<th scope="row">12:01</th><td>5</td><td>1</td>"#), "{html}");
        assert!(!html.contains("style="), "no inline style: the CSP forbids it");
    }
}

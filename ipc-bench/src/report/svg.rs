//! `--svg`: a bar chart of p50 round-trip time and streaming throughput per runner,
//! one bar per message size, on log scales (the runners span several orders of
//! magnitude). Hand-written SVG: a few rectangles and labels do not justify a plotting
//! dependency, and the output stays small and diff-friendly.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::table::{fmt_ns, fmt_size};
use super::Report;

const PANEL_W: f64 = 590.0;
const LABEL_W: f64 = 150.0;
const BAR_AREA: f64 = 350.0;
const BAR_H: f64 = 9.0;
const GROUP_GAP: f64 = 8.0;
const TOP: f64 = 70.0;
const COLORS: [&str; 4] = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1"];

/// One panel's data: for each runner, one optional value per size.
struct Panel<'a> {
    title: String,
    runners: &'a [String],
    sizes: &'a [usize],
    values: Vec<Vec<Option<f64>>>,
    label: fn(f64) -> String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Panel<'_> {
    fn draw(&self, out: &mut String, x0: f64) {
        let all: Vec<f64> = self
            .values
            .iter()
            .flatten()
            .flatten()
            .copied()
            .filter(|v| *v > 0.0)
            .collect();
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="30" font-size="15" font-weight="bold">{}</text>"#,
            x0 + 10.0,
            esc(&self.title)
        );
        let (Some(lo), Some(hi)) = (
            all.iter().copied().reduce(f64::min),
            all.iter().copied().reduce(f64::max),
        ) else {
            let _ = writeln!(out, r#"<text x="{:.1}" y="60">no data</text>"#, x0 + 10.0);
            return;
        };
        let (lo, hi) = (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        );
        let bar_x = x0 + LABEL_W;
        let scale = |v: f64| ((v.log10() - lo) / (hi - lo)).clamp(0.0, 1.0) * BAR_AREA;
        let group_h = self.sizes.len() as f64 * BAR_H + GROUP_GAP;
        let bottom = TOP + self.runners.len() as f64 * group_h;
        // Decade grid lines and labels.
        let mut decade = lo;
        while decade <= hi + 1e-9 {
            let x = bar_x + scale(10f64.powf(decade));
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{}</text>"##,
                TOP - 6.0,
                bottom + 14.0,
                esc(&(self.label)(10f64.powf(decade)))
            );
            decade += 1.0;
        }
        for (i, (runner, values)) in self.runners.iter().zip(&self.values).enumerate() {
            let y = TOP + i as f64 * group_h;
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
                bar_x - 6.0,
                y + group_h / 2.0,
                esc(runner)
            );
            for (j, v) in values.iter().enumerate() {
                let Some(v) = v.filter(|v| *v > 0.0) else {
                    continue;
                };
                let w = scale(v).max(1.0);
                let by = y + j as f64 * BAR_H;
                let _ = writeln!(
                    out,
                    r##"<rect x="{bar_x:.1}" y="{by:.1}" width="{w:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="8" fill="#333">{}</text>"##,
                    BAR_H - 1.0,
                    COLORS[j % COLORS.len()],
                    bar_x + w + 3.0,
                    by + BAR_H - 2.0,
                    esc(&(self.label)(v))
                );
            }
        }
    }
}

/// The chart as SVG text.
pub(crate) fn render(report: &Report) -> String {
    let mut runners: Vec<String> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    for row in &report.rows {
        if !runners.contains(&row.runner) {
            runners.push(row.runner.clone());
        }
        if !sizes.contains(&row.size) {
            sizes.push(row.size);
        }
    }
    sizes.sort_unstable();
    let pinned = report.machine.pinned_cpu.is_some();
    let get = |f: &dyn Fn(&super::Row) -> Option<f64>| -> Vec<Vec<Option<f64>>> {
        runners
            .iter()
            .map(|r| {
                sizes
                    .iter()
                    .map(|s| {
                        report
                            .rows
                            .iter()
                            .find(|row| &row.runner == r && row.size == *s)
                            .and_then(f)
                    })
                    .collect()
            })
            .collect()
    };
    let rtt = Panel {
        title: format!(
            "p50 round trip{} (log scale, shorter is better)",
            if pinned { ", pinned to one CPU" } else { "" }
        ),
        runners: &runners,
        sizes: &sizes,
        values: get(&|row| {
            let l = if pinned { row.rtt_pinned } else { row.rtt };
            l.map(|l| l.p50_ns as f64)
        }),
        label: |v| fmt_ns(v as u64),
    };
    let tput = Panel {
        title: "streaming MB/s, one way (log scale, longer is better)".into(),
        runners: &runners,
        sizes: &sizes,
        values: get(&|row| row.stream.map(|t| t.mb_per_s)),
        label: |v| {
            if v >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        },
    };
    let group_h = sizes.len() as f64 * BAR_H + GROUP_GAP;
    let height = TOP + runners.len() as f64 * group_h + 60.0;
    let width = 2.0 * PANEL_W + 20.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    rtt.draw(&mut out, 0.0);
    tput.draw(&mut out, PANEL_W + 20.0);
    let m = &report.machine;
    let legend_y = height - 22.0;
    for (j, size) in sizes.iter().enumerate() {
        let x = 10.0 + j as f64 * 90.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="10" fill="{}"/><text x="{:.1}" y="{legend_y:.1}" font-size="11">{}</text>"#,
            legend_y - 9.0,
            COLORS[j % COLORS.len()],
            x + 16.0,
            fmt_size(*size)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{legend_y:.1}" font-size="10" fill="#555">{}</text>"##,
        10.0 + sizes.len() as f64 * 90.0,
        esc(&format!(
            "{}, {} CPU(s), kernel {}, runtime {}, load {} → {}",
            m.cpu_model, m.cpus, m.kernel, m.runtime, m.load_before, m.load_after
        ))
    );
    out.push_str("</svg>\n");
    out
}

/// Write the chart.
pub(crate) fn write(report: &Report, path: &Path) -> Result<()> {
    std::fs::write(path, render(report)).context(format!("writing {}", path.display()))
}

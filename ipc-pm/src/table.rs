//! The `list` table, in aligned columns.

use crate::monitor::human_bytes;
use crate::proto::AppInfo;

const HEADER: [&str; 10] = [
    "id", "name", "mode", "#", "pid", "status", "uptime", "restarts", "cpu", "mem",
];

/// One row per instance.
pub(crate) fn render(apps: &[AppInfo]) -> String {
    let mut rows: Vec<[String; 10]> = vec![HEADER.map(str::to_string)];
    for app in apps {
        if app.instances.is_empty() {
            rows.push([
                app.id.to_string(),
                app.name.clone(),
                app.mode.to_string(),
                "-".into(),
                "-".into(),
                "stopped".into(),
                "-".into(),
                "0".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for i in &app.instances {
            let running = i.pid.is_some();
            rows.push([
                app.id.to_string(),
                app.name.clone(),
                app.mode.to_string(),
                i.index.to_string(),
                i.pid.map_or("-".into(), |p| p.to_string()),
                i.status.clone(),
                if running {
                    crate::daemon::human_uptime(i.uptime_ms)
                } else {
                    "-".into()
                },
                i.restarts.to_string(),
                match i.cpu_percent {
                    Some(cpu) if running => format!("{cpu:.1}%"),
                    _ => "-".into(),
                },
                match i.memory {
                    Some(bytes) if running => human_bytes(bytes),
                    _ => "-".into(),
                },
            ]);
        }
    }
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

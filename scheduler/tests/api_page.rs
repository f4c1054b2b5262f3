//! The status page in headless Chromium: it renders the real data of a snapshot (a point of
//! the lag line per history point, a marker per scaling change, the current numbers), its
//! refresh against `v1/history` succeeds, and a screenshot is written to the test's output
//! directory for a person to look at.

mod api_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use api_common::{TestApi, now_ms};
use fastdata_scheduler::api::sample::sample_snapshot;
use fastdata_scheduler::api::views::HistoryView;
use fastdata_scheduler::policy::ScalingConfig;
use fastdata_scheduler::status::StatusSnapshot;

/// Chromium from `FASTDATA_CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome`
/// on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("FASTDATA_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "Chromium is needed to test the status page and was not found on the PATH \
         (chromium, chromium-browser, google-chrome). Install it with `dev/bootstrap` \
         (Debian's `chromium` package), or point FASTDATA_CHROMIUM at a Chromium binary."
    );
}

/// Runs headless Chromium on `url` with the machine notes' flags plus `extra`; returns its
/// standard output. Virtual time lets the page run its timers (the refresh) without the test
/// waiting for them in real time.
async fn run_chromium(url: &str, profile: &Path, extra: &[String]) -> String {
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            // Past one refresh (5 s) of the page.
            "--virtual-time-budget=7000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("Chromium finishes within 180 s")
        .expect("Chromium starts");
    assert!(
        output.status.success(),
        "Chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 DOM")
}

/// The value of `attribute` on the element with `id`.
fn attribute<'a>(dom: &'a str, id: &str, attribute: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in the rendered page"));
    let start = dom[..at].rfind('<').expect("an element start");
    let end = at + dom[at..].find('>').expect("an element end");
    let element = &dom[start..end];
    let key = format!(" {attribute}=\"");
    let from = element
        .find(&key)
        .unwrap_or_else(|| panic!("#{id} has no {attribute}: {element}"))
        + key.len();
    let to = from + element[from..].find('"').expect("closing quote");
    &element[from..to]
}

/// The text of the element with `id` (no nested elements).
fn text<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let from = at + dom[at..].find('>').expect("element end") + 1;
    let to = from + dom[from..].find('<').expect("closing tag");
    &dom[from..to]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_plots_the_last_hour_and_marks_every_scaling_change() {
    let snapshot = sample_snapshot(now_ms());
    let history = HistoryView::of(&snapshot);
    let api = TestApi::start(snapshot.clone()).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("api_page");
    std::fs::create_dir_all(&out).expect("output directory");
    let screenshot = out.join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let profile = out.join(format!("chromium-profile-{}", std::process::id()));
    let url = api.url("/");

    let dom = run_chromium(&url, &profile.join("dom"), &["--dump-dom".to_owned()]).await;

    // One lag-line point per history point of the last hour.
    let points = history.points.len();
    assert!(points > 300, "the sample has an hour of points");
    let line = attribute(&dom, "lag-line", "d");
    let moves = line.matches('M').count();
    let lines = line.matches('L').count();
    assert_eq!((moves, lines + 1), (1, points), "lag line: {line:.200}");
    assert_eq!(attribute(&dom, "chart", "data-points"), points.to_string());
    let running = attribute(&dom, "running-line", "d");
    assert_eq!(running.matches('H').count() + 1, points);

    // One marker per scaling change of the hour, and each at its change.
    let changes = history.decisions.len();
    assert!(changes >= 3, "the sample has scaling changes in the hour");
    assert_eq!(dom.matches("class=\"decision-marker\"").count(), changes);
    for change in &history.decisions {
        assert!(
            dom.contains(&format!(
                "class=\"decision-marker\" data-at=\"{}\" data-from=\"{}\" data-to=\"{}\"",
                change.at_unix_ms, change.from, change.to
            )),
            "no marker for {change:?}"
        );
    }
    assert_eq!(text(&dom, "decision-count"), changes.to_string());

    // The current numbers and the reason nothing moves.
    assert_eq!(text(&dom, "current-lag"), "12,400");
    assert_eq!(text(&dom, "current-consumers"), "3 / 4");
    assert_eq!(
        text(&dom, "held"),
        snapshot.held_reason.as_deref().expect("a held reason")
    );
    assert_eq!(
        text(&dom, "summary"),
        "running · 3 of 4 consumers running · lag 12,400 (lagging)"
    );
    // The refresh ran (virtual time passed one interval) and rendered without error.
    assert_eq!(text(&dom, "error"), "", "the refresh failed");
    assert!(text(&dom, "updated").starts_with("updated "));

    run_chromium(
        &url,
        &profile.join("screenshot"),
        &[format!("--screenshot={}", screenshot.display())],
    )
    .await;
    let png = std::fs::read(&screenshot).expect("Chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 20_000,
        "a screenshot of a drawn page, not a blank one"
    );
    println!("status page screenshot: {}", screenshot.display());
    let _ = std::fs::remove_dir_all(&profile);
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_of_a_scheduler_with_no_data_yet_renders_without_errors() {
    let mut snapshot = StatusSnapshot::starting("fastdata", ScalingConfig::default());
    snapshot.at_unix_ms = now_ms();
    let api = TestApi::start(snapshot).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("api_page");
    std::fs::create_dir_all(&out).expect("output directory");
    let profile = out.join(format!("chromium-profile-empty-{}", std::process::id()));
    let dom = run_chromium(&api.url("/"), &profile, &["--dump-dom".to_owned()]).await;
    assert_eq!(attribute(&dom, "chart", "data-points"), "0");
    assert_eq!(dom.matches("class=\"decision-marker\"").count(), 0);
    assert!(!dom.contains("id=\"lag-line\""), "no line without points");
    assert_eq!(text(&dom, "current-lag"), "–");
    assert_eq!(text(&dom, "decision-count"), "0");
    assert_eq!(
        text(&dom, "summary"),
        "starting · 0 of 0 consumers running · lag not measured yet"
    );
    assert_eq!(text(&dom, "error"), "", "the refresh failed");
    let _ = std::fs::remove_dir_all(&profile);
    api.shutdown().await;
}

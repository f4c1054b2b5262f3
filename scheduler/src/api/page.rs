//! `GET /`: the status page. One self-contained HTML document (`page.html`: inline CSS, inline
//! JS drawing SVG, no CDN, since clusters are often closed to the internet) with the first
//! data embedded, so it shows the last hour even before its first refresh; it then fetches
//! `v1/history` every few seconds. Pure: the snapshot in, the document out.

use super::views::HistoryView;
use crate::status::StatusSnapshot;

const TEMPLATE: &str = include_str!("page.html");
const PLACEHOLDER: &str = "/*INITIAL_DATA*/";

/// The page, with the history of `snapshot` embedded.
pub fn render(snapshot: &StatusSnapshot) -> String {
    let data =
        serde_json::to_string(&HistoryView::of(snapshot)).unwrap_or_else(|_| "null".to_owned());
    // Inside <script>, "</script>" in a string would end the element: `<` is escaped as JSON
    // allows, which also covers "<!--".
    let data = data.replace('<', "\\u003c");
    TEMPLATE.replacen(PLACEHOLDER, &data, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sample::sample_snapshot;

    #[test]
    fn embeds_the_history_and_nothing_can_close_the_script() {
        let mut snapshot = sample_snapshot(1_795_600_800_000);
        snapshot.held_reason = Some("</script><script>alert(1)</script>".into());
        let page = render(&snapshot);
        assert!(!page.contains(PLACEHOLDER));
        assert!(!page.contains("</script><script>alert"));
        let start = page
            .find("type=\"application/json\">")
            .expect("data element")
            + "type=\"application/json\">".len();
        let end = start + page[start..].find("</script>").expect("closed");
        let data: serde_json::Value = serde_json::from_str(&page[start..end]).expect("JSON");
        assert_eq!(
            data["held_reason"], "</script><script>alert(1)</script>",
            "the text survives the escaping"
        );
        assert_eq!(
            data["points"].as_array().map(Vec::len),
            Some(HistoryView::of(&snapshot).points.len())
        );
    }

    #[test]
    fn needs_nothing_from_the_network() {
        let page = render(&sample_snapshot(0));
        for needle in ["http://", "https://", "src=", "<link", "@import"] {
            let hits: Vec<&str> = page
                .lines()
                .filter(|l| l.contains(needle) && !l.contains("http://www.w3.org/2000/svg"))
                .collect();
            assert!(hits.is_empty(), "{needle}: {hits:?}");
        }
    }
}

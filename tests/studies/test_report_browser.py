"""The study report opened in headless Chromium (Debian's chromium + chromium-driver, which .ci/run installs):
it loads with no console errors, every plot is decoded and drawn, and a screenshot is kept as an artifact
(test-artifacts/report.png)."""

from pathlib import Path

from test_report import study_fixture

from warmstart.studies.report import write_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_report_loads_in_chromium_without_errors_and_draws_every_plot(browser, tmp_path):
    page = write_report(study_fixture(tmp_path / "study"))
    browser.get(page.as_uri())
    assert browser.title == "warmstart report: study"
    plots = browser.execute_script(
        "return [...document.querySelectorAll('img.plot')].map(i => [i.alt, i.complete, i.naturalWidth])")
    assert [p[0] for p in plots] == ["label-efficiency curves for sentiment", "training curves for sentiment",
                                     "ranking scores against fine-tuned scores for sentiment"]
    assert all(complete and width > 300 for _, complete, width in plots)  # decoded, not a broken-image icon
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_a_broken_plot_would_be_caught(browser, tmp_path):
    """The checks above can fail: corrupt image data shows as not decoded, a script error as a console error."""
    page = write_report(study_fixture(tmp_path / "study"))
    page.write_text(page.read_text().replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
                    .replace("</body>", "<script>notDefined()</script></body>"))
    browser.get(page.as_uri())
    widths = browser.execute_script("return [...document.querySelectorAll('img.plot')].map(i => i.naturalWidth)")
    assert widths[0] == 0 and all(w > 0 for w in widths[1:])
    assert any("notDefined" in e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE")

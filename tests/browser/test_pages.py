"""Every page of the web UI in a real browser (Debian's chromium) against a tracking server
that requires a write token, seeded with runs logged by the real mlflow client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.browser.conftest import Seeds, Watch
from tests.browser.harness import tracking_server
from tests.browser.seed import HOSTILE, RUNS

pytestmark = pytest.mark.integration

DRAWN = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""


def drawn_pixels(canvas: Any) -> int:
    return int(canvas.evaluate(DRAWN))


def settled_count(page: Any) -> int:
    """The runs table's count once every page of runs has loaded."""
    counter = page.get_by_test_id("run-count")
    expect(counter).to_have_text(re.compile(r"^\d+ runs$"))
    return int(counter.inner_text().split()[0])


def names(page: Any) -> list[str]:
    return [str(n) for n in page.locator("[data-testid=runs-table] .tr a.name").all_inner_texts()]


def test_experiments_list_and_search(page: Any, seeded: Seeds) -> None:
    page.goto("/")
    table = page.get_by_test_id("experiments")
    expect(table.get_by_role("link", name="ui-demo")).to_be_visible()
    expect(table.get_by_role("link", name="ui-many")).to_be_visible()
    expect(table).to_contain_text("Runs for the web UI's tests")
    page.get_by_placeholder("search experiments by name").fill("many")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.get_by_role("link", name="ui-many")).to_be_visible()
    assert "q=many" in page.url  # the search is in the URL
    table.get_by_role("link", name="ui-many").click()
    expect(page.get_by_test_id("run-count")).to_have_text("300 runs")


def test_runs_table_rows_columns_and_escaping(page: Any, seeded: Seeds) -> None:
    page.goto(f"/#/experiments/{seeded.demo.experiment_id}")
    expect(page.get_by_test_id("run-count")).to_have_text(f"{RUNS} runs")
    headers = page.locator("[data-testid=runs-table] [role=columnheader]").all_inner_texts()
    for column in ("Status", "accuracy", "loss", "depth", "lr", "model"):
        assert column in headers, headers
    assert len(names(page)) == RUNS
    # The hostile run name is text: shown verbatim, no element made of it, no dialog.
    expect(page.get_by_role("link", name=HOSTILE)).to_have_count(1)
    assert page.locator("#app script").count() == 0


COLUMN = """title => {
  const heads = [...document.querySelectorAll('[role=columnheader]')].map(h => h.textContent.replace(/ [▲▼]$/, ''));
  const i = heads.indexOf(title);
  if (i < 0) return null;
  return [...document.querySelectorAll('[data-testid=runs-table] .tr')].map(r => r.querySelectorAll('.cell')[i].textContent);
}"""


def column(page: Any, title: str) -> list[str]:
    values = page.evaluate(COLUMN, title)
    assert values is not None, f"no column {title!r}"
    return [str(v) for v in values]


def wait_sorted(page: Any, title: str, count: int, descending: bool) -> list[float]:
    """Poll (bounded by Playwright's timeout) until the rows are the sorted ones."""
    check = f"""() => {{ const v = ({COLUMN})({title!r});
      if (!v || v.length !== {count} || document.querySelector('[data-testid=run-count]').textContent.includes('loading'))
        return false;
      const n = v.map(Number); return n.every((x, i) => i === 0 || ({"n[i-1] >= x" if descending else "n[i-1] <= x"})); }}"""
    page.wait_for_function(check)
    return [float(v) for v in column(page, title)]


def test_filter_and_sort_change_the_rows(page: Any, seeded: Seeds) -> None:
    page.goto(f"/#/experiments/{seeded.demo.experiment_id}")
    expect(page.get_by_test_id("run-count")).to_have_text(f"{RUNS} runs")
    before = names(page)
    page.locator("input.filter").fill("params.model = 'tree' and metrics.accuracy > 0.3")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("run-count")).not_to_have_text(f"{RUNS} runs")
    settled_count(page)
    filtered = names(page)
    assert 0 < len(filtered) < RUNS and set(filtered) < set(before)
    assert "filter=" in page.url
    expect(page.get_by_test_id("run-count")).to_have_text(f"{len(filtered)} runs")
    assert all(float(a) > 0.3 for a in column(page, "accuracy"))
    assert set(column(page, "model")) == {"tree"}
    # Sort by loss: the server's ORDER BY, descending then ascending, kept in the URL.
    page.locator("[role=columnheader]", has_text="loss").click()
    down = wait_sorted(page, "loss", len(filtered), descending=True)
    assert "sort=" in page.url
    page.locator("[role=columnheader]", has_text="loss").click()
    up = wait_sorted(page, "loss", len(filtered), descending=False)
    assert up == sorted(down) and up != down


def test_a_bad_filter_is_explained(page: Any, seeded: Seeds, watch: Watch) -> None:
    watch.expected_errors.append("status of 400")  # the browser logs the 400 answer itself
    page.goto(f"/#/experiments/{seeded.demo.experiment_id}?filter=metrics.loss%20%3E%3E%201")
    expect(page.locator("p.error")).to_contain_text("Expected a numeric value for 'loss'")
    expect(page.get_by_test_id("run-count")).to_have_text("0 runs")


def test_column_chooser_min_and_max(page: Any, seeded: Seeds) -> None:
    spiky = next(i for i, n in seeded.demo.names.items() if n == "run-05")
    page.goto(f"/#/experiments/{seeded.demo.experiment_id}")
    expect(page.get_by_test_id("run-count")).to_have_text(f"{RUNS} runs")
    page.get_by_role("button", name="Columns").click()
    chooser = page.get_by_test_id("column-chooser")
    chooser.locator("label", has_text="loss").locator("select").select_option("max")
    expect(page.locator("[role=columnheader]", has_text="loss (max)")).to_be_visible()
    assert "m%3Amax%3Aloss" in page.url
    row = page.locator(".tr", has=page.locator(f"a[href='#/runs/{spiky}']"))
    page.wait_for_function(f"() => ({COLUMN})('loss (max)')?.includes('40')")
    expect(row).to_contain_text("40")
    # Sorting the max column (in the browser) puts the spike first.
    page.locator("[role=columnheader]", has_text="loss (max)").click()
    expect(page.locator(".tr a.name").first).to_have_text("run-05")


def test_runs_table_is_virtualised(page: Any, seeded: Seeds) -> None:
    page.goto(f"/#/experiments/{seeded.many.experiment_id}?sort=m%3Alast%3Ascore%20ASC")
    expect(page.get_by_test_id("run-count")).to_have_text("300 runs")
    in_dom = page.locator(".tr").count()
    assert 0 < in_dom < 100, in_dom
    expect(page.locator(".tr a.name").first).to_have_text("many-0000")
    page.get_by_test_id("runs-table").evaluate("t => t.scrollTop = t.scrollHeight")
    expect(page.get_by_role("link", name="many-0299")).to_be_visible()
    assert page.locator(".tr").count() < 100


def test_runs_table_loads_pages_as_they_are_scrolled_to(page: Any, seeded: Seeds) -> None:
    # The first page (a screenful of the 300 runs) and the count; the next page only when scrolled to,
    # so that a sort or a filter never waits behind a page nobody asked for.
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/runs/table-search" in r.url else None)
    page.goto(f"/#/experiments/{seeded.many.experiment_id}")
    expect(page.get_by_test_id("run-count")).to_have_text("300 runs")
    expect(page.locator(".tr a.name").first).to_have_text("many-0299")
    page.wait_for_load_state("networkidle")
    assert len(searches) == 1, searches
    page.get_by_test_id("runs-table").evaluate("t => t.scrollTop = t.scrollHeight")
    expect(page.get_by_role("link", name="many-0000")).to_be_visible()
    expect(page.get_by_test_id("run-count")).to_have_text("300 runs")
    assert len(searches) == 2, searches


def test_a_sort_keeps_the_rows_and_the_count_and_a_filter_counts_again(page: Any, seeded: Seeds) -> None:
    # While a new sort's search is answered (held here), the table keeps showing the rows it had,
    # marked busy, instead of an empty table; the sorted rows then replace them. A new order of
    # the same runs asks for no count (it cannot change); a new filter does.
    sent: list[str] = []
    held: list[Any] = []
    page.on(
        "request", lambda r: sent.append(r.url) if "/runs/table-search" in r.url or "/runs/count" in r.url else None
    )
    page.goto(f"/#/experiments/{seeded.many.experiment_id}")
    expect(page.get_by_test_id("run-count")).to_have_text("300 runs")
    expect(page.locator(".tr a.name").first).to_have_text("many-0299")
    page.wait_for_load_state("networkidle")
    before = names(page)
    assert [u.split("?")[0].rsplit("/", 1)[1] for u in sent] == ["table-search", "count"], sent
    sent.clear()
    page.route("**/api/2.0/modelship/runs/table-search", lambda route: held.append(route))
    page.locator("[role=columnheader]", has_text="score").click()
    page.wait_for_function("() => !!document.querySelector('[data-testid=runs-table][aria-busy=true]')")
    assert len(held) == 1 and names(page) == before  # the old rows, not an empty table
    expect(page.get_by_test_id("run-count")).to_have_text("300 runs (loading…)")
    held[0].continue_()
    page.unroute("**/api/2.0/modelship/runs/table-search")
    expect(page.locator(".tr a.name").first).to_have_text("many-0299")  # score DESC: the same run first
    expect(page.locator("[data-testid=runs-table][aria-busy=false]")).to_have_count(1)
    page.locator("[role=columnheader]", has_text="score").click()  # ascending
    expect(page.locator(".tr a.name").first).to_have_text("many-0000")
    expect(page.get_by_test_id("run-count")).to_have_text("300 runs")
    page.wait_for_load_state("networkidle")
    assert [u for u in sent if "/runs/count" in u] == [], sent
    assert len([u for u in sent if "/runs/table-search" in u]) == 2, sent
    # A filter changes which runs: counted again (more than a page of them match).
    page.locator("input.filter").fill("metrics.score >= 100")
    page.locator("input.filter").press("Enter")
    expect(page.get_by_test_id("run-count")).to_have_text("200 runs")
    expect(page.locator(".tr a.name").first).to_have_text("many-0100")  # still ascending
    assert len([u for u in sent if "/runs/count" in u]) == 1, sent
    # And a filter that one page holds whole is counted from that page.
    page.locator("input.filter").fill("metrics.score >= 290")
    page.locator("input.filter").press("Enter")
    expect(page.get_by_test_id("run-count")).to_have_text("10 runs")
    assert names(page) == [f"many-{i:04d}" for i in range(290, 300)]


def test_the_first_search_leaves_before_the_bundle_and_only_once(page: Any, seeded: Seeds, watch: Watch) -> None:
    # The page's inline boot script sends the table's first search (with the URL's filter and
    # sort) while the bundle loads: it goes out even when the bundle never comes ...
    url = f"/#/experiments/{seeded.many.experiment_id}?filter=metrics.score%20%3E%3D%200&sort=m%3Alast%3Ascore%20ASC"
    searches: list[Any] = []
    page.on("request", lambda r: searches.append(r) if "/runs/table-search" in r.url else None)
    watch.expected_errors.append("net::ERR_FAILED")  # the bundle refused below
    page.route("**/ui/app.js*", lambda route: route.abort())
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert [r.post_data_json for r in searches] == [
        {"experiment_ids": [seeded.many.experiment_id], "filter": "metrics.score >= 0",
         "order_by": ["metrics.`score` ASC"], "max_results": 53}
    ]  # fmt: skip
    assert page.locator(".tr").count() == 0
    # ... and with the bundle, the table takes that answer instead of asking again.
    page.unroute("**/ui/app.js*")
    searches.clear()
    page.goto("about:blank")
    page.goto(url)
    expect(page.locator(".tr a.name").first).to_have_text("many-0000")
    page.wait_for_load_state("networkidle")
    assert len(searches) == 1, [r.post_data for r in searches]


def test_a_run_page_fetches_its_chunks_beside_the_bundle(page: Any, seeded: Seeds, watch: Watch) -> None:
    # The run page's code (with uPlot) is a chunk the bundle loads only for that page; the boot
    # script preloads it from the URL, so it comes even before (here: without) the bundle.
    chunks: dict[str, set[str]] = {}

    def opened(url: str) -> set[str]:
        seen: set[str] = set()

        def on_request(r: Any) -> None:
            if "/ui/chunk-" in r.url:
                seen.add(r.url.split("/ui/")[1])

        page.goto("about:blank")
        page.on("request", on_request)
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.remove_listener("request", on_request)
        return seen

    watch.expected_errors.append("net::ERR_FAILED")  # the bundle refused
    page.route("**/ui/app.js*", lambda route: route.abort())
    chunks["table"] = opened(f"/#/experiments/{seeded.demo.experiment_id}")
    chunks["run"] = opened(f"/#/runs/{seeded.demo.run_ids[0]}")
    assert chunks["table"] and chunks["table"] < chunks["run"], chunks


def test_selection_goes_to_compare(page: Any, seeded: Seeds) -> None:
    page.goto(f"/#/experiments/{seeded.demo.experiment_id}")
    expect(page.get_by_test_id("run-count")).to_have_text(f"{RUNS} runs")
    for box in page.locator(".tr input[type=checkbox]").all()[:3]:
        box.check()
    assert page.url.count("%2C") == 2  # sel=a,b,c
    page.get_by_role("link", name="Compare 3 runs").click()
    expect(page.get_by_role("heading", name="Compare 3 runs")).to_be_visible()


def test_run_page(page: Any, seeded: Seeds) -> None:
    run_id = seeded.demo.hostile_run
    page.goto(f"/#/runs/{run_id}")
    expect(page.get_by_test_id("run-name")).to_have_text(HOSTILE)
    expect(page.get_by_test_id("params")).to_contain_text("depth")
    expect(page.get_by_test_id("metrics")).to_contain_text("accuracy")
    expect(page.get_by_test_id("tags").locator("td", has_text=HOSTILE)).to_have_count(2)  # note, mlflow.runName
    assert page.locator("#app script").count() == 0
    first = seeded.demo.run_ids[0]
    page.goto(f"/#/runs/{first}")
    expect(page.get_by_test_id("datasets")).to_contain_text("iris-train")
    expect(page.get_by_test_id("datasets")).to_contain_text("training")


def test_run_charts_draw_and_follow_the_controls(page: Any, seeded: Seeds) -> None:
    page.goto(f"/#/runs/{seeded.demo.run_ids[5]}?tab=charts")
    cards = page.get_by_test_id("chart-card")
    expect(cards).to_have_count(2)
    canvas = cards.filter(has_text="loss").locator("canvas").first
    expect(canvas).to_be_visible()
    assert drawn_pixels(canvas) > 500
    expect(cards.filter(has_text="loss")).to_contain_text("121 points")
    for value in ("wall", "relative"):
        page.locator("select").first.select_option(value)
        assert f"x={value}" in page.url
        expect(cards.filter(has_text="loss").locator("canvas").first).to_be_visible()
        assert drawn_pixels(cards.filter(has_text="loss").locator("canvas").first) > 500
    # Against another metric: loss over accuracy (joined on the step by the server).
    page.get_by_test_id("x-axis").select_option("metric:accuracy")
    assert "x=metric" in page.url and "xm=accuracy" in page.url
    card = cards.filter(has_text="loss")
    expect(card).to_contain_text("121 points at steps that have accuracy")
    expect(card.locator(".u-legend")).to_contain_text("accuracy")
    assert drawn_pixels(card.locator("canvas").first) > 500
    page.get_by_label("log scale").check()
    page.locator("input[type=range]").fill("0.8")
    assert "log=1" in page.url and "smooth=0.8" in page.url
    assert drawn_pixels(cards.filter(has_text="loss").locator("canvas").first) > 500


def test_artifact_previews_never_execute(page: Any, seeded: Seeds) -> None:
    page.goto(f"/#/runs/{seeded.demo.run_ids[0]}?tab=artifacts")
    tree = page.get_by_test_id("artifact-tree")
    preview = page.get_by_test_id("artifact-preview")
    tree.get_by_role("button", name="config.json").click()
    expect(preview.get_by_test_id("artifact-text")).to_contain_text('"layers": [')
    tree.get_by_role("button", name="config.yaml").click()
    expect(preview.get_by_test_id("artifact-text")).to_contain_text("batch: 32")
    tree.get_by_role("button", name="report.html").click()
    expect(preview.get_by_test_id("artifact-text")).to_contain_text(HOSTILE)
    expect(preview).to_contain_text("never rendered")
    tree.get_by_role("button", name="plot.svg").click()
    expect(preview.get_by_test_id("artifact-text")).to_contain_text("<script>alert(3)</script>")
    assert page.locator("#app svg script, #app iframe, #app object, #app embed").count() == 0
    tree.get_by_role("button", name="model").click()
    tree.get_by_role("button", name="MLmodel").click()
    expect(preview.locator("table").first).to_contain_text("sepal_length")
    expect(preview.locator("table").last).to_contain_text("species")
    tree.get_by_role("button", name="images").click()
    tree.get_by_role("button", name="sample.png").click()
    image = preview.locator("img.preview")
    expect(image).to_be_visible()
    assert image.evaluate("i => i.naturalWidth") == 48
    tree.get_by_role("button", name="logs").click()
    tree.get_by_role("button", name="train.txt").click()
    expect(preview.get_by_test_id("artifact-text")).to_contain_text("epoch 2 done")


def test_compare_three_runs(page: Any, seeded: Seeds) -> None:
    ids = seeded.demo.run_ids[:3]
    page.goto(f"/#/compare?runs={','.join(ids)}")
    expect(page.get_by_role("heading", name="Compare 3 runs")).to_be_visible()
    expect(page.get_by_test_id("compared-runs").locator("tr")).to_have_count(3)
    overlay = page.get_by_test_id("overlay").locator("canvas").first
    expect(overlay).to_be_visible()
    assert drawn_pixels(overlay) > 500
    assert drawn_pixels(page.get_by_test_id("parallel").locator("canvas")) > 500
    assert drawn_pixels(page.get_by_test_id("scatter").locator("canvas")) > 100
    diff = page.get_by_test_id("diff")
    expect(diff.locator("thead th")).to_have_count(2 + 3)
    expect(diff).to_contain_text("depth")
    expect(diff.locator("td.diff").first).to_be_visible()
    page.get_by_test_id("overlay").page.locator("h2 select").first.select_option("loss")
    assert "metric=loss" in page.url
    expect(page.get_by_test_id("overlay").locator("canvas").first).to_be_visible()


def test_registry_pages(page: Any, seeded: Seeds) -> None:
    page.goto("/#/models")
    models = page.get_by_test_id("models")
    expect(models.get_by_role("link", name="iris")).to_be_visible()
    expect(models).to_contain_text("@champion → v2")
    models.get_by_role("link", name="iris").click()
    versions = page.get_by_test_id("versions")
    expect(versions.locator("tbody tr")).to_have_count(3)
    expect(versions.locator("tbody tr").first).to_contain_text("Staging")
    expect(versions).to_contain_text("Production")
    expect(versions).to_contain_text("@champion")
    # Gates: each with its rule, the run's value and whether it held; v3's loss gate failed.
    expect(versions.locator("tbody tr").nth(1)).to_contain_text("2/2 held")
    expect(versions.locator("tbody tr").first).to_contain_text("1/2 held")
    v3 = page.get_by_test_id("version-3")
    expect(v3).to_contain_text("asks for Production")
    gate_rows = v3.get_by_test_id("gates").locator("tbody tr")
    expect(gate_rows).to_have_count(2)
    expect(gate_rows.nth(0)).to_contain_text(">= 0.5")
    expect(gate_rows.nth(0)).to_contain_text("0.93")
    expect(gate_rows.nth(0)).to_contain_text("held")
    expect(gate_rows.nth(1)).to_contain_text("< 1")
    expect(gate_rows.nth(1)).to_contain_text("1.4")
    expect(gate_rows.nth(1).locator("td").last).to_have_text("failed")
    # The stage history (the audit trail), in order.
    history = page.get_by_test_id("version-1").get_by_test_id("stage-history").locator("tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("Promoted")
    expect(history.nth(1)).to_contain_text("Superseded")
    expect(history.nth(1).locator(".badge").last).to_have_text("Archived")
    expect(page.get_by_test_id("version-details")).to_contain_text("No gates.")
    # Webhook delivery per receiver, from the operator's delivery record; no URL credentials.
    hooks = page.get_by_test_id("webhooks").locator("tbody tr")
    expect(hooks).to_have_count(2)
    down = hooks.filter(has_text="https://hooks.example.com/down")
    expect(down.locator("td").nth(1)).to_have_text("never")
    expect(down.locator("td").nth(2)).to_have_text("2026-01-01T00:00:05Z")
    expect(down.locator("td").nth(3)).to_have_text(HOSTILE)  # an error of <script> is text
    expect(down.locator("td").nth(4)).to_have_text("3")
    expect(down.locator("td").nth(7)).to_have_text("2")
    ok = hooks.filter(has_text="http://hooks.example.com/ok")
    expect(ok.locator("td").nth(1)).to_have_text("2026-01-01T00:00:02Z")
    expect(ok.locator("td").nth(2)).to_have_text("2026-01-01T00:00:00Z")
    expect(ok.locator("td").nth(4)).to_have_text("0")
    expect(page.get_by_test_id("webhooks")).not_to_contain_text("s3cret")
    expect(page.get_by_test_id("webhooks")).not_to_contain_text("pw@")
    assert page.locator("#app script").count() == 0
    versions.get_by_role("link", name=seeded.demo.run_ids[1]).click()
    expect(page.get_by_test_id("run-name")).to_have_text(seeded.demo.names[seeded.demo.run_ids[1]])


def test_kubernetes_experiments_and_trials(page: Any, seeded: Seeds) -> None:
    page.goto("/")
    page.get_by_role("link", name="Trials").click()
    card = page.get_by_test_id("kube-experiment")
    expect(card.get_by_test_id("kube-experiment-name")).to_have_text("iris-search")
    expect(card).to_contain_text("trials 3/6")
    expect(card).to_contain_text("maximize accuracy")
    rows = card.get_by_test_id("trials").locator("tbody tr")
    expect(rows).to_have_count(4)
    heads = card.get_by_test_id("trials").locator("thead th").all_inner_texts()
    assert heads[:4] == ["Trial", "Phase", "depth", "lr"] and "accuracy" in heads, heads
    expect(rows.nth(0)).to_contain_text("best")
    expect(rows.nth(0)).to_contain_text("Succeeded")
    expect(rows.nth(0)).to_contain_text("0.93")
    expect(rows.nth(1)).to_contain_text("Stopped")
    expect(rows.nth(1)).to_contain_text("yes (pruned)")
    expect(rows.nth(1)).to_contain_text("below the median")
    expect(rows.nth(3)).to_contain_text("Running")
    # A trial's message of <script> is text.
    expect(rows.nth(2).locator("td").last).to_have_text(HOSTILE)
    assert page.locator("#app script").count() == 0
    # Trials link to their runs.
    run_id = seeded.demo.run_ids[3]
    rows.nth(0).get_by_role("link", name=run_id[:12]).click()
    expect(page.get_by_test_id("run-name")).to_have_text(seeded.demo.names[run_id])


def test_kubernetes_model_deployments(page: Any, seeded: Seeds) -> None:
    page.goto("/#/kube/deployments")
    cards = page.get_by_test_id("kube-deployment")
    expect(cards).to_have_count(2)
    live = cards.filter(has=page.get_by_test_id("kube-deployment-name").get_by_text("iris-live", exact=True))
    expect(live.get_by_test_id("split")).to_have_text("live split blue=80 green=20")
    expect(live).to_contain_text("ready 3/3")
    rows = live.get_by_test_id("variants").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("stage Production")
    expect(rows.nth(0)).to_contain_text("v2")
    expect(rows.nth(0).get_by_test_id("live-weight")).to_have_text("80 %")
    expect(rows.nth(0)).to_contain_text("2 / 2")
    expect(rows.nth(1).get_by_test_id("live-weight")).to_have_text("20 %")
    expect(rows.nth(1)).to_contain_text("412 requests, error rate 0.5 %, p99 38.5 ms")
    # Live figures from the variants' model servers: since start on the first look, then over a
    # window once the page has asked again (it does every 5 s); green's pod answers nothing.
    blue_live = rows.nth(0).get_by_test_id("live-figures")
    expect(blue_live).to_contain_text("since start: 200 requests, error rate 5.0 %, p99 25 ms")
    seeded.blue.predict(50)
    expect(blue_live).to_contain_text("req/s over", timeout=60_000)
    expect(blue_live).to_contain_text("error rate 0.0 %")
    expect(rows.nth(1).get_by_test_id("live-figures")).to_contain_text("not reachable from the tracking server")
    expect(live.get_by_test_id("canary")).to_contain_text("v2 → v3")
    expect(live.get_by_test_id("metrics-note")).to_contain_text("only for a canary")
    readout = live.get_by_test_id("ab-readout")
    expect(readout).to_contain_text("binary outcomes · control blue · 95 % intervals · minSamples 30")
    expect(readout.locator("tbody tr")).to_have_count(2)
    expect(readout.locator("tbody tr").nth(1)).to_contain_text("0.973")
    expect(readout.locator("tbody tr").nth(1)).to_contain_text("0.907 – 0.993")
    expect(readout.locator("tbody tr").nth(1)).to_contain_text("+0.337")
    expect(readout.get_by_test_id("ab-verdict").nth(1)).to_have_text("better")
    expect(readout).to_contain_text("green is better than blue")
    expect(readout).not_to_contain_text("5c1e0a7d9b21")  # the operator's bookkeeping is not shown
    # A status message of <script> is text.
    hostile = cards.filter(has=page.get_by_test_id("kube-deployment-name").get_by_text("hostile", exact=True))
    expect(hostile).to_contain_text(HOSTILE)
    expect(hostile.get_by_test_id("live-figures").first).to_have_text("no Ready pod")
    assert page.locator("#app script").count() == 0
    live.get_by_role("link", name="iris").first.click()
    expect(page.get_by_test_id("versions")).to_be_visible()


def test_mlflow_links_open_the_run(page: Any, seeded: Seeds) -> None:
    # The links the mlflow client prints ("View run ... at: <url>/#/experiments/1/runs/<id>").
    run_id = seeded.demo.run_ids[2]
    page.goto(f"/#/experiments/{seeded.demo.experiment_id}/runs/{run_id}")
    expect(page.get_by_test_id("run-name")).to_have_text(seeded.demo.names[run_id])


def test_cluster_pages_without_cluster_access(browser: Any, tmp_path: Path) -> None:
    """A note that says how to give the server access, and no console error (the pages ask the
    server first and call no endpoint that would answer 501)."""
    with tracking_server(tmp_path, cluster=False) as server:
        page = browser.new_page(base_url=server.url)
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.goto("/#/models")
        expect(page.get_by_test_id("registry-error")).to_contain_text("no access to the cluster")
        expect(page.get_by_test_id("registry-error")).to_contain_text("--registry-in-cluster")
        page.goto("/#/models/iris")
        expect(page.get_by_test_id("registry-error")).to_contain_text("no access to the cluster")
        for route in ("/#/kube/experiments", "/#/kube/deployments"):
            page.goto(route)
            expect(page.get_by_test_id("cluster-error")).to_contain_text("no access to the cluster")
            expect(page.get_by_test_id("cluster-error")).to_contain_text("--registry-kubeconfig")
        assert page.get_by_test_id("kube-experiment").count() == 0
        page.close()
        assert errors == [], f"browser console errors: {errors}"
